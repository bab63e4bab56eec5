# bench/RESULTS.md, "Issue 19, sixth round: recency heads for full attention (tried, not kept)".
# Needs a build of commit f19580c (it added lib/convert/synth_recency.cpp; reverted after this
# run); its synth reads MST_NO_RECENCY (no recency construction: synth as on main),
# MST_RECENCY_FIXED=G (every sparse layer's recency gain G, not calibrated), MST_ALLPAIRS
# (calibrate on next-token reuse over all token pairs; default: pairs of distinct tokens),
# MST_S / MST_FMIN / MST_FMAX (recency logit at distance 0, rotary frequency range).
# Protocol 1 ("repo"): as bench/results/synth_reuse_trained.sh (calibrate on the first 8 kB of
# bench/data/heldout_repo.txt, evaluate on its 4 kB from byte 30,001). Protocol 2 ("self"):
# each model's tests/data/*/heldout.txt, first 1024 tokens, both to calibrate and to evaluate
# (the trace synth learns from is the reference).   Usage: bash synth_recency_heads.sh > OUT
set -e
W=$(cd "$(dirname "$0")/../.." && pwd); D=${TMPDIR:-/tmp}/synth_recency; mkdir -p $D
B=$W/build/bench/bench_routing; M=$W/build/bin/moestream
head -c 8192 $W/bench/data/heldout_repo.txt > $D/calib.txt
tail -c +30001 $W/bench/data/heldout_repo.txt | head -c 4096 > $D/eval.txt
REPO=${REPO:-"main:MST_NO_RECENCY=1 gain0:MST_RECENCY_FIXED=0 gain1:MST_RECENCY_FIXED=1 gain3:MST_RECENCY_FIXED=3
  long-gain1:MST_RECENCY_FIXED=1,MST_FMIN=0.002,MST_FMAX=0.03,MST_S=6 long-gain2:MST_RECENCY_FIXED=2,MST_FMIN=0.002,MST_FMAX=0.03,MST_S=6
  cal-all:MST_ALLPAIRS=1 cal-distinct:"}
SELF=${SELF:-"main:MST_NO_RECENCY=1 gain1:MST_RECENCY_FIXED=1 cal-all:MST_ALLPAIRS=1"}
run() {  # protocol model calib-text eval-text trace-args variants
  local p=$1 m=$2 ct=$3 et=$4 args=$5 vs=$6
  $B record -m $W/tests/data/$m --text $ct --out $D/$p.$m.calib.trace --predict 0 $args >/dev/null 2>&1
  $B record -m $W/tests/data/$m --text $et --out $D/$p.$m.trained.trace --predict 0 $args >/dev/null 2>&1
  for v in $vs; do
    name=${v%%:*}; envs=${v#*:}
    env ${envs//,/ } $M synth --config $W/tests/data/$m/config.json --force --routing-from $D/$p.$m.calib.trace \
      --routing-text $ct $D/$p.$m.$name.mst >/dev/null 2>&1
    $B record -m $D/$p.$m.$name.mst --text $et --out $D/$p.$m.$name.trace --predict 0 $args >/dev/null 2>&1
    rm -f $D/$p.$m.$name.mst
  done
  for v in trained $vs; do
    echo "== $p $m ${v%%:*}"; $B replay $D/$p.$m.${v%%:*}.trace --sizes 10,25,50 --policies lru,lrfu-admit
  done
}
for m in qwen3_moe_trained deepseek_v3_trained; do
  run repo $m $D/calib.txt $D/eval.txt "" "$REPO"
  run self $m $W/tests/data/$m/heldout.txt $W/tests/data/$m/heldout.txt "--max-tokens 1024" "$SELF"
done
# Qwen3.5-MoE has no recency heads (Gated DeltaNet's slow decay is its reuse): synth as on main.
run repo qwen3_5_moe_trained $D/calib.txt $D/eval.txt "" "main:MST_NO_RECENCY=1"
run self qwen3_5_moe_trained $W/tests/data/qwen3_5_moe_trained/heldout.txt $W/tests/data/qwen3_5_moe_trained/heldout.txt "--max-tokens 1024" "main:MST_NO_RECENCY=1"
