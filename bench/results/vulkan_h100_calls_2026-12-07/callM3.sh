#!/usr/bin/env bash
# The lead's third GPU call (2026-12-07, after gpu-moefix): the MoE half's kernels again
# (MST_VULKAN_MOE_FUSION=0 against the defaults, bench_vulkan 48 layers, context 512,
# interleaved, 2 rounds, then a per-command profile at 8 layers), and llama.cpp's Vulkan build
# three times in the same call on the 48-layer file (synthesized and converted in the
# background first), interleaved with the library's resident decode of the same file.
# Everything under $OUT is packed into one results.tgz (the device tool returns few files).
set -u
start=$(date +%s)
el() { echo "== $(( $(date +%s) - start )) s: $*"; }
left() { echo $(( 300 - ($(date +%s) - start) )); }
for f in .gl/*.deb; do dpkg -x $f / 2>/dev/null; done; ldconfig
P=.gpu/merged8 W=/tmp/w R=$OUT/r
mkdir -p $W/pack $R; [ -x $W/pack/bin/moestream ] && [ "$(cat $W/pack/.id 2>/dev/null)" = "$(md5sum < $P/payload.tar.xz)" ] ||
  { rm -rf $W/pack; mkdir -p $W/pack; tar -C $W/pack -xJf $P/payload.tar.xz || exit 1; md5sum < $P/payload.tar.xz > $W/pack/.id; }
export LD_LIBRARY_PATH=$W/pack/lib
for f in /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json /usr/share/vulkan/icd.d/nvidia_icd.json /etc/vulkan/icd.d/nvidia_icd.json; do
  if [ -f "$f" ]; then export VK_DRIVER_FILES="$f" VK_ICD_FILENAMES="$f"; break; fi; done
{ date -u; timeout 10 nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm --format=csv; nproc; uptime; } | tee $R/gpu.txt
B=$W/pack/bin/bench_vulkan M=$W/pack/bin/moestream mst=$W/qwen3-30b-a3b-48.mst gguf=$W/qwen3-30b-a3b-48.gguf
if [ ! -f $gguf ]; then
  ( timeout 400 $M synth --config $W/pack/qwen3-30b-a3b.json --layers 48 $mst > $W/synth48.txt 2>&1 &&
    timeout 300 $M convert $mst $gguf > $W/convert48.txt 2>&1; echo "files rc $?" >> $W/synth48.txt ) &
fi
show() { grep -E "^device:|vulkan (resident|streamed)|decode token \(|device work per layer" "$1" | cut -c1-250; }
bv() { local label=$1 envs=$2; shift 2
  local t; t=$(left); [ "$t" -lt 40 ] && { el "out of time before $label"; return; }; [ "$t" -gt 60 ] && t=60
  el "bench_vulkan $label"; env $envs timeout $t $B --layers 48 --no-cpu "$@" > $R/bv_$label.txt 2>&1; show $R/bv_$label.txt; }
for r in 1 2; do
  bv moe0_$r "MST_VULKAN_MOE_FUSION=0" --prefill 512 --decode 64 --no-streamed
  bv new_$r "" --prefill 512 --decode 64 --no-streamed
done
el "profile 8 layers"
MST_VULKAN_PROFILE=2 timeout 40 $B --layers 8 --prefill 512 --decode 16 --no-cpu --no-streamed --profile > $R/profile8.txt 2>&1
grep -A24 "decode step on the backend itself" $R/profile8.txt | head -26
el "waiting for the files"; while ! grep -q "files rc" $W/synth48.txt 2>/dev/null && [ "$(left)" -gt 60 ]; do sleep 5; done
tail -2 $W/synth48.txt
for r in 1 2 3; do
  t=$(left); [ "$t" -lt 25 ] && break; [ "$t" -gt 70 ] && t=70
  el "llama.cpp Vulkan round $r"
  timeout $t $W/pack/llama/llama_runner -m $gguf -ngl 999 -t "$(nproc)" --synthetic-prompt 512 -n 64 --passes 2 --decode forced -b 512 \
    --backends $W/pack/llama > $R/llama_vulkan_$r.txt 2>&1
  grep -E "prompt_|decode_|ttft" $R/llama_vulkan_$r.txt | tr '\n' ' '; echo
done
tar -C $OUT -czf $OUT/results.tgz r && rm -rf $R
el done
