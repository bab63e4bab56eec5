#!/usr/bin/env bash
# The second call on the same warm machine (callM4a.sh unpacked the payload; the 48-layer
# files are there): the lead's matvec sweep with the quarter-block q4 units now the default
# and the best tuning against the defaults; the test suites that matter on a real GPU
# (golden suites on Vulkan, the fusions' bit-for-bit tests, the router's last-workgroup
# top-k whose atomic counter lavapipe cannot exercise), then the other branches' scripts.
set -u
start=$(date +%s)
el() { echo "== $(( $(date +%s) - start )) s: $*"; }
left() { echo $(( ${BUDGET:-560} - ($(date +%s) - start) )); }
for f in .gl/*.deb; do dpkg -x $f / 2>/dev/null; done; ldconfig
P=.gpu/merged9 W=/tmp/w
mkdir -p $W/pack $OUT/lead2; [ -x $W/pack/bin/moestream ] && [ "$(cat $W/pack/.id 2>/dev/null)" = "$(md5sum < $P/payload.tar.xz)" ] ||
  { rm -rf $W/pack; mkdir -p $W/pack; tar -C $W/pack -xJf $P/payload.tar.xz || exit 1; md5sum < $P/payload.tar.xz > $W/pack/.id; }
export LD_LIBRARY_PATH=$W/pack/lib
for f in /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json /usr/share/vulkan/icd.d/nvidia_icd.json /etc/vulkan/icd.d/nvidia_icd.json; do
  if [ -f "$f" ]; then export VK_DRIVER_FILES="$f" VK_ICD_FILENAMES="$f"; break; fi; done
{ date -u; timeout 10 nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv; } | tee $OUT/lead2/gpu.txt
B=$W/pack/bin/bench_vulkan
el "matvec sweep, quarter-block q4 units"
timeout 45 $B --matvec-sweep --config $W/pack/qwen3-30b-a3b.json --layers 4 --rounds 3 > $OUT/lead2/sweep.txt 2>&1
grep -E "^best tuning|^BEST" $OUT/lead2/sweep.txt | cut -c1-250
best=$(sed -n 's/^BEST_MATVEC_TUNING=//p' $OUT/lead2/sweep.txt)
show() { grep -E "vulkan resident|device work per layer" "$1" | cut -c1-200; }
bv() { local label=$1 envs=$2; local t; t=$(left); [ "$t" -lt 30 ] && { el "out of time before $label"; return; }; [ "$t" -gt 40 ] && t=40
  el "bench_vulkan $label $envs"; env $envs timeout $t $B --layers 48 --prefill 512 --decode 64 --no-cpu --no-streamed > $OUT/lead2/bv_$label.txt 2>&1; show $OUT/lead2/bv_$label.txt; }
for r in 1 2; do
  bv default_$r ""
  [ -n "$best" ] && [ "$best" != default ] && bv best_$r "MST_VULKAN_MATVEC_TUNING=$best"
  bv dense64_$r "MST_VULKAN_MATVEC_TUNING=dense=64x4"
done
el "tests on the GPU"
mkdir -p $W/tests && tar -C $W/tests -xJf $P/tests.tar.xz && mkdir -p /work && ln -sfn "$PWD" /work/main
for t in $W/tests/*; do
  tt=$(left); [ "$tt" -lt 40 ] && { el "out of time before $(basename $t)"; break; }; [ "$tt" -gt 60 ] && tt=60
  MST_CPU_ACT_BITS=16 OMP_WAIT_POLICY=passive timeout $tt $t --gtest_filter="${GFILTER:-*ulkan*}" > $OUT/lead2/$(basename $t).txt 2>&1
  echo "$(basename $t): rc $? $(grep -E '^\[  (PASSED|FAILED) ' $OUT/lead2/$(basename $t).txt | tr '\n' ' ') $(grep -c '^\[  SKIPPED' $OUT/lead2/$(basename $t).txt) skipped lines"
  grep -E "^\[  FAILED  \]" $OUT/lead2/$(basename $t).txt | head -5
done
for b in ${BRANCHES:-gpu-levels prefill-host lib-host}; do
  [ -f $P/$b/run.sh ] || { el "no script for $b"; continue; }
  t=$(left); [ "$t" -lt 60 ] && { el "out of time before $b"; break; }; [ "$t" -gt 125 ] && t=125
  el "branch $b"; mkdir -p $OUT/$b
  timeout $t bash $P/$b/run.sh > $OUT/$b/console.txt 2>&1; tail -c 2000 $OUT/$b/console.txt
done
cd $OUT && tar -czf $OUT/results_b.tgz --exclude results_b.tgz . 2>/dev/null; find $OUT -mindepth 1 -maxdepth 1 ! -name results_b.tgz -exec rm -rf {} +
el done
