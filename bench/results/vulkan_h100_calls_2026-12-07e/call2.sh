#!/usr/bin/env bash
# Lead call 2 (2026-12-07, right after call1.sh on the same warm machine where it can be): the
# candidates of call 1 each and all together against the defaults, interleaved, 3 rounds, with
# llama.cpp's Vulkan build on the same 48-layer weights (the GGUF call 1 made, or made here)
# between rounds, then a level profile with all of them. Environment: PACKDIR, BUDGET, BEST (else call 1's /tmp/w/best.txt), MV, EXTRA_ENV, ROUNDS (3).
set -u
start=$(date +%s)
el() { echo "== $(( $(date +%s) - start )) s: $*"; }
left() { echo $(( ${BUDGET:-560} - ($(date +%s) - start) )); }
P=${PACKDIR:-.gpu/g1} W=/tmp/w
mkdir -p $OUT/lead
if [ ! -x $W/pack/bin/bench_vulkan ]; then
  for f in .gl/*.deb; do dpkg -x $f / 2>/dev/null; done; ldconfig
  mkdir -p $W/pack; tar -C $W/pack -xJf $P/payload.tar.xz || exit 1; echo "cold machine: unpacked again"; fi
export LD_LIBRARY_PATH=$W/pack/lib
for f in /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json /usr/share/vulkan/icd.d/nvidia_icd.json /etc/vulkan/icd.d/nvidia_icd.json; do
  if [ -f "$f" ]; then export VK_DRIVER_FILES="$f" VK_ICD_FILENAMES="$f"; break; fi; done
{ date -u; timeout 10 nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv; } | tee $OUT/lead/gpu.txt
M=$W/pack/bin/moestream mst=$W/qwen3-30b-a3b-48.mst gguf=$W/qwen3-30b-a3b-48.gguf
if ! grep -q "files rc 0" $W/synth48.txt 2>/dev/null; then
  while pgrep -f "$M (synth|convert)" > /dev/null; do sleep 2; done
  [ -f $gguf ] && grep -q "files rc 0" $W/synth48.txt 2>/dev/null || { rm -f $gguf; nice timeout 300 $M synth --config $W/pack/qwen3-30b-a3b.json --layers 48 $mst > $W/synth48.txt 2>&1 &&
    nice timeout 200 $M convert $mst $gguf > $W/convert48.txt 2>&1; echo "files rc $?" >> $W/synth48.txt; } &
fi
BEST=${BEST:-$(cat $W/best.txt 2>/dev/null)}; echo "gemm tuning: ${BEST:-none}"
B=$W/pack/bin
bv() { local label=$1 envs=$2 t; shift 2; t=$(left); [ "$t" -gt 35 ] && t=35; [ "$t" -lt 15 ] && { el "no time for bv $label"; return; }
  env $envs timeout $t $B/bench_vulkan --layers 48 --prefill 512 --decode 64 --no-cpu --no-streamed "$@" > $OUT/lead/bv_$label.txt 2>&1
  echo "bv $label: $(grep -E 'vulkan resident' $OUT/lead/bv_$label.txt | cut -c1-150) | $(grep -oE 'decode logits hash [0-9a-f]+' $OUT/lead/bv_$label.txt)"; }
L=$W/pack/llama/llama_runner
lr() { local label=$1; local t; t=$(left); [ "$t" -lt 40 ] && { el "out of time before llama $label"; return; }; [ "$t" -gt 45 ] && t=45
  el "llama.cpp $label"; timeout $t $L -m $gguf -ngl 999 -t "$(nproc)" --synthetic-prompt 512 --decode forced -b 512 --backends $W/pack/llama -n 64 --passes 2 > $OUT/lead/llama_$label.txt 2>&1
  grep -E "prompt_first|decode_tok" $OUT/lead/llama_$label.txt | tr '\n' ' '; echo; }
ALL="MST_VULKAN_FLASH_ATTENTION=auto ${BEST:+MST_VULKAN_COOP_TUNING=$BEST} ${MV:+MST_VULKAN_MATVEC_TUNING=$MV} ${EXTRA_ENV:-}"
echo "all: $ALL"
for r in $(seq ${ROUNDS:-3}); do
  bv def_$r ""
  bv all_$r "$ALL"
  bv flash_$r MST_VULKAN_FLASH_ATTENTION=auto
  [ -n "$BEST" ] && bv gemm_$r "MST_VULKAN_COOP_TUNING=$BEST"
  [ -n "${MV:-}" ] && bv mv_$r "MST_VULKAN_MATVEC_TUNING=$MV"
  [ -n "${EXTRA_ENV:-}" ] && bv extra_$r "$EXTRA_ENV"
  if grep -q "files rc 0" $W/synth48.txt 2>/dev/null && [ -f $gguf ]; then lr $r; fi
done
el "level profile, all candidates"; t=$(left); [ "$t" -gt 45 ] && t=45
[ "$t" -gt 20 ] && { env $ALL timeout $t $B/bench_vulkan --layers 48 --prefill 512 --decode 8 --no-cpu --no-streamed --level-profile > $OUT/lead/bv_levels_all.txt 2>&1; grep -A22 "level profile" $OUT/lead/bv_levels_all.txt | cut -c1-200; }
cd $OUT && tar -czf $OUT/results_2.tgz --exclude results_2.tgz . 2>/dev/null; find $OUT -mindepth 1 -maxdepth 1 ! -name results_2.tgz -exec rm -rf {} +
el done
