#!/usr/bin/env bash
# The lead's first GPU call on the merged tree (2026-12-07): everything of issue 17 this
# session built, old against new in one binary, interleaved. The 48-layer files for call 2
# (llama.cpp side by side, the library's streamed decode) are synthesized in the background.
#  1. bench_vulkan --layers 48 --prefill 512 --decode 64 --no-cpu (resident + streamed):
#     old = MST_VULKAN_DECODE_FUSION=0 MST_VULKAN_ATTENTION_FUSION=0 MST_VULKAN_MOE_FUSION=0
#     MST_VULKAN_TRANSFER_QUEUE=0, new = defaults; 2 rounds; then attention-only and MoE-only
#     off (resident only) to split the gain; --guess streamed with the transfer queue 0/1.
#  2. MST_VULKAN_PROFILE=2 --profile at 8 layers, defaults (device time per command).
#  3. bench_vulkan_prefill --sweep (the prefill GEMM tunings), then 48 layers prefill with
#     main's kernel and the best tuning, interleaved, 2 rounds.
# Results under $OUT. Under 540 s.
set -u
start=$(date +%s)
el() { echo "== $(( $(date +%s) - start )) s: $*"; }
left() { echo $(( 530 - ($(date +%s) - start) )); }
for f in .gl/*.deb; do dpkg -x $f / 2>/dev/null; done; ldconfig
P=.gpu/merged8 W=/tmp/w
mkdir -p $W/pack; tar -C $W/pack -xJf $P/payload.tar.xz || exit 1
export LD_LIBRARY_PATH=$W/pack/lib
for f in /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json /usr/share/vulkan/icd.d/nvidia_icd.json /etc/vulkan/icd.d/nvidia_icd.json; do
  if [ -f "$f" ]; then export VK_DRIVER_FILES="$f" VK_ICD_FILENAMES="$f"; break; fi; done
{ date -u; timeout 10 nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv; nproc; uptime; df -h /tmp | tail -1; } | tee $OUT/gpu.txt
B=$W/pack/bin/bench_vulkan M=$W/pack/bin/moestream PF=$W/pack/bin/bench_vulkan_prefill
# Call 2's files: the 48-layer synthesized model (q4 experts, bf16 dense as vulkan_side_by_side
# makes it) and its GGUF, in the background (CPU and disk; the GPU runs below barely use either).
( cd $W && timeout 900 $M synth --config $W/pack/qwen3-30b-a3b.json --layers 48 $W/qwen3-30b-a3b-48.mst > $W/synth48.txt 2>&1 &&
  timeout 600 $M convert $W/qwen3-30b-a3b-48.mst $W/qwen3-30b-a3b-48.gguf > $W/convert48.txt 2>&1; echo "files rc $?" >> $W/synth48.txt ) &
OLD="MST_VULKAN_DECODE_FUSION=0 MST_VULKAN_ATTENTION_FUSION=0 MST_VULKAN_MOE_FUSION=0 MST_VULKAN_TRANSFER_QUEUE=0"
show() { grep -E "^device:|vulkan (resident|streamed)|decode token|device work per layer|misses from|expert copies on|--guess" "$1"; }
bv() {  # label, envs, extra args
  local label=$1 envs=$2; shift 2
  local t; t=$(left); [ "$t" -lt 40 ] && { el "out of time before $label"; return; }
  [ "$t" -gt 60 ] && t=60
  el "bench_vulkan $label"
  env $envs timeout $t $B --layers 48 --no-cpu "$@" > $OUT/bv_$label.txt 2>&1
  show $OUT/bv_$label.txt
}
for r in 1 2; do
  bv old_$r "$OLD" --prefill 512 --decode 64
  bv new_$r "" --prefill 512 --decode 64
done
bv attn_off "MST_VULKAN_ATTENTION_FUSION=0" --prefill 16 --decode 64 --no-streamed
bv moe_off "MST_VULKAN_MOE_FUSION=0" --prefill 16 --decode 64 --no-streamed
bv guess_q0 "MST_VULKAN_TRANSFER_QUEUE=0" --prefill 16 --decode 32 --guess
bv guess_q1 "" --prefill 16 --decode 32 --guess
el "profile 8 layers"
MST_VULKAN_PROFILE=2 timeout 40 $B --layers 8 --prefill 512 --decode 16 --no-cpu --no-streamed --profile > $OUT/profile8.txt 2>&1
grep -A45 "decode step on the backend itself" $OUT/profile8.txt | head -50
t=$(( $(left) - 110 )); [ "$t" -gt 100 ] && t=100
if [ "$t" -gt 30 ]; then
  el "prefill GEMM sweep ($t s at most)"
  timeout $t $PF --sweep --tokens 512 --rounds 4 > $OUT/sweep.txt 2>&1; echo "sweep exit $?"
  grep -A40 "GEMM device time of a layer" $OUT/sweep.txt | head -45
  best=$(sed -n 's/^BEST_TUNING=//p' $OUT/sweep.txt | tail -1)
  if [ -n "$best" ] && [ "$best" != main ]; then
    for r in 1 2; do
      for tuning in main "$best"; do
        bv "tuning_${tuning}_$r" "MST_VULKAN_COOP_TUNING=$tuning" --prefill 512 --decode 8 --no-streamed
      done
    done
  else echo "best tuning: ${best:-none}"; fi
fi
el "files so far"; cat $W/synth48.txt 2>/dev/null | tail -2; ls -la $W | head
el done
