#!/usr/bin/env bash
# Lead call B (2026-12-07, afternoon 2): main with coopprec (hi half by masking), vktests, libhost
# and overlap merged. The 48-layer file synthesized in the background (for libhost); the Vulkan
# golden suites in parallel under the default (split) staging; the prefill split against f16;
# overlap's script; libhost's script. At most ~570 s.
set -u
start=$(date +%s)
el() { echo "== $(( $(date +%s) - start )) s: $*"; }
left() { echo $(( ${BUDGET:-380} - ($(date +%s) - start) )); }
for f in .gl/*.deb; do dpkg -x $f / 2>/dev/null; done; ldconfig
P=.gpu/m2 W=/tmp/w
mkdir -p $W/pack $OUT/lead; rm -rf $W/pack/*; tar -C $W/pack -xJf $P/payload.tar.xz || exit 1
rm -rf $W/tb; tar -C $W -xJf $P/tests.tar.xz || exit 1
export LD_LIBRARY_PATH=$W/pack/lib
for f in /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json /usr/share/vulkan/icd.d/nvidia_icd.json /etc/vulkan/icd.d/nvidia_icd.json; do
  if [ -f "$f" ]; then export VK_DRIVER_FILES="$f" VK_ICD_FILENAMES="$f"; break; fi; done
{ date -u; timeout 10 nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv; nproc; } | tee $OUT/lead/gpu.txt
M=$W/pack/bin/moestream mst=$W/qwen3-30b-a3b-48.mst
[ -f $mst ] || ( timeout 300 $M synth --config $W/pack/qwen3-30b-a3b.json --layers 48 $mst > $W/synth48.txt 2>&1; echo "synth rc $?" >> $W/synth48.txt ) &
if [ ! -e /work/main ] || [ -L /work/main ]; then mkdir -p /work && ln -sfn "$PWD" /work/main; fi
el "golden suites (split, the default), in parallel, at most 100 s"
mkdir -p $OUT/lead/golden
for t in test_golden_qwen3_5_moe test_golden_gpt_oss test_golden_mixtral test_golden_qwen3_moe test_golden_deepseek_v3 test_golden_packed test_golden_gguf test_vulkan_gemm test_vulkan_gemm_precision test_vulkan_overlap_switches; do
  [ -x $W/tb/$t ] || { echo "no $t"; continue; }
  ( MST_CPU_ACT_BITS=16 OMP_WAIT_POLICY=passive timeout 80 $W/tb/$t --gtest_filter='*ulkan*-*rained*' > $OUT/lead/golden/$t.txt 2>&1; echo "rc $?" >> $OUT/lead/golden/$t.txt ) &
done
wait_tests() { while pgrep -f "$W/tb/" > /dev/null; do sleep 2; done; }
wait_tests
for t in $OUT/lead/golden/*.txt; do echo "$(basename $t .txt): $(tail -1 $t) $(grep -E '^\[  (PASSED|FAILED) ' $t | tr '\n' ' ')"; grep -E "^\[  FAILED  \] .*\.|actual: " $t | head -12 | cut -c1-200; done
bvp() { local label=$1 envs=$2 t; t=$(left); [ "$t" -gt 25 ] && t=25; [ "$t" -lt 12 ] && return
  env $envs timeout $t $W/pack/bin/bench_vulkan --layers 48 --prefill 512 --decode 8 --no-cpu --no-streamed > $OUT/lead/bvp_$label.txt 2>&1
  echo "$label: $(grep -oE 'prefill [0-9]+ tokens [0-9.]+ tok/s' $OUT/lead/bvp_$label.txt | head -1)"; }
el "prefill split / f16"
for r in 1; do bvp split_$r ""; bvp f16_$r MST_VULKAN_COOPMAT_PRECISION=f16; done
el "overlap"; BUDGET=125 timeout 130 bash .gpu/overlap/run.sh $W/pack $W/tb > $OUT/lead/overlap_console.txt 2>&1
cat $OUT/overlap/summary.txt 2>/dev/null | cut -c1-260 | head -70
el "libhost"; t=$(left); [ "$t" -gt 145 ] && t=145
BUDGET=$t WORK=$W timeout $((t+5)) bash .gpu/libhost/run.sh $W/pack > $OUT/lead/libhost_console.txt 2>&1
cat $OUT/libhost/summary.txt 2>/dev/null | cut -c1-260 | head -50
cd $OUT && tar -czf $OUT/results_b.tgz --exclude results_b.tgz . 2>/dev/null; find $OUT -mindepth 1 -maxdepth 1 ! -name results_b.tgz -exec rm -rf {} +
el done
