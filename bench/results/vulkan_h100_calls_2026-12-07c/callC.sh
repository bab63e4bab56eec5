#!/usr/bin/env bash
# Lead call C (2026-12-07, evening): no code change since call B; measurements for the next
# round. The one-token kernel shapes swept on the current kernels (bench_vulkan --matvec-sweep),
# the dense shape 64x4 against the default in the 48-layer decode (the router's top-k fusion off
# with it), and device time by shader of an 8-layer prefill of 512 and its decode
# (MST_VULKAN_PROFILE=2 --profile). At most ~300 s.
set -u
start=$(date +%s)
el() { echo "== $(( $(date +%s) - start )) s: $*"; }
left() { echo $(( ${BUDGET:-300} - ($(date +%s) - start) )); }
for f in .gl/*.deb; do dpkg -x $f / 2>/dev/null; done; ldconfig
P=.gpu/m2 W=/tmp/w
mkdir -p $W/pack $OUT/lead; rm -rf $W/pack/*; tar -C $W/pack -xJf $P/payload.tar.xz || exit 1
export LD_LIBRARY_PATH=$W/pack/lib
for f in /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json /usr/share/vulkan/icd.d/nvidia_icd.json /etc/vulkan/icd.d/nvidia_icd.json; do
  if [ -f "$f" ]; then export VK_DRIVER_FILES="$f" VK_ICD_FILENAMES="$f"; break; fi; done
{ date -u; timeout 10 nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv; } | tee $OUT/lead/gpu.txt
B=$W/pack/bin/bench_vulkan
el "matvec sweep"; timeout 100 $B --matvec-sweep --layers 4 --rounds 5 > $OUT/lead/sweep.txt 2>&1; echo "rc $?"; tail -25 $OUT/lead/sweep.txt | cut -c1-200
for r in 1 2; do for s in def d64; do t=$(left); [ "$t" -gt 30 ] && t=30; [ "$t" -lt 15 ] && continue
  envs=""; [ $s = d64 ] && envs="MST_VULKAN_MATVEC_TUNING=dense=64x4"
  env $envs timeout $t $B --layers 48 --prefill 512 --decode 64 --no-cpu --no-streamed > $OUT/lead/bv_${s}_$r.txt 2>&1
  echo "bv $s $r: $(grep -E 'vulkan resident' $OUT/lead/bv_${s}_$r.txt | cut -c1-110) | $(grep -oE 'device work per layer[^:]*: [0-9.]+ commands, [0-9.]+ barriers' $OUT/lead/bv_${s}_$r.txt)"; done; done
el "profile"; t=$(left); [ "$t" -gt 90 ] && t=90
[ "$t" -gt 20 ] && { MST_VULKAN_PROFILE=2 timeout $t $B --layers 8 --prefill 512 --decode 4 --no-cpu --no-streamed --profile > $OUT/lead/profile8.txt 2>&1; echo "rc $?"; grep -iE "shader|gemm|prefill|us " $OUT/lead/profile8.txt | head -40 | cut -c1-200; }
cd $OUT && tar -czf $OUT/results_c.tgz --exclude results_c.tgz . 2>/dev/null; find $OUT -mindepth 1 -maxdepth 1 ! -name results_c.tgz -exec rm -rf {} +
el done
