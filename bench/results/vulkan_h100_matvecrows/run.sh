#!/usr/bin/env bash
# matvecrows on an NVIDIA GPU (docs/gpu_decode_kernels.md, "Several rows a lane"): do the
# one-token product kernels gain from P rows a lane (MST_VULKAN_MATVEC_TUNING=...=LxRxP)?
# The sweep first (its grid carries the P > 1 shapes beside the LxR ones), then the 48-layer
# Qwen3-30B-A3B decode at context 512 under the defaults, a few fixed candidates (x normalised
# in shared memory, MST_VULKAN_NORM_X_SHARED=1, among them) and the sweep's best, one process
# each, interleaved; then, if given, the bit-for-bit tests.
#
#   OUT=DIR bash bench/results/vulkan_h100_matvecrows/run.sh PACK [TESTS]
# PACK: bench/vulkan_gpu_pack.sh's payload, unpacked (PACK/bin, PACK/lib,
# PACK/qwen3-30b-a3b.json); TESTS (optional): a folder holding the test binaries named below
# (they read tests/data through /work/main). At most ~540 s (BUDGET=seconds to change it).
# Everything goes to $OUT/matvecrows:
#   gpu.txt        the device and driver
#   sweep.txt      bench_vulkan --matvec-sweep (4 layers, 5 rounds): per family, each shape's
#                  device us a 48-layer token against the default's; BEST_MATVEC_TUNING=...
#   bv_NAME_R.txt  bench_vulkan --layers 48 --prefill 512 --decode 64 under setting NAME, round R
#   test_NAME.txt  the tests (fused against unfused commands bit for bit at P > 1)
#   summary.txt    the lines that decide
set -u
start=$(date +%s)
pack=${1:?PACK: the unpacked payload of bench/vulkan_gpu_pack.sh (PACK/bin, PACK/lib)}
tests=${2:-}
out=${OUT:?OUT: where the results go}/matvecrows
mkdir -p "$out"
el() { echo "== $(( $(date +%s) - start )) s: $*" | tee -a "$out/summary.txt"; }
left() { echo $(( ${BUDGET:-540} - ($(date +%s) - start) )); }
say() { echo "$*" | tee -a "$out/summary.txt"; }
export LD_LIBRARY_PATH="$pack/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
for f in /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json /usr/share/vulkan/icd.d/nvidia_icd.json \
         /etc/vulkan/icd.d/nvidia_icd.json; do
  if [ -f "$f" ]; then export VK_DRIVER_FILES="$f" VK_ICD_FILENAMES="$f"; break; fi
done
{ date -u; timeout 10 nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv; } > "$out/gpu.txt" 2>&1
cat "$out/gpu.txt"
unset MST_VULKAN_MATVEC_TUNING MST_VULKAN_PROFILE
B=$pack/bin/bench_vulkan

# 1. The sweep: every shape of the default grid, each family at it, checked against the
#    default's results, then timed in interleaved rounds.
t=$(left); [ "$t" -gt 150 ] && t=150
el "bench_vulkan --matvec-sweep"
timeout "$t" "$B" --matvec-sweep --config "$pack/qwen3-30b-a3b.json" --layers 4 --rounds 5 > "$out/sweep.txt" 2>&1
say "rc $?"
grep -E "^(dense|swiglu|combine):|^  [0-9]+x|^best tuning|^BEST_MATVEC_TUNING" "$out/sweep.txt" | cut -c1-200 |
  tee -a "$out/summary.txt"
best=$(sed -n 's/^BEST_MATVEC_TUNING=//p' "$out/sweep.txt")

# 2. The 48-layer decode, one process a setting, interleaved over two rounds.
common="--layers 48 --prefill 512 --decode 64 --no-cpu --no-streamed"
T=MST_VULKAN_MATVEC_TUNING
settings=("defaults:" "d32x4x2:$T=dense=32x4x2" "d32x4x4:$T=dense=32x4x4"
          "all32x4x4:$T=dense=32x4x4,swiglu=32x4x2,combine=32x4x2" "xshared:MST_VULKAN_NORM_X_SHARED=1"
          "xshared_d32x4x4:MST_VULKAN_NORM_X_SHARED=1 $T=dense=32x4x4")
[ -n "$best" ] && [ "$best" != default ] && settings+=("best:$T=$best")
for r in 1 2; do
  for s in "${settings[@]}"; do
    name=${s%%:*} envs=${s#*:}
    t=$(left); [ "$t" -gt 30 ] && t=30
    [ "$t" -lt 15 ] && { el "out of time before $name round $r"; continue; }
    el "bench_vulkan $name round $r ${envs:-(defaults)}"
    env $envs timeout "$t" "$B" $common > "$out/bv_${name}_$r.txt" 2>&1
    grep -E "^vulkan resident|device work per layer" "$out/bv_${name}_$r.txt" | cut -c1-200 | tee -a "$out/summary.txt"
  done
done
say "decode tok/s per setting (each round's, sorted):"
for s in "${settings[@]}"; do
  name=${s%%:*}
  vals=$(cat "$out"/bv_${name}_*.txt 2>/dev/null |
         sed -n 's/^vulkan resident (device path): decode \([0-9.]*\) tok\/s.*/\1/p' | sort -n | tr '\n' ' ')
  say "  $name (${s#*:}): ${vals:-none}"
done

# 3. The bit-for-bit tests on this device, if given and time is left.
if [ -n "$tests" ]; then
  if [ ! -e /work/main ] || [ -L /work/main ]; then mkdir -p /work && ln -sfn "$PWD" /work/main; fi
  for name in test_vulkan_matvec_tuning test_vulkan_attention_fusion test_vulkan_qkv_fusion \
              test_vulkan_router_topk_fusion test_vulkan_moe_fusion; do
    [ -x "$tests/$name" ] || { say "$name: not in $tests"; continue; }
    t=$(left)
    [ "$t" -lt 20 ] && { el "out of time before $name"; continue; }
    el "$name"
    MST_CPU_ACT_BITS=16 OMP_WAIT_POLICY=passive timeout "$t" "$tests/$name" > "$out/$name.txt" 2>&1
    say "$name: rc $? $(grep -E '^\[  (PASSED|FAILED) ' "$out/$name.txt" | tr '\n' ' ')"
  done
fi
el done
