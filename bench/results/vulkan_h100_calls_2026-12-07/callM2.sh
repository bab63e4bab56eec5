#!/usr/bin/env bash
# The lead's second GPU call on the merged tree, on the still-warm machine of call 1: the 48-layer
# file call 1 synthesized (and its GGUF) decoded by the library (moestream bench --backend
# vulkan, every expert on the GPU) and by llama.cpp's Vulkan build (llama_runner -ngl 999),
# the same run; then the library's streamed decode (a quarter of the experts on the GPU,
# --prefetch) with the transfer queue off/on. Under 540 s.
set -u
start=$(date +%s)
el() { echo "== $(( $(date +%s) - start )) s: $*"; }
left() { echo $(( 530 - ($(date +%s) - start) )); }
for f in .gl/*.deb; do dpkg -x $f / 2>/dev/null; done; ldconfig
P=.gpu/merged8 W=/tmp/w
[ -x $W/pack/bin/moestream ] || { mkdir -p $W/pack; tar -C $W/pack -xJf $P/payload.tar.xz || exit 1; }
export LD_LIBRARY_PATH=$W/pack/lib
for f in /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json /usr/share/vulkan/icd.d/nvidia_icd.json /etc/vulkan/icd.d/nvidia_icd.json; do
  if [ -f "$f" ]; then export VK_DRIVER_FILES="$f" VK_ICD_FILENAMES="$f"; break; fi; done
{ date -u; timeout 10 nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv; nproc; uptime; } | tee $OUT/gpu.txt
M=$W/pack/bin/moestream mst=$W/qwen3-30b-a3b-48.mst gguf=$W/qwen3-30b-a3b-48.gguf
el "waiting for the files"; while ! grep -q "files rc" $W/synth48.txt 2>/dev/null && [ "$(left)" -gt 200 ]; do sleep 5; done
cat $W/synth48.txt | tail -3; ls -la $W
for r in 1 2; do
  t=$(left); [ "$t" -lt 60 ] && break; [ "$t" -gt 120 ] && t=120
  el "moestream bench resident round $r"
  timeout $t $M bench -m $mst --backend vulkan --gpu-cache-mb 60000 --cache-mb 60000 --prompt-tokens 512 --gen-tokens 32 \
    --repeat 1 --no-ceilings > $OUT/moestream_resident_$r.txt 2>&1
  grep -E "^k=|tok/s|prompt" $OUT/moestream_resident_$r.txt | head -6
  t=$(left); [ "$t" -lt 40 ] && break; [ "$t" -gt 90 ] && t=90
  el "llama.cpp Vulkan round $r"
  timeout $t $W/pack/llama/llama_runner -m $gguf -ngl 999 -t "$(nproc)" --synthetic-prompt 512 -n 32 --decode forced -b 512 \
    --backends $W/pack/llama > $OUT/llama_vulkan_$r.txt 2>&1
  grep -v "^load\|^llama_\|^print_info\|^ggml\|^\." $OUT/llama_vulkan_$r.txt | tail -8
done
Q=$(( 48 * 128 * 2950 / 4 / 1048 ))
for q in 0 1; do
  t=$(left); [ "$t" -lt 40 ] && break; [ "$t" -gt 90 ] && t=90
  el "moestream bench streamed --prefetch, MST_VULKAN_TRANSFER_QUEUE=$q"
  MST_VULKAN_TRANSFER_QUEUE=$q timeout $t $M bench -m $mst --backend vulkan --gpu-cache-mb $Q --storage pread --cache-mb 60000 \
    --prompt-tokens 32 --gen-tokens 16 --no-ceilings --repeat 1 --prefetch --json $OUT/mb_q$q.json > $OUT/mb_q$q.txt 2>&1
  grep -E "^k=|GPU expert cache|tok/s" $OUT/mb_q$q.txt | head -4
done
el done
