#!/usr/bin/env bash
# Lead call A (2026-12-07, afternoon 2): main with coopprec + vktests merged. The 48-layer files
# synthesized in the background (for llama.cpp), vktests' script, coopprec's script, then
# llama.cpp's Vulkan build on the same shape twice warm. At most ~560 s.
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
el "vktests"; BUDGET=115 timeout 120 bash .gpu/vktests/run.sh $W/pack $W/tb > $OUT/lead/vktests_console.txt 2>&1
cat $OUT/vktests/summary.txt 2>/dev/null | cut -c1-240 | head -40
el "coopprec"; BUDGET=170 timeout 175 bash .gpu/coopprec/run.sh $W/pack $W/tb > $OUT/lead/coopprec_console.txt 2>&1
cat $OUT/coopprec/summary.txt 2>/dev/null | cut -c1-240 | head -60
el "waiting for the files"; while ! grep -q "files rc" $W/synth48.txt 2>/dev/null && [ "$(left)" -gt 60 ]; do sleep 5; done
tail -2 $W/synth48.txt
L=$W/pack/llama/llama_runner
lr() { local label=$1 envs=$2; shift 2; local t; t=$(left); [ "$t" -lt 20 ] && { el "out of time before llama $label"; return; }; [ "$t" -gt 60 ] && t=60
  el "llama.cpp $label"; env $envs timeout $t $L -m $gguf -ngl 999 -t "$(nproc)" --synthetic-prompt 512 --decode forced -b 512 --backends $W/pack/llama "$@" > $OUT/lead/llama_$label.txt 2>&1
  grep -E "prompt_first|decode_tok" $OUT/lead/llama_$label.txt | tr '\n' ' '; echo; }
lr warm1 "" -n 64 --passes 2
lr warm2 "" -n 64 --passes 2
t=$(left); [ "$t" -gt 40 ] && t=40
[ "$t" -gt 15 ] && { el "bench_vulkan 48 defaults"; timeout $t $W/pack/bin/bench_vulkan --layers 48 --prefill 512 --decode 64 --no-cpu --no-streamed > $OUT/lead/bv48.txt 2>&1; grep -E "vulkan resident|host CPU" $OUT/lead/bv48.txt | cut -c1-200; }
cd $OUT && tar -czf $OUT/results_a.tgz --exclude results_a.tgz . 2>/dev/null; find $OUT -mindepth 1 -maxdepth 1 ! -name results_a.tgz -exec rm -rf {} +
el done
