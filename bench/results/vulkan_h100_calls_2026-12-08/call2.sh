#!/usr/bin/env bash
# Lead call 2 of 2026-12-08 (prepared 01:20 UTC; NOT RUN: five tries to 01:52 found no machine and
# then the device loans were paused; the next session's first call). The decode kernels of the l2warm, routerlat and attnlat branches
# behind their switches. First the golden suites with every new switch on (SWITCHES_ON) and
# the Vulkan op/fusion tests; the device's cooperative-matrix rate and the GEMM sweep (main and
# 1x2x4x128) against it; then 48-layer rounds (prefill 512, decode 64, context 512),
# each setting its own process, interleaved over ROUNDS rounds, llama.cpp's Vulkan build on the
# same weights after each round; then a level profile with every switch on and the prefill's
# device time by command (MST_VULKAN_PROFILE=2, 8 layers).
# Environment: PACKDIR, BUDGET, SWITCHES_ON (env words), SETTINGS (settings separated by ';',
# each "label:ENV=V ENV=V", "label:" for the defaults), ROUNDS. As tried (560 s, budget allowing):
#   SWITCHES_ON="MST_VULKAN_L2_WARM=1 MST_VULKAN_SPLIT_GQA=1 MST_VULKAN_SPLIT_MERGE_ONESHOT=1"
#   SETTINGS="default:;ahead0:MST_VULKAN_ROUTER_AHEAD=0;warm:MST_VULKAN_L2_WARM=1;
#     oneshot:MST_VULKAN_SPLIT_MERGE_ONESHOT=1;gqa:MST_VULKAN_SPLIT_GQA=1;
#     b64:MST_VULKAN_SPLIT_BLOCK=64 MST_VULKAN_SPLIT_MERGE_ONESHOT=1;
#     b128:MST_VULKAN_SPLIT_BLOCK=128 MST_VULKAN_SPLIT_MERGE_ONESHOT=1;kick2:MST_VULKAN_KICK_EVERY=2;
#     preflip:MST_VULKAN_FLASH_ATTENTION=off MST_VULKAN_COOP_TUNING=main" (one line, no breaks)
# The pack: bench/vulkan_gpu_pack.sh with LLAMA_DIR=build/llama_cpp; tests.tar.xz holds tb/ with
# the six test_golden_* and test_vulkan_{attention_split_latency,l2_warm,router_topk_fusion,
# coopmat_rate,attention_combine_fusion,moe_fusion}, stripped.
set -u
start=$(date +%s)
el() { echo "== $(( $(date +%s) - start )) s: $*"; }
left() { echo $(( ${BUDGET:-560} - ($(date +%s) - start) )); }
for f in .gl/*.deb; do dpkg -x $f / 2>/dev/null; done; ldconfig
P=$PACKDIR W=/tmp/w
mkdir -p $W/pack $OUT/lead; rm -rf $W/pack/*; tar -C $W/pack -xJf $P/payload.tar.xz || exit 1
rm -rf $W/tb; tar -C $W -xJf $P/tests.tar.xz || exit 1
export LD_LIBRARY_PATH=$W/pack/lib
for f in /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json /usr/share/vulkan/icd.d/nvidia_icd.json /etc/vulkan/icd.d/nvidia_icd.json; do
  if [ -f "$f" ]; then export VK_DRIVER_FILES="$f" VK_ICD_FILENAMES="$f"; break; fi; done
{ date -u; timeout 10 nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv; } | tee $OUT/lead/gpu.txt
M=$W/pack/bin/moestream mst=$W/qwen3-30b-a3b-48.mst gguf=$W/qwen3-30b-a3b-48.gguf
( nice timeout 300 $M synth --config $W/pack/qwen3-30b-a3b.json --layers 48 $mst > $W/synth48.txt 2>&1 &&
  nice timeout 200 $M convert $mst $gguf > $W/convert48.txt 2>&1; echo "files rc $?" >> $W/synth48.txt ) &
if [ ! -e /work/main ] || [ -L /work/main ]; then mkdir -p /work && ln -sfn "$PWD" /work/main; fi
el "golden suites with the switches on ($SWITCHES_ON), the Vulkan op and fusion tests with the defaults; at most 100 s"
mkdir -p $OUT/lead/golden
for t in $(ls $W/tb); do
  envs="MST_CPU_ACT_BITS=16"; [ $t = test_golden_gguf ] && envs="MST_VULKAN_COOPMAT_PRECISION=exact"
  filt='*'; case $t in test_golden_*) filt='*ulkan*-*rained*'; envs="$envs $SWITCHES_ON";; esac
  ( env $envs OMP_WAIT_POLICY=passive timeout 100 $W/tb/$t --gtest_filter="$filt" > $OUT/lead/golden/$t.txt 2>&1; echo "rc $?" >> $OUT/lead/golden/$t.txt ) &
done
while pgrep -f "$W/tb/" > /dev/null; do sleep 2; done
for t in $OUT/lead/golden/*.txt; do echo "$(basename $t .txt): $(tail -1 $t) $(grep -E '^\[  (PASSED|FAILED) ' $t | tr '\n' ' ')"; grep -E "^\[  FAILED  \] .*\.|actual: |Failure" $t | head -12 | cut -c1-220; done
bv() { local label=$1 envs=$2 t; t=$(left); [ "$t" -gt 35 ] && t=35; [ "$t" -lt 15 ] && { el "no time for bv $label"; return; }
  env $envs timeout $t $W/pack/bin/bench_vulkan --layers 48 --prefill 512 --decode 64 --no-cpu --no-streamed > $OUT/lead/bv_$label.txt 2>&1
  echo "bv $label: $(grep -oE 'decode [0-9.]+ tok/s' $OUT/lead/bv_$label.txt | head -1), $(grep -oE 'prefill 512 tokens [0-9.]+ tok/s' $OUT/lead/bv_$label.txt) | $(grep -oE '[0-9.]+ commands, [0-9.]+ barriers' $OUT/lead/bv_$label.txt | head -1) | $(grep -oE 'decode logits hash [0-9a-f]+' $OUT/lead/bv_$label.txt)"; }
L=$W/pack/llama/llama_runner
lr() { local label=$1; local t; t=$(left); [ "$t" -lt 40 ] && { el "out of time before llama $label"; return; }; [ "$t" -gt 45 ] && t=45
  el "llama.cpp $label"; timeout $t $L -m $gguf -ngl 999 -t "$(nproc)" --synthetic-prompt 512 --decode forced -b 512 --backends $W/pack/llama -n 64 --passes 2 > $OUT/lead/llama_$label.txt 2>&1
  grep -E "prompt_first|decode_tok" $OUT/lead/llama_$label.txt | tr '\n' ' '; echo; }
el "cooperative-matrix rate"; timeout 60 $W/pack/bin/bench_vulkan_prefill --coopmat-rate 2>&1 | tee $OUT/lead/rate.txt | tail -1
el "GEMM sweep, main and 1x2x4x128"; timeout 100 $W/pack/bin/bench_vulkan_prefill --sweep --tokens 512 --rounds 3 --tunings 1x2x4x128 > $OUT/lead/sweep.txt 2>&1; echo "sweep rc $?"
grep -E "TFLOP|BEST" $OUT/lead/sweep.txt | head -30
IFS=';' read -ra S <<< "$SETTINGS"
for r in $(seq 1 ${ROUNDS:-3}); do
  for s in "${S[@]}"; do bv "${s%%:*}_$r" "${s#*:}"; done
  if grep -q "files rc 0" $W/synth48.txt 2>/dev/null && [ -f $gguf ]; then lr $r; fi
  if [ $r = 1 ]; then
    for lp in "default:" "on:$SWITCHES_ON"; do
      t=$(left); if [ "$t" -gt 30 ]; then [ "$t" -gt 45 ] && t=45; el "level profile, ${lp%%:*}"
        env ${lp#*:} timeout $t $W/pack/bin/bench_vulkan --layers 48 --prefill 512 --decode 16 --no-cpu --no-streamed --level-profile > $OUT/lead/bv_levels_${lp%%:*}.txt 2>&1; echo "levels rc $?"
        grep -E "^ +[0-9.]+ +[0-9.]+ +[0-9.-]+ +[0-9.-]+ +[a-z]" $OUT/lead/bv_levels_${lp%%:*}.txt | head -12; fi
    done
  fi
done
t=$(left); if [ "$t" -gt 30 ]; then [ "$t" -gt 60 ] && t=60; el "prefill device time by command (8 layers)"
  MST_VULKAN_PROFILE=2 timeout $t $W/pack/bin/bench_vulkan --layers 8 --prefill 512 --decode 2 --no-cpu --no-streamed --profile > $OUT/lead/bv_prefill_profile.txt 2>&1; echo "prefill profile rc $?"; fi
cd $OUT && tar -czf $OUT/results_v.tgz --exclude results_v.tgz . 2>/dev/null; find $OUT -mindepth 1 -maxdepth 1 ! -name results_v.tgz -exec rm -rf {} +
el done
