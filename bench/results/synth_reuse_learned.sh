# bench/RESULTS.md, "Issue 19, ninth round: synth learns token-to-token reuse".
# For each trained model, on its own BPE tokens (--tokenizer-from the checkpoint): `plain` = synth
# without --routing-from, `popularity` = --routing-from (per-layer popularity only), `reuse` =
# --routing-from --routing-reuse (popularity and, through recency heads, next-token reuse).
# Protocol 1 ("repo"): calibrate on the first 8 kB of bench/data/heldout_repo.txt, evaluate on its
# 4 kB from byte 30,001 (never calibrated on). Protocol 2 ("self"): each model's
# tests/data/*/heldout.txt, first 1024 tokens, both to calibrate and to evaluate. Each block:
# '== PROTOCOL MODEL VARIANT' then bench_routing replay of that trace; bench/results/synth_table.py
# turns the blocks into RESULTS.md's rows. Synth's wall time per variant goes to stderr.
# Usage: bash bench/results/synth_reuse_learned.sh > OUT
set -e
W=$(cd "$(dirname "$0")/../.." && pwd); D=${TMPDIR:-/tmp}/synth_reuse_learned; mkdir -p $D
B=$W/build/bench/bench_routing; M=$W/build/bin/moestream
head -c 8192 $W/bench/data/heldout_repo.txt > $D/calib.txt
tail -c +30001 $W/bench/data/heldout_repo.txt | head -c 4096 > $D/eval.txt
run() {  # protocol model calib-text eval-text trace-args
  local p=$1 m=$2 ct=$3 et=$4 args=$5 T=$W/tests/data/$2
  $B record -m $T --text $ct --out $D/$p.$m.calib.trace --predict 0 $args >/dev/null 2>&1
  $B record -m $T --text $et --out $D/$p.$m.trained.trace --predict 0 $args >/dev/null 2>&1
  for v in plain popularity reuse; do
    local flags="--tokenizer-from $T"
    [ $v != plain ] && flags="$flags --routing-from $D/$p.$m.calib.trace --routing-text $ct"
    [ $v = reuse ] && flags="$flags --routing-reuse"
    local t0=$(date +%s.%N)
    $M synth --config $T/config.json --force $flags $D/$p.$m.$v.mst 2>$D/$p.$m.$v.log >/dev/null
    echo "$p $m $v: synth $(echo "$(date +%s.%N) - $t0" | bc) s; $(grep -h 'recency heads' $D/$p.$m.$v.log || true)" >&2
    $B record -m $D/$p.$m.$v.mst --text $et --out $D/$p.$m.$v.trace --predict 0 $args >/dev/null 2>&1
    rm -f $D/$p.$m.$v.mst
  done
  for v in trained plain popularity reuse; do
    echo "== $p $m $v"; $B replay $D/$p.$m.$v.trace --sizes 10,25,50 --policies lru,lrfu-admit
  done
}
for m in ${MODELS:-qwen3_moe_trained deepseek_v3_trained qwen3_5_moe_trained}; do
  run repo $m $D/calib.txt $D/eval.txt ""
  run self $m $W/tests/data/$m/heldout.txt $W/tests/data/$m/heldout.txt "--max-tokens 1024"
done
