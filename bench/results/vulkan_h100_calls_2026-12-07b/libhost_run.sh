#!/usr/bin/env bash
# libhost on an NVIDIA GPU (bench/README.md, "Library path: the host's work between tokens"):
# where a token of the library's resident decode goes outside bench_vulkan's device path.
# The 48-layer Qwen3-30B-A3B file as callM5.sh made it (`moestream synth --layers 48`, every
# expert on the GPU), `moestream bench --backend vulkan` choosing each next token greedily
# and with the library's default sampler (top-k 40), against bench_vulkan on the same shape,
# interleaved: bench_vulkan, greedy, default, and again; then, with the time left, the
# whole-vocabulary sampler that gave 94.6-97.3 tok/s at 08:56 UTC.
#
#   OUT=DIR bash bench/results/vulkan_h100_calls_2026-12-07b/libhost_run.sh PACK
# PACK: bench/vulkan_gpu_pack.sh's payload, unpacked (PACK/bin, PACK/lib, PACK/qwen3-30b-a3b.json).
# WORK (default /tmp/w): where the 48-layer file is made, or found from an earlier call.
# LAYERS, PREFILL, DECODE (default 48, 512, 64) shrink it for a dry run on lavapipe.
# At most ~145 s (BUDGET=seconds to change it). Everything goes to $OUT/libhost:
#   gpu.txt                  the device and driver
#   synth48.txt              the synthesis of the 48-layer file (absent when it was found)
#   bv_R.txt                 bench_vulkan --layers 48 --prefill 512 --decode 64 --no-cpu --no-streamed
#   lib_SAMPLER_R.txt        moestream bench ... --sampler SAMPLER --repeat 1, round R
#   summary.txt              per run: decode tok/s; for the library also the tok/s of the
#                            whole loop (eval + sampling + other), the later token's split
#                            and the first token's CPU; then min / median / max per setting
#                            (with two runs the "median" is the lower)
# How to read it: "dec t/s" counts Session::eval alone (as at 08:56 UTC); "tok/s with
# sampling" is what a generation loop gets, to set against bench_vulkan's decode tok/s. In
# the split, eval's wall ms per later token against bench_vulkan's "decode token ... ms wall"
# (7.25 ms at 08:56) says how much of the gap is inside eval (waiting: its CPU was equal),
# sampling's ms how much the sampler costs on this host (greedy and top-k 40 should be
# ~0.1 ms, the whole vocabulary a few ms). The first token's line says how much of its wall
# time the pipelines compiled in it explain.
set -u
start=$(date +%s)
pack=${1:?PACK: the unpacked payload of bench/vulkan_gpu_pack.sh (PACK/bin, PACK/lib)}
out=${OUT:?OUT: where the results go}/libhost
work=${WORK:-/tmp/w}
mkdir -p "$out" "$work"
el() { echo "== $(( $(date +%s) - start )) s: $*" | tee -a "$out/summary.txt"; }
left() { echo $(( ${BUDGET:-145} - ($(date +%s) - start) )); }
say() { echo "$*" | tee -a "$out/summary.txt"; }
export LD_LIBRARY_PATH="$pack/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
for f in /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json /usr/share/vulkan/icd.d/nvidia_icd.json \
         /etc/vulkan/icd.d/nvidia_icd.json; do
  if [ -f "$f" ]; then export VK_DRIVER_FILES="$f" VK_ICD_FILENAMES="$f"; break; fi
done
{ date -u; timeout 10 nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv; nproc; uptime; } \
  > "$out/gpu.txt" 2>&1
cat "$out/gpu.txt"

layers=${LAYERS:-48} prefill=${PREFILL:-512} decode=${DECODE:-64}
mst=$work/qwen3-30b-a3b-$layers.mst
if [ ! -s "$mst" ]; then
  el "synth $layers layers"
  rm -f "$work/partial-$layers.mst"
  timeout 100 "$pack/bin/moestream" synth --config "$pack/qwen3-30b-a3b.json" --layers "$layers" \
    "$work/partial-$layers.mst" > "$out/synth$layers.txt" 2>&1 && mv "$work/partial-$layers.mst" "$mst"
  tail -2 "$out/synth$layers.txt"
