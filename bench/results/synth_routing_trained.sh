# bench/RESULTS.md, "Synthesized routing learned from the trained models": records each trained
# model, a plain synth and a synth --routing-from of it over its heldout.txt, and replays all three.
# Output: bench/results/synth_routing_trained.txt
set -e
W=$(cd "$(dirname "$0")/../.." && pwd); D=${TMPDIR:-/tmp}/synth_routing; mkdir -p $D; B=$W/build/bench/bench_routing; M=$W/build/bin/moestream
for m in qwen3_moe_trained deepseek_v3_trained qwen3_5_moe_trained; do
  T=$W/tests/data/$m/heldout.txt
  $B record -m $W/tests/data/$m --text $T --out $D/$m.trained.trace --predict 0 2>/dev/null >/dev/null
  $M synth --config $W/tests/data/$m/config.json --force $D/$m.plain.mst 2>/dev/null
  $M synth --config $W/tests/data/$m/config.json --force --routing-from $D/$m.trained.trace $D/$m.learned.mst 2>/dev/null
  for v in plain learned; do $B record -m $D/$m.$v.mst --text $T --out $D/$m.$v.trace --predict 0 2>/dev/null >/dev/null; done
  for v in trained plain learned; do echo "== $m $v"; $B replay $D/$m.$v.trace --sizes 10,25,50 --policies lru,lrfu-admit; done
done
