#!/usr/bin/env bash
# Lead call of 2026-12-08 (verify.sh of 2026-12-07e, which never found a machine, with the
# cooperative GEMM tests given 240 s and a profile of the new defaults before the third round): the prefill
# attention on cooperative matrices on (and MST_VULKAN_FLASH_ATTENTION=auto mended: it had
# left the kernel off), the dense prefill products on tiling 1x2x4x128. The golden suites with
# the new defaults, the cooperative GEMM tests, then bench_vulkan's 48-layer round against
# main before the flips (OLD_BV: its bench_vulkan, xz), 3 rounds interleaved, llama.cpp's
# Vulkan build on the same weights between them where LLAMA is set. Environment: PACKDIR,
# OLD_BV, BUDGET, LLAMA.
set -u
start=$(date +%s)
el() { echo "== $(( $(date +%s) - start )) s: $*"; }
left() { echo $(( ${BUDGET:-380} - ($(date +%s) - start) )); }
for f in .gl/*.deb; do dpkg -x $f / 2>/dev/null; done; ldconfig
P=$PACKDIR W=/tmp/w
mkdir -p $W/pack $OUT/lead; rm -rf $W/pack/*; tar -C $W/pack -xJf $P/payload.tar.xz || exit 1
rm -rf $W/tb; tar -C $W -xJf $P/tests.tar.xz || exit 1
xz -dc $OLD_BV > $W/bench_vulkan_old && chmod +x $W/bench_vulkan_old
export LD_LIBRARY_PATH=$W/pack/lib
for f in /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json /usr/share/vulkan/icd.d/nvidia_icd.json /etc/vulkan/icd.d/nvidia_icd.json; do
  if [ -f "$f" ]; then export VK_DRIVER_FILES="$f" VK_ICD_FILENAMES="$f"; break; fi; done
{ date -u; timeout 10 nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv; } | tee $OUT/lead/gpu.txt
M=$W/pack/bin/moestream mst=$W/qwen3-30b-a3b-48.mst gguf=$W/qwen3-30b-a3b-48.gguf
[ -n "${LLAMA:-}" ] && ( [ -f $gguf ] || { nice timeout 300 $M synth --config $W/pack/qwen3-30b-a3b.json --layers 48 $mst > $W/synth48.txt 2>&1 &&
  nice timeout 200 $M convert $mst $gguf > $W/convert48.txt 2>&1; }; echo "files rc $?" >> $W/synth48.txt ) &
if [ ! -e /work/main ] || [ -L /work/main ]; then mkdir -p /work && ln -sfn "$PWD" /work/main; fi
el "golden suites (new defaults) and the cooperative GEMM and attention tests, in parallel, at most 100 s (GEMM 240 s)"
mkdir -p $OUT/lead/golden
for t in $(ls $W/tb); do
  envs="MST_CPU_ACT_BITS=16"; [ $t = test_golden_gguf ] && envs="MST_VULKAN_COOPMAT_PRECISION=exact"
  case $t in test_golden_*) filt='*ulkan*-*rained*';; test_vulkan_gemm) filt='*Cooperative*';; test_vulkan_ops) filt='*Attention*';; *) filt='*';; esac
  tl=100; [ $t = test_vulkan_gemm ] && tl=240
  ( env $envs OMP_WAIT_POLICY=passive timeout $tl $W/tb/$t --gtest_filter="$filt" > $OUT/lead/golden/$t.txt 2>&1; echo "rc $?" >> $OUT/lead/golden/$t.txt ) &
done
while pgrep -f "$W/tb/" > /dev/null; do sleep 2; done
for t in $OUT/lead/golden/*.txt; do echo "$(basename $t .txt): $(tail -1 $t) $(grep -E '^\[  (PASSED|FAILED) ' $t | tr '\n' ' ')"; grep -E "^\[  FAILED  \] .*\.|actual: |Failure" $t | head -12 | cut -c1-220; done
bv() { local label=$1 bin=$2 t; t=$(left); [ "$t" -gt 35 ] && t=35; [ "$t" -lt 15 ] && { el "no time for bv $label"; return; }
  timeout $t $bin --layers 48 --prefill 512 --decode 64 --no-cpu --no-streamed > $OUT/lead/bv_$label.txt 2>&1
  echo "bv $label: $(grep -oE 'decode [0-9.]+ tok/s' $OUT/lead/bv_$label.txt | head -1), $(grep -oE 'prefill 512 tokens [0-9.]+ tok/s' $OUT/lead/bv_$label.txt) | $(grep -oE 'prefill attention: [0-9]+ calls on cooperative matrices' $OUT/lead/bv_$label.txt) | $(grep -oE 'tiling [^ ]+' $OUT/lead/bv_$label.txt | head -1) | $(grep -oE 'decode logits hash [0-9a-f]+' $OUT/lead/bv_$label.txt)"; }
L=$W/pack/llama/llama_runner
lr() { local label=$1; local t; t=$(left); [ "$t" -lt 40 ] && { el "out of time before llama $label"; return; }; [ "$t" -gt 45 ] && t=45
  el "llama.cpp $label"; timeout $t $L -m $gguf -ngl 999 -t "$(nproc)" --synthetic-prompt 512 --decode forced -b 512 --backends $W/pack/llama -n 64 --passes 2 > $OUT/lead/llama_$label.txt 2>&1
  grep -E "prompt_first|decode_tok" $OUT/lead/llama_$label.txt | tr '\n' ' '; echo; }
for r in 1 2; do
  bv new_$r $W/pack/bin/bench_vulkan
  bv old_$r $W/bench_vulkan_old
  if grep -q "files rc 0" $W/synth48.txt 2>/dev/null && [ -f $gguf ]; then lr $r; fi
done
t=$(left); if [ "$t" -gt 30 ]; then [ "$t" -gt 60 ] && t=60; el "profile of the new defaults"
  timeout $t $W/pack/bin/bench_vulkan --layers 48 --prefill 512 --decode 64 --no-cpu --no-streamed --profile --level-profile > $OUT/lead/bv_profile.txt 2>&1; echo "profile rc $?"; fi
for r in 3; do
  bv new_$r $W/pack/bin/bench_vulkan
  bv old_$r $W/bench_vulkan_old
  if grep -q "files rc 0" $W/synth48.txt 2>/dev/null && [ -f $gguf ]; then lr $r; fi
done
cd $OUT && tar -czf $OUT/results_v.tgz --exclude results_v.tgz . 2>/dev/null; find $OUT -mindepth 1 -maxdepth 1 ! -name results_v.tgz -exec rm -rf {} +
el done
