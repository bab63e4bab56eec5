#!/usr/bin/env bash
# Issue 17's GPU numbers in one run, on a machine with the folder bench/vulkan_gpu_pack.sh
# made (no compiler needed there):
#   1. bench_vulkan on the Qwen3-30B-A3B shape: resident and streamed decode, prefill of
#      PREFILL tokens, the device path (docs/device_graph.md) and the host path side by side;
#   2. the same shape as a file (`moestream synth`, LAYERS layers, q4 experts, bf16 dense),
#      decoded by `moestream bench --backend vulkan` and, converted to GGUF (experts Q4_1,
#      byte for byte the same), by llama.cpp's Vulkan build (llama_runner -ngl 999):
#      the same weights, the same prompt length, the same machine, one after the other.
#
#   PACK=DIR OUT=DIR [LAYERS=48] [PREFILL=512] [DECODE=32] [STEPS="bench files engines"] \
#     bash DIR/vulkan_side_by_side.sh
# (DIR/payload.tar.xz is unpacked into WORK/pack first.)
# Results: OUT/gpu.txt, OUT/bench_vulkan.txt, OUT/moestream_bench.txt, OUT/llama_vulkan.txt.
set -uo pipefail
packed=${PACK:?PACK: the folder vulkan_gpu_pack.sh made}
out=${OUT:?OUT: where the results go}
layers=${LAYERS:-48} prefill=${PREFILL:-512} decode=${DECODE:-32}
steps=${STEPS:-bench files engines}
work=${WORK:-/tmp/mst_side_by_side}
pack="$work/pack"
mkdir -p "$out" "$pack"
[ -x "$pack/bin/moestream" ] || tar -C "$pack" -xJf "$packed/payload.tar.xz" || exit 1
export LD_LIBRARY_PATH="$pack/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
# The NVIDIA driver's Vulkan ICD where the machine keeps it outside the loader's search path.
for f in /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json /usr/share/vulkan/icd.d/nvidia_icd.json \
         /etc/vulkan/icd.d/nvidia_icd.json; do
  if [ -f "$f" ]; then export VK_DRIVER_FILES="$f" VK_ICD_FILENAMES="$f"; break; fi
done
{ date -u; nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv 2>&1; nproc; uptime
  "$pack/bin/moestream" info 2>&1 | grep -i vulkan; } > "$out/gpu.txt"
cat "$out/gpu.txt"

case " $steps " in *" bench "*)
  "$pack/bin/bench_vulkan" --layers "$layers" --prefill "$prefill" --decode "$decode" --no-cpu --path both 2>&1 |
    tee "$out/bench_vulkan.txt" ;;
esac

mst="$work/qwen3-30b-a3b-$layers.mst" gguf="$work/qwen3-30b-a3b-$layers.gguf"
case " $steps " in *" files "*)
  [ -f "$mst" ] || "$pack/bin/moestream" synth --config "$pack/qwen3-30b-a3b.json" --layers "$layers" "$mst" 2>&1 | tail -3
  [ -f "$gguf" ] || "$pack/bin/moestream" convert "$mst" "$gguf" 2>&1 | tail -3
  ls -la "$work"; df -h "$work" | tail -1 ;;
esac

case " $steps " in *" engines "*)
  # Every expert in the host cache and on the GPU: resident decode, as llama.cpp with -ngl 999.
  "$pack/bin/moestream" bench -m "$mst" --backend vulkan --gpu-cache-mb 60000 --cache-mb 60000 \
    --prompt-tokens "$prefill" --gen-tokens "$decode" --repeat 2 --no-ceilings 2>&1 | tee "$out/moestream_bench.txt"
  if [ -x "$pack/llama/llama_runner" ]; then
    for rep in 1 2; do
      "$pack/llama/llama_runner" -m "$gguf" -ngl 999 -t "$(nproc)" --synthetic-prompt "$prefill" -n "$decode" \
        --decode forced -b 512 --backends "$pack/llama" 2>&1 | tee -a "$out/llama_vulkan.txt"
    done
  fi ;;
esac
