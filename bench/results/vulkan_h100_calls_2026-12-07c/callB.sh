#!/usr/bin/env bash
# Lead call B (2026-12-07, evening): main with qkvone (q/k/v one dispatch, q's norm_rope in k's)
# and levels2 (the split attention's combine in its first pass) merged. The golden suites and the
# fusions' tests in parallel (the first GPU run of the new counters' memory ordering); then
# bench_vulkan's 48-layer resident decode with the defaults, MST_VULKAN_QKV_FUSION=0 and
# MST_VULKAN_ATTENTION_COMBINE_FUSION=0 interleaved, 3 rounds, llama.cpp's Vulkan build between
# rounds, and a level profile with the defaults. At most ~560 s.
set -u
start=$(date +%s)
el() { echo "== $(( $(date +%s) - start )) s: $*"; }
left() { echo $(( ${BUDGET:-560} - ($(date +%s) - start) )); }
for f in .gl/*.deb; do dpkg -x $f / 2>/dev/null; done; ldconfig
P=.gpu/m2 W=/tmp/w
mkdir -p $W/pack $OUT/lead; rm -rf $W/pack/*; tar -C $W/pack -xJf $P/payload.tar.xz || exit 1
rm -rf $W/tb; tar -C $W -xJf $P/tests.tar.xz || exit 1
export LD_LIBRARY_PATH=$W/pack/lib
for f in /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json /usr/share/vulkan/icd.d/nvidia_icd.json /etc/vulkan/icd.d/nvidia_icd.json; do
  if [ -f "$f" ]; then export VK_DRIVER_FILES="$f" VK_ICD_FILENAMES="$f"; break; fi; done
{ date -u; timeout 10 nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv; nproc; } | tee $OUT/lead/gpu.txt
M=$W/pack/bin/moestream mst=$W/qwen3-30b-a3b-48.mst gguf=$W/qwen3-30b-a3b-48.gguf
( [ -f $gguf ] || { timeout 300 $M synth --config $W/pack/qwen3-30b-a3b.json --layers 48 $mst > $W/synth48.txt 2>&1 &&
  timeout 200 $M convert $mst $gguf > $W/convert48.txt 2>&1; }; echo "files rc $?" >> $W/synth48.txt ) &
if [ ! -e /work/main ] || [ -L /work/main ]; then mkdir -p /work && ln -sfn "$PWD" /work/main; fi
el "golden suites and the fusion tests, in parallel, at most 100 s"
mkdir -p $OUT/lead/golden
for t in $(ls $W/tb); do
  envs="MST_CPU_ACT_BITS=16"; [ $t = test_golden_gguf ] && envs="MST_VULKAN_COOPMAT_PRECISION=exact"
  ( env $envs OMP_WAIT_POLICY=passive timeout 95 $W/tb/$t --gtest_filter='*ulkan*-*rained*' > $OUT/lead/golden/$t.txt 2>&1; echo "rc $?" >> $OUT/lead/golden/$t.txt ) &
done
while pgrep -f "$W/tb/" > /dev/null; do sleep 2; done
for t in $OUT/lead/golden/*.txt; do echo "$(basename $t .txt): $(tail -1 $t) $(grep -E '^\[  (PASSED|FAILED) ' $t | tr '\n' ' ')"; grep -E "^\[  FAILED  \] .*\.|actual: |Failure" $t | head -12 | cut -c1-200; done
bv() { local label=$1 envs=$2 t; shift 2; t=$(left); [ "$t" -gt 35 ] && t=35; [ "$t" -lt 15 ] && { el "no time for bv $label"; return; }
  env $envs timeout $t $W/pack/bin/bench_vulkan --layers 48 --prefill 512 --decode 64 --no-cpu --no-streamed "$@" > $OUT/lead/bv_$label.txt 2>&1
  echo "bv $label: $(grep -E 'vulkan resident' $OUT/lead/bv_$label.txt | cut -c1-150) | $(grep -oE 'device work per layer[^:]*: [0-9.]+ commands, [0-9.]+ barriers' $OUT/lead/bv_$label.txt) | $(grep -oE 'decode logits hash [0-9a-f]+' $OUT/lead/bv_$label.txt)"; }
L=$W/pack/llama/llama_runner
lr() { local label=$1; local t; t=$(left); [ "$t" -lt 40 ] && { el "out of time before llama $label"; return; }; [ "$t" -gt 45 ] && t=45
  el "llama.cpp $label"; timeout $t $L -m $gguf -ngl 999 -t "$(nproc)" --synthetic-prompt 512 --decode forced -b 512 --backends $W/pack/llama -n 64 --passes 2 > $OUT/lead/llama_$label.txt 2>&1
  grep -E "prompt_first|decode_tok" $OUT/lead/llama_$label.txt | tr '\n' ' '; echo; }
for r in 1 2 3; do
  bv def_$r ""
  bv noqkv_$r MST_VULKAN_QKV_FUSION=0
  bv nocomb_$r MST_VULKAN_ATTENTION_COMBINE_FUSION=0
  if grep -q "files rc" $W/synth48.txt 2>/dev/null && [ -f $gguf ]; then lr $r; fi
done
el "level profile, defaults"; t=$(left); [ "$t" -gt 45 ] && t=45
[ "$t" -gt 20 ] && { timeout $t $W/pack/bin/bench_vulkan --layers 48 --prefill 512 --decode 8 --no-cpu --no-streamed --level-profile > $OUT/lead/bv_levels.txt 2>&1; grep -A22 "level profile" $OUT/lead/bv_levels.txt | cut -c1-200; }
if [ "$(left)" -gt 60 ] && [ -f $gguf ]; then lr extra; fi
cd $OUT && tar -czf $OUT/results_b.tgz --exclude results_b.tgz . 2>/dev/null; find $OUT -mindepth 1 -maxdepth 1 ! -name results_b.tgz -exec rm -rf {} +
el done