fi
[ -s "$mst" ] || { el "no $layers-layer file: only bench_vulkan runs"; }

# bench_vulkan's device path, round $1.
bv() {
  local t; t=$(left); [ "$t" -gt 30 ] && t=30
  [ "$t" -lt 15 ] && { el "out of time before bench_vulkan round $1"; return; }
  el "bench_vulkan round $1"
  timeout "$t" "$pack/bin/bench_vulkan" --layers "$layers" --prefill "$prefill" --decode "$decode" --no-cpu --no-streamed \
    > "$out/bv_$1.txt" 2>&1
  say "bench_vulkan r$1: $(grep -oE 'decode [0-9.]+ tok/s' "$out/bv_$1.txt" | head -1); $(grep -oE 'decode token host CPU[^,]*' "$out/bv_$1.txt" | head -1)"
}
# The library, sampler $1, round $2.
lib() {
  local t f=$out/lib_$1_$2.txt; t=$(left); [ "$t" -gt 35 ] && t=35
  [ -s "$mst" ] || return
  [ "$t" -lt 20 ] && { el "out of time before the library ($1) round $2"; return; }
  el "moestream bench --sampler $1 round $2"
  timeout "$t" "$pack/bin/moestream" bench -m "$mst" --backend vulkan --gpu-cache-mb 40000 --cache-mb 40000 \
    --prompt-tokens "$prefill" --gen-tokens "$decode" --repeat 1 --no-ceilings --sampler "$1" > "$f" 2>&1
  # dec t/s: the spread line's median; the loop's tok/s and the split: the notes.
  local dec loop
  dec=$(awk '/^spread over/ {s=1; next} s && /^k=/ {print $(NF-1); exit}' "$f")
  loop=$(grep -oE 'together [0-9.]+' "$f" | head -1 | awk '{print $2}')
  say "library $1 r$2: dec t/s ${dec:-?} (eval alone), ${loop:-?} tok/s with sampling and the rest"
  grep -E "wall time|first decode|pipelines compiled" "$f" | sed 's/^ *k=[^:]*: /    /' | cut -c1-330 |
    tee -a "$out/summary.txt"
}

for round in 1 2; do bv $round; lib greedy $round; lib default $round; done
lib whole 1
bv 3

# min / median / max over the rounds of each setting.
{
  echo "--- min / median / max over rounds"
  for key in "bench_vulkan r" "library greedy r" "library default r" "library whole r"; do
    grep -F "$key" "$out/summary.txt" | grep -v '^==' | grep -oE '(decode |dec t/s |, )[0-9.]+ ' |
      grep -oE '[0-9.]+' > "$out/.v" || true
    [ -s "$out/.v" ] || continue
    if [ "$key" = "bench_vulkan r" ]; then
      sort -g "$out/.v" | awk -v k="$key" '{a[NR]=$1} END {printf "%s: decode tok/s %s / %s / %s (%d runs)\n", k, a[1], a[int((NR+1)/2)], a[NR], NR}'
    else
      # Odd lines: dec t/s (eval alone); even lines: with sampling and the rest.
      for which in 1 0; do
        awk -v w=$which 'NR % 2 == w' "$out/.v" | sort -g | awk -v k="$key" -v w=$which \
          '{a[NR]=$1} END {if (NR) printf "%s: %s %s / %s / %s (%d runs)\n", k, w ? "dec t/s (eval alone)" : "tok/s with sampling", a[1], a[int((NR+1)/2)], a[NR], NR}'
      done
    fi
  done
  rm -f "$out/.v"
} | tee -a "$out/summary.txt"
el done
