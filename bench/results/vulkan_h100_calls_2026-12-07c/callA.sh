#!/usr/bin/env bash
# Lead call A (2026-12-07, evening): main with the exact q4 staging (MST_VULKAN_COOPMAT_PRECISION=exact)
# and the KV mirror grown on the device. The golden suites in parallel (test_golden_gguf under
# exact, as ctest pins it); bench_vulkan's 48-layer resident decode and prefill, 3 rounds, and
# llama.cpp's Vulkan build on the same weights between them; one level profile; one streamed run.
# At most ~560 s.
set -u
start=$(date +%s)
el() { echo "== $(( $(date +%s) - start )) s: $*"; }
left() { echo $(( ${BUDGET:-560} - ($(date +%s) - start) )); }
for f in .gl/*.deb; do dpkg -x $f / 2>/dev/null; done; ldconfig
P=.gpu/m1 W=/tmp/w
mkdir -p $W/pack $OUT/lead; rm -rf $W/pack/*; tar -C $W/pack -xJf $P/payload.tar.xz || exit 1
rm -rf $W/tb; tar -C $W -xJf $P/tests.tar.xz || exit 1
export LD_LIBRARY_PATH=$W/pack/lib
for f in /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json /usr/share/vulkan/icd.d/nvidia_icd.json /etc/vulkan/icd.d/nvidia_icd.json; do
  if [ -f "$f" ]; then export VK_DRIVER_FILES="$f" VK_ICD_FILENAMES="$f"; break; fi; done
{ date -u; timeout 10 nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv; nproc; } | tee $OUT/lead/gpu.txt
M=$W/pack/bin/moestream mst=$W/qwen3-30b-a3b-48.mst gguf=$W/qwen3-30b-a3b-48.gguf
( timeout 300 $M synth --config $W/pack/qwen3-30b-a3b.json --layers 48 $mst > $W/synth48.txt 2>&1 &&
  timeout 200 $M convert $mst $gguf > $W/convert48.txt 2>&1; echo "files rc $?" >> $W/synth48.txt ) &
if [ ! -e /work/main ] || [ -L /work/main ]; then mkdir -p /work && ln -sfn "$PWD" /work/main; fi
el "golden suites and the new tests, in parallel, at most 100 s"
mkdir -p $OUT/lead/golden
for t in test_golden_qwen3_5_moe test_golden_gpt_oss test_golden_mixtral test_golden_qwen3_moe test_golden_deepseek_v3 test_golden_packed test_golden_gguf test_vulkan_gemm test_vulkan_gemm_precision test_vulkan_kv_append_fusion test_vulkan_wait_causes test_vulkan_overlap_switches; do
  [ -x $W/tb/$t ] || { echo "no $t"; continue; }
  envs="MST_CPU_ACT_BITS=16"; [ $t = test_golden_gguf ] && envs="MST_VULKAN_COOPMAT_PRECISION=exact"
  ( env $envs OMP_WAIT_POLICY=passive timeout 90 $W/tb/$t --gtest_filter='*ulkan*-*rained*' > $OUT/lead/golden/$t.txt 2>&1; echo "rc $?" >> $OUT/lead/golden/$t.txt ) &
done
while pgrep -f "$W/tb/" > /dev/null; do sleep 2; done
for t in $OUT/lead/golden/*.txt; do echo "$(basename $t .txt): $(tail -1 $t) $(grep -E '^\[  (PASSED|FAILED) ' $t | tr '\n' ' ')"; grep -E "^\[  FAILED  \] .*\.|actual: " $t | head -12 | cut -c1-200; done
grep -h "Q4_1" $OUT/lead/golden/test_golden_gguf.txt | head -8 | cut -c1-200
grep -h "error exact\|error split" $OUT/lead/golden/test_vulkan_gemm_precision.txt | head -12
bv() { local label=$1 envs=$2 t; shift 2; t=$(left); [ "$t" -gt 40 ] && t=40; [ "$t" -lt 15 ] && { el "no time for bv $label"; return; }
  env $envs timeout $t $W/pack/bin/bench_vulkan --layers 48 --prefill 512 --decode 64 --no-cpu "$@" > $OUT/lead/bv_$label.txt 2>&1
  echo "bv $label: $(grep -E 'vulkan resident|vulkan streamed' $OUT/lead/bv_$label.txt | cut -c1-220 | tr '\n' ' ')"; grep -E "waited submissions" $OUT/lead/bv_$label.txt | head -2 | cut -c1-220; }
el "waiting for the files"; while ! grep -q "files rc" $W/synth48.txt 2>/dev/null && [ "$(left)" -gt 200 ]; do sleep 5; done
tail -2 $W/synth48.txt
L=$W/pack/llama/llama_runner
lr() { local label=$1; local t; t=$(left); [ "$t" -lt 20 ] && { el "out of time before llama $label"; return; }; [ "$t" -gt 50 ] && t=50
  el "llama.cpp $label"; timeout $t $L -m $gguf -ngl 999 -t "$(nproc)" --synthetic-prompt 512 --decode forced -b 512 --backends $W/pack/llama -n 64 --passes 2 > $OUT/lead/llama_$label.txt 2>&1
  grep -E "prompt_first|decode_tok" $OUT/lead/llama_$label.txt | tr '\n' ' '; echo; }
bv r1 "" --no-streamed
[ -f $gguf ] && lr 1
bv r2 "" --no-streamed
[ -f $gguf ] && lr 2
bv r3 "" --no-streamed
el "level profile"; t=$(left); [ "$t" -gt 60 ] && t=60
[ "$t" -gt 20 ] && { timeout $t $W/pack/bin/bench_vulkan --layers 48 --prefill 512 --decode 8 --no-cpu --no-streamed --level-profile > $OUT/lead/bv_levels.txt 2>&1; grep -A24 "level profile" $OUT/lead/bv_levels.txt | cut -c1-200; }
el "streamed"; bv streamed "" --no-resident
cd $OUT && tar -czf $OUT/results_a.tgz --exclude results_a.tgz . 2>/dev/null; find $OUT -mindepth 1 -maxdepth 1 ! -name results_a.tgz -exec rm -rf {} +
el done
