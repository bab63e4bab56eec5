#!/usr/bin/env bash
# The lead's last call of 2026-12-07: lib-host's script (the library's resident decode at 8 and
# 16 layers: first-token and later-token host CPU, replayed submissions, pipelines compiled),
# then the library against bench_vulkan at 48 layers in the same call. At most ~290 s.
set -u
start=$(date +%s)
el() { echo "== $(( $(date +%s) - start )) s: $*"; }
left() { echo $(( 285 - ($(date +%s) - start) )); }
for f in .gl/*.deb; do dpkg -x $f / 2>/dev/null; done; ldconfig
P=.gpu/merged10 W=/tmp/w
rm -rf $W/pack; mkdir -p $W/pack $OUT/lead3; tar -C $W/pack -xJf $P/payload.tar.xz || exit 1
export LD_LIBRARY_PATH=$W/pack/lib
for f in /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json /usr/share/vulkan/icd.d/nvidia_icd.json /etc/vulkan/icd.d/nvidia_icd.json; do
  if [ -f "$f" ]; then export VK_DRIVER_FILES="$f" VK_ICD_FILENAMES="$f"; break; fi; done
{ date -u; timeout 10 nvidia-smi --query-gpu=name,driver_version --format=csv; } | tee $OUT/lead3/gpu.txt
M=$W/pack/bin/moestream mst=$W/qwen3-30b-a3b-48.mst
( timeout 150 $M synth --config $W/pack/qwen3-30b-a3b.json --layers 48 $mst > $W/synth48.txt 2>&1; echo "synth rc $?" >> $W/synth48.txt ) &
el "lib-host"; mkdir -p $OUT/lib-host; timeout 115 bash $P/lib-host/run.sh > $OUT/lib-host/console.txt 2>&1; cat $OUT/lib-host/console.txt | cut -c1-260
while ! grep -q "synth rc" $W/synth48.txt 2>/dev/null && [ "$(left)" -gt 100 ]; do sleep 3; done; tail -1 $W/synth48.txt
t=$(left); [ "$t" -gt 90 ] && t=90
if [ "$t" -gt 40 ] && grep -q "synth rc 0" $W/synth48.txt; then
  el "library 48 layers"
  timeout $t $M bench -m $mst --backend vulkan --gpu-cache-mb 40000 --cache-mb 40000 --prompt-tokens 512 --gen-tokens 64 \
    --repeat 2 --no-ceilings > $OUT/lead3/lib48.txt 2>&1
  grep -E "^k=|CPU of the evaluating|first decode|replayed|pipelines" $OUT/lead3/lib48.txt | cut -c1-260
fi
t=$(left); [ "$t" -gt 40 ] && t=40
[ "$t" -gt 15 ] && { el "bench_vulkan 48"; timeout $t $W/pack/bin/bench_vulkan --layers 48 --prefill 512 --decode 64 --no-cpu --no-streamed > $OUT/lead3/bv48.txt 2>&1; grep -E "vulkan resident|host CPU" $OUT/lead3/bv48.txt | cut -c1-200; }
cd $OUT && tar -czf $OUT/results_c.tgz --exclude results_c.tgz . 2>/dev/null; find $OUT -mindepth 1 -maxdepth 1 ! -name results_c.tgz -exec rm -rf {} +
el done
