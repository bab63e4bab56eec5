#!/bin/bash
# Issue 19 item 3, tenth round: the learned eviction policy in the library ("learned",
# lib/experts/eviction_learned.cpp). Fits its shipped weights on ONE trace (Qwen3-MoE's,
# the repo text; learned_policy_weights.txt, which must match
# lib/experts/eviction_learned_weights.cpp, else rebuild with it and run again), then replays
# lru, lrfu-admit, learned (the library's, shipped weights) and Belady at 10/25/50 % cached
# on each of the six traces (learned_policy_<text>_<model>.txt).
# Prose: bench/RESULTS.md, "Issue 19, tenth round".
#
#   TMPDIR=/tmp/x bash bench/results/learned_policy.sh [BUILD_DIR]
set -euo pipefail
B=${1:-build}
T=${TMPDIR:-/tmp}/learned_eviction
R=bench/results
mkdir -p "$T"
models="qwen3_moe_trained deepseek_v3_trained qwen3_5_moe_trained"
for m in $models; do
  for x in repo cpp; do
    # The traces of the earlier rounds (bench/results/learned_eviction.sh).
    [ -s "$T/${x}_$m.trace" ] || "$B/bench/bench_routing" record -m "tests/data/$m" \
      --text "bench/data/heldout_$x.txt" --out "$T/${x}_$m.trace" --ctx 1024 --predict 2
  done
done
"$B/bench/bench_routing" learned --export --online --sizes 25 --rows 250000 "$T/repo_qwen3_moe_trained.trace" \
  > "$R/learned_policy_weights.txt"
# The comment names the trace's path on the machine that made it; the numbers must agree.
if ! diff <(grep -v '^//' "$R/learned_policy_weights.txt") <(grep -v '^//' lib/experts/eviction_learned_weights.cpp); then
  echo "the fitted weights differ from lib/experts/eviction_learned_weights.cpp: copy them there, rebuild, run again" >&2
  exit 1
fi
for m in $models; do
  for x in repo cpp; do
    "$B/bench/bench_routing" replay "$T/${x}_$m.trace" --sizes 10,25,50 --policies lru,lrfu-admit,learned \
      > "$R/learned_policy_${x}_$m.txt" &
  done
  wait
done
# Against the shipped table: Qwen3.5-MoE's own weights, fitted on one text and replayed on the
# other (learned_policy_across_qwen3_5_moe_trained.txt).
m=qwen3_5_moe_trained
"$B/bench/bench_routing" learned --online --across --sizes 25 --rows 250000 "$T/repo_$m.trace" "$T/cpp_$m.trace" \
  > "$R/learned_policy_across_$m.txt"
