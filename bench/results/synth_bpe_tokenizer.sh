# bench/RESULTS.md, "Issue 19, seventh round: synth --routing-from on the trained model's BPE tokens".
# For each trained model, synth --routing-from twice: `byte` = byte-level tokenizer (as on main
# before this round), `bpe` = --tokenizer-from the trained checkpoint (its tokenizer.json, BPE
# over 1024 ids), so calibration and evaluation run on the trained model's own tokens.
# Protocol 1 ("repo"): calibrate on the first 8 kB of bench/data/heldout_repo.txt, evaluate on its
# 4 kB from byte 30,001 (never calibrated on). Protocol 2 ("self"): each model's
# tests/data/*/heldout.txt, first 1024 tokens, both to calibrate and to evaluate (the trace synth
# learns from is the reference). Each block: '== PROTOCOL MODEL VARIANT' then bench_routing replay
# of that trace; bench/results/synth_table.py turns the blocks into RESULTS.md's rows.
# Extra variants: VARIANTS="name:--synth-option,VAR=VALUE ..." (commas become spaces; options
# and environment both pass through env).   Usage: bash bench/results/synth_bpe_tokenizer.sh > OUT
set -e
W=$(cd "$(dirname "$0")/../.." && pwd); D=${TMPDIR:-/tmp}/synth_bpe; mkdir -p $D
B=$W/build/bench/bench_routing; M=$W/build/bin/moestream
head -c 8192 $W/bench/data/heldout_repo.txt > $D/calib.txt
tail -c +30001 $W/bench/data/heldout_repo.txt | head -c 4096 > $D/eval.txt
VARIANTS=${VARIANTS:-"byte: bpe:--tokenizer-from=TRAINED"}
run() {  # protocol model calib-text eval-text trace-args
  local p=$1 m=$2 ct=$3 et=$4 args=$5
  $B record -m $W/tests/data/$m --text $ct --out $D/$p.$m.calib.trace --predict 0 $args >/dev/null 2>&1
  $B record -m $W/tests/data/$m --text $et --out $D/$p.$m.trained.trace --predict 0 $args >/dev/null 2>&1
  for v in $VARIANTS; do
    local name=${v%%:*} opts=${v#*:} envs="" flags=""
    for o in ${opts//,/ }; do
      case $o in --*) flags="$flags ${o/=TRAINED/=$W/tests/data/$m}";; *) envs="$envs $o";; esac
    done
    env $envs $M synth --config $W/tests/data/$m/config.json --force --routing-from $D/$p.$m.calib.trace \
      --routing-text $ct ${flags//=/ } $D/$p.$m.$name.mst >/dev/null 2>&1
    $B record -m $D/$p.$m.$name.mst --text $et --out $D/$p.$m.$name.trace --predict 0 $args >/dev/null 2>&1
    rm -f $D/$p.$m.$name.mst
  done
  for v in trained $VARIANTS; do
    echo "== $p $m ${v%%:*}"; $B replay $D/$p.$m.${v%%:*}.trace --sizes 10,25,50 --policies lru,lrfu-admit
  done
}
for m in ${MODELS:-qwen3_moe_trained deepseek_v3_trained qwen3_5_moe_trained}; do
  run repo $m $D/calib.txt $D/eval.txt ""
  run self $m $W/tests/data/$m/heldout.txt $W/tests/data/$m/heldout.txt "--max-tokens 1024"
done
