#!/usr/bin/env bash
# The lead's first call of the afternoon merge (2026-12-07): the merged payload, the 48-layer
# files synthesized in the background, then the branches' own run scripts (each at most 120 s,
# writing under $OUT/<branch>/), then llama.cpp's Vulkan build on the same file: twice warm,
# once with its per-op perf logger (decode and prefill), once without its coopmat2 kernels
# (the extension moestream's glslang cannot compile), once without its fusions.
set -u
start=$(date +%s)
el() { echo "== $(( $(date +%s) - start )) s: $*"; }
left() { echo $(( ${BUDGET:-560} - ($(date +%s) - start) )); }
for f in .gl/*.deb; do dpkg -x $f / 2>/dev/null; done; ldconfig
P=.gpu/merged9 W=/tmp/w
mkdir -p $W/pack $OUT/lead; [ -x $W/pack/bin/moestream ] && [ "$(cat $W/pack/.id 2>/dev/null)" = "$(md5sum < $P/payload.tar.xz)" ] ||
  { rm -rf $W/pack; mkdir -p $W/pack; tar -C $W/pack -xJf $P/payload.tar.xz || exit 1; md5sum < $P/payload.tar.xz > $W/pack/.id; }
export LD_LIBRARY_PATH=$W/pack/lib
for f in /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json /usr/share/vulkan/icd.d/nvidia_icd.json /etc/vulkan/icd.d/nvidia_icd.json; do
  if [ -f "$f" ]; then export VK_DRIVER_FILES="$f" VK_ICD_FILENAMES="$f"; break; fi; done
{ date -u; timeout 10 nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv; nproc; } | tee $OUT/lead/gpu.txt
M=$W/pack/bin/moestream mst=$W/qwen3-30b-a3b-48.mst gguf=$W/qwen3-30b-a3b-48.gguf
if [ ! -f $gguf ]; then
  ( timeout 400 $M synth --config $W/pack/qwen3-30b-a3b.json --layers 48 $mst > $W/synth48.txt 2>&1 &&
    timeout 300 $M convert $mst $gguf > $W/convert48.txt 2>&1; echo "files rc $?" >> $W/synth48.txt ) &
fi
show() { grep -E "^device:|vulkan (resident|streamed)|decode token \(|device work per layer" "$1" | cut -c1-250; }
bv() { local label=$1 envs=$2; shift 2
  local t; t=$(left); [ "$t" -lt 40 ] && { el "out of time before $label"; return; }; [ "$t" -gt 40 ] && t=40
  el "bench_vulkan $label"; env $envs timeout $t $W/pack/bin/bench_vulkan --layers 48 --no-cpu "$@" > $OUT/lead/bv_$label.txt 2>&1; show $OUT/lead/bv_$label.txt; }
[ "${LEAD:-1}" = 1 ] && for r in 1 2; do  # the lead's: combine_id against the one-dispatch down kernel; no kicks; quarter-block q4 units
  bv default_$r "" --prefill 512 --decode 64 --no-streamed
  bv combine1_$r "MST_VULKAN_COMBINE_IN_DOWN=1" --prefill 512 --decode 64 --no-streamed
  bv nokick_$r "MST_VULKAN_NO_KICK=1" --prefill 512 --decode 64 --no-streamed
  bv q4quarter_$r "MST_VULKAN_Q4_BLOCK=0" --prefill 512 --decode 64 --no-streamed
done
for b in ${BRANCHES:-gpu-idtune gpu-levels}; do
  [ -f $P/$b/run.sh ] || { el "no script for $b"; continue; }
  t=$(left); [ "$t" -lt 60 ] && { el "out of time before $b"; break; }; [ "$t" -gt 130 ] && t=130
  el "branch $b"; mkdir -p $OUT/$b
  timeout $t bash $P/$b/run.sh > $OUT/$b/console.txt 2>&1; tail -c 2500 $OUT/$b/console.txt
done
if [ "${LLAMA:-1}" = 1 ]; then
el "waiting for the files"; while ! grep -q "files rc" $W/synth48.txt 2>/dev/null && [ "$(left)" -gt 40 ]; do sleep 5; done
tail -2 $W/synth48.txt
L=$W/pack/llama/llama_runner
lr() { local label=$1 envs=$2; shift 2; local t; t=$(left); [ "$t" -lt 20 ] && { el "out of time before llama $label"; return; }; [ "$t" -gt 60 ] && t=60
  el "llama.cpp $label"; env $envs timeout $t $L -m $gguf -ngl 999 -t "$(nproc)" --synthetic-prompt 512 --decode forced -b 512 --backends $W/pack/llama "$@" > $OUT/lead/llama_$label.txt 2>&1
  grep -E "prompt_first|decode_tok" $OUT/lead/llama_$label.txt | tr '\n' ' '; echo; }
lr warm1 "" -n 64 --passes 2
lr warm2 "" -n 64 --passes 2
lr perf "GGML_VK_PERF_LOGGER=1" -n 8 --passes 1
lr nocoopmat2 "GGML_VK_DISABLE_COOPMAT2=1" -n 64 --passes 2
lr nofusion "GGML_VK_DISABLE_FUSION=1" -n 64 --passes 2
grep -iE "MUL_MAT|TOPK|SOFT|RMS|ROPE|ADD|FLASH|GLU|total|CPY|SET_ROWS|GET_ROWS|ARGSORT" $OUT/lead/llama_perf.txt | head -80
fi
cd $OUT && tar -czf $OUT/${RESULTS:-results_a}.tgz --exclude ${RESULTS:-results_a}.tgz . 2>/dev/null; find $OUT -mindepth 1 -maxdepth 1 ! -name ${RESULTS:-results_a}.tgz -exec rm -rf {} +
el done
