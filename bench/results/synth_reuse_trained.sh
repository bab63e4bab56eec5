# bench/RESULTS.md, "Issue 19, fifth round: token-to-token reuse in synth --routing-from (tried, not kept)".
# Calibration text: the first 8 kB of bench/data/heldout_repo.txt; evaluation text: its 4 kB from
# byte 30,001 (other files of the same repository, never calibrated on). Each trained model's trace
# over the calibration text is what synth learns from; its trace over the evaluation text is the
# reference. Variants (VARIANT=name:ENV...): the rows "class topics ..." need a build of commit
# 6d5944e (the experiment, reverted after it), whose synth reads MST_SHARE (the class share of an
# embedding's variance), MST_GAIN (the class part's gain), MST_TMAX (the largest topic weight),
# MST_CALIB (calibration tokens) and MST_NO_TOPICS (popularity only); "plain" and "routing-from"
# run on any later build.   Usage: bash bench/results/synth_reuse_trained.sh > OUT
# The rows of the raw output, on a build of 6d5944e (a variant is NAME:VAR=VALUE,VAR=VALUE):
#   VARIANTS="routing-from:MST_NO_TOPICS=1 routing-from-4k:MST_NO_TOPICS=1,MST_CALIB=4096
#     topics-g1:MST_SHARE=0.5,MST_GAIN=1,MST_CALIB=4096 topics-g2:MST_SHARE=0.5,MST_GAIN=2,MST_CALIB=4096
#     topics-s15:MST_SHARE=0.15,MST_GAIN=1,MST_TMAX=3,MST_CALIB=4096"
set -e
W=$(cd "$(dirname "$0")/../.." && pwd); D=${TMPDIR:-/tmp}/synth_reuse; mkdir -p $D
B=$W/build/bench/bench_routing; M=$W/build/bin/moestream
head -c 8192 $W/bench/data/heldout_repo.txt > $D/calib.txt
tail -c +30001 $W/bench/data/heldout_repo.txt | head -c 4096 > $D/eval.txt
VARIANTS=${VARIANTS:-"routing-from:"}
for m in qwen3_moe_trained qwen3_5_moe_trained deepseek_v3_trained; do
  $B record -m $W/tests/data/$m --text $D/calib.txt --out $D/$m.calib.trace --predict 0 >/dev/null 2>&1
  $B record -m $W/tests/data/$m --text $D/eval.txt --out $D/$m.trained.trace --predict 0 >/dev/null 2>&1
  $M synth --config $W/tests/data/$m/config.json --force $D/$m.plain.mst >/dev/null 2>&1
  $B record -m $D/$m.plain.mst --text $D/eval.txt --out $D/$m.plain.trace --predict 0 >/dev/null 2>&1
  for v in $VARIANTS; do
    name=${v%%:*}; envs=${v#*:}
    env ${envs//,/ } $M synth --config $W/tests/data/$m/config.json --force --routing-from $D/$m.calib.trace \
      --routing-text $D/calib.txt $D/$m.$name.mst 2>&1 | grep -o "routers.*" || true
    $B record -m $D/$m.$name.mst --text $D/eval.txt --out $D/$m.$name.trace --predict 0 >/dev/null 2>&1
  done
  for v in trained plain $VARIANTS; do
    echo "== $m ${v%%:*}"; $B replay $D/$m.${v%%:*}.trace --sizes 10,25,50 --policies lru,lrfu-admit
  done
done
