#!/usr/bin/env bash
# overlap on an NVIDIA GPU (docs/gpu_decode_kernels.md, "Where a real run's overlap goes"):
# where does the resident decode's overlap go, and does any of the overlap switches win it
# back? The 48-layer Qwen3-30B-A3B shape, context 512, 64 decode tokens (bench_vulkan builds
# the model itself; nothing to synthesize).
#
#   OUT=DIR bash bench/results/vulkan_h100_calls_2026-12-07b/overlap_run.sh PACK [TESTS]
# PACK: bench/vulkan_gpu_pack.sh's payload, unpacked (PACK/bin, PACK/lib); TESTS (optional):
# a folder holding test_vulkan_overlap_switches, run last if time is left (it reads
# tests/data through /work/main). At most ~145 s (BUDGET=seconds to change it). Everything
# goes to $OUT/overlap:
#   gpu.txt            the device and driver
#   inprocess.txt      one process: the defaults' resident run (tok/s, commands and barriers a
#                      layer, waits a token by cause), its level profile (--level-profile: each
#                      level's real time against its commands' serialized sum, the device's idle
#                      time between command buffers), then --ab-overlap: the defaults,
#                      MST_VULKAN_KICK_EVERY=2, 4, 0 and MST_VULKAN_BARRIERS=stages, ranges,
#                      interleaved over 3 rounds, min / median / max, logits bits against the
#                      defaults'
#   bv_SETTING_R.txt   the same settings through their environment variables, one process each,
#                      interleaved (defaults, kick 2, kick 4, stages, ranges), rounds R = 1, 2
#   test.txt           test_vulkan_overlap_switches (the logits bit for bit under each switch)
#   summary.txt        the lines that decide
set -u
start=$(date +%s)
pack=${1:?PACK: the unpacked payload of bench/vulkan_gpu_pack.sh (PACK/bin, PACK/lib)}
tests=${2:-}
out=${OUT:?OUT: where the results go}/overlap
mkdir -p "$out"
el() { echo "== $(( $(date +%s) - start )) s: $*" | tee -a "$out/summary.txt"; }
left() { echo $(( ${BUDGET:-145} - ($(date +%s) - start) )); }
say() { echo "$*" | tee -a "$out/summary.txt"; }
export LD_LIBRARY_PATH="$pack/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
for f in /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json /usr/share/vulkan/icd.d/nvidia_icd.json \
         /etc/vulkan/icd.d/nvidia_icd.json; do
  if [ -f "$f" ]; then export VK_DRIVER_FILES="$f" VK_ICD_FILENAMES="$f"; break; fi
done
{ date -u; timeout 10 nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv; } > "$out/gpu.txt" 2>&1
cat "$out/gpu.txt"
unset MST_VULKAN_KICK_EVERY MST_VULKAN_NO_KICK MST_VULKAN_BARRIERS MST_VULKAN_PROFILE
B=$pack/bin/bench_vulkan
common="--layers 48 --prefill 512 --decode 64 --no-cpu --no-streamed"
show() { grep -E "^vulkan resident|device work per layer|waited submissions|per decode token: |command buffers per" "$1" | cut -c1-230 |
         tee -a "$out/summary.txt"; }

# 1. One process: the defaults, the level profile, the settings A/B (~9 s to build and upload
#    the model, ~1 s a run after that).
t=$(left); [ "$t" -gt 60 ] && t=60
el "bench_vulkan defaults, --level-profile, --ab-overlap"
timeout "$t" "$B" $common --level-profile --ab-overlap > "$out/inprocess.txt" 2>&1
say "rc $?"
show "$out/inprocess.txt"
grep -A40 "^level profile" "$out/inprocess.txt" | cut -c1-260 | tee -a "$out/summary.txt"
grep -A7 "^overlap settings" "$out/inprocess.txt" | cut -c1-230 | tee -a "$out/summary.txt"

# 2. Each setting through its environment variable, one process each, interleaved.
settings=("defaults:" "kick2:MST_VULKAN_KICK_EVERY=2" "kick4:MST_VULKAN_KICK_EVERY=4"
          "stages:MST_VULKAN_BARRIERS=stages" "ranges:MST_VULKAN_BARRIERS=ranges")
for r in 1 2; do
  for s in "${settings[@]}"; do
    name=${s%%:*} envs=${s#*:}
    t=$(left); [ "$t" -gt 25 ] && t=25
    [ "$t" -lt 14 ] && { el "out of time before $name round $r"; continue; }
    el "bench_vulkan $name round $r ${envs:-(defaults)}"
    env $envs timeout "$t" "$B" $common > "$out/bv_${name}_$r.txt" 2>&1
    show "$out/bv_${name}_$r.txt"
  done
done
say "separate processes, decode tok/s (each round's, sorted):"
for s in "${settings[@]}"; do
  name=${s%%:*}
  vals=$(cat "$out"/bv_${name}_*.txt 2>/dev/null | sed -n 's/^vulkan resident (device path): decode \([0-9.]*\) tok\/s.*/\1/p' | sort -n | tr '\n' ' ')
  say "  $name: ${vals:-none}"
done

# 3. The switches' bit-for-bit test on this device, if given and time is left.
if [ -n "$tests" ] && [ -x "$tests/test_vulkan_overlap_switches" ]; then
  t=$(left)
  if [ "$t" -gt 10 ]; then
    if [ ! -e /work/main ] || [ -L /work/main ]; then mkdir -p /work && ln -sfn "$PWD" /work/main; fi
    el "test_vulkan_overlap_switches"
    OMP_WAIT_POLICY=passive timeout "$t" "$tests/test_vulkan_overlap_switches" > "$out/test.txt" 2>&1
    say "test_vulkan_overlap_switches: rc $? $(grep -E '^\[  (PASSED|FAILED) ' "$out/test.txt" | tr '\n' ' ')"
  else
    el "out of time before test_vulkan_overlap_switches"
  fi
fi
el done
