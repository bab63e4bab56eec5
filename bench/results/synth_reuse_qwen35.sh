# bench/RESULTS.md, "Issue 19, tenth round (synth): Qwen3.5-MoE's reuse".
# As synth_reuse_learned.sh (the ninth round), on each trained model's own BPE tokens
# (--tokenizer-from the checkpoint): `plain` = synth without --routing-from, `popularity` =
# --routing-from, `reuse` = --routing-from --routing-reuse. Protocols: "repo" = calibrate on the
# first 8 kB of bench/data/heldout_repo.txt, evaluate on its 4 kB from byte 30,001 (never
# calibrated on); "cpp" = the same calibration, evaluated on 4 kB from byte 30,001 of
# bench/data/heldout_cpp.txt (another text); "self" = each model's tests/data/*/heldout.txt, first
# 1024 tokens, both to calibrate and to evaluate; "full-repo" = synth learns from the trained
# model's trace over all of bench/data/heldout_repo.txt (40,052 tokens, recorded with --ctx 1024
# --predict 2; --routing-text the same file, whose first 1024 tokens the drafts run) and is
# evaluated over all of it; "full-cpp" = the same synthesized model over all of
# bench/data/heldout_cpp.txt. Each block: '== PROTOCOL MODEL VARIANT' then
# bench_routing replay of that trace; bench/results/synth_table.py turns the blocks into rows.
# Synth's wall time and recency note per variant go to stderr.
# Usage: [MODELS="..."] [PROTOCOLS="..."] bash bench/results/synth_reuse_qwen35.sh > OUT
set -e
W=$(cd "$(dirname "$0")/../.." && pwd); D=${TMPDIR:-/tmp}/synth_reuse_qwen35; mkdir -p $D
B=$W/build/bench/bench_routing; M=$W/build/bin/moestream
head -c 8192 $W/bench/data/heldout_repo.txt > $D/calib.txt
tail -c +30001 $W/bench/data/heldout_repo.txt | head -c 4096 > $D/eval.txt
tail -c +30001 $W/bench/data/heldout_cpp.txt | head -c 4096 > $D/eval_cpp.txt
run() {  # protocol model calib-text eval-text trace-args [calibration-trace-args]
  local p=$1 m=$2 ct=$3 et=$4 args=$5 T=$W/tests/data/$2
  $B record -m $T --text $ct --out $D/$p.$m.calib.trace ${6:---predict 0 $args} >/dev/null 2>&1
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
for m in ${MODELS:-qwen3_5_moe_trained qwen3_moe_trained deepseek_v3_trained}; do
  for p in ${PROTOCOLS:-repo cpp self full-repo full-cpp}; do
    case $p in
      repo) run repo $m $D/calib.txt $D/eval.txt "";;
      cpp) run cpp $m $D/calib.txt $D/eval_cpp.txt "";;
      self) run self $m $W/tests/data/$m/heldout.txt $W/tests/data/$m/heldout.txt "--max-tokens 1024";;
      full-repo) run full-repo $m $W/bench/data/heldout_repo.txt $W/bench/data/heldout_repo.txt "" "--ctx 1024 --predict 2";;
      full-cpp) run full-cpp $m $W/bench/data/heldout_repo.txt $W/bench/data/heldout_cpp.txt "" "--ctx 1024 --predict 2";;
    esac
  done
done
