#!/bin/bash
# Issue 19 item 3, a learned eviction policy (bench_routing learned, bench/learned_eviction.h)
# on the trained models' routing of the two held-out texts: fitted on each trace's first
# half and replayed on its second (learned_eviction_half_qwen3_moe_trained.txt for both
# texts of Qwen3-MoE; learned_eviction_half_<text>_<model>.txt for the others, one run per
# trace, 25 % cached first and 250,000 training rows instead of 1,000,000, so that the bar's
# size came first on a loaded machine), and fitted
# on one text's whole trace and replayed on the other's (learned_eviction_across_<model>.txt;
# for DeepSeek-V3 and Qwen3.5-MoE at 25 % cached only, with 250,000 rows, for time).
# Prose: bench/RESULTS.md, "Issue 19, eighth round". Each run is one thread; all run at once.
#
#   TMPDIR=/tmp/x bash bench/results/learned_eviction.sh [BUILD_DIR]
set -euo pipefail
B=${1:-build}
T=${TMPDIR:-/tmp}/learned_eviction
R=bench/results
mkdir -p "$T"
models="qwen3_moe_trained deepseek_v3_trained qwen3_5_moe_trained"
for m in $models; do
  for x in repo cpp; do
    # The same traces as the earlier rounds' (bench/RESULTS.md, issue 19): windows of 1024
    # tokens, the router's top 16 recorded (version 2).
    [ -s "$T/${x}_$m.trace" ] || "$B/bench/bench_routing" record -m "tests/data/$m" \
      --text "bench/data/heldout_$x.txt" --out "$T/${x}_$m.trace" --ctx 1024 --predict 2
  done
done
m=qwen3_moe_trained
"$B/bench/bench_routing" learned "$T/repo_$m.trace" "$T/cpp_$m.trace" > "$R/learned_eviction_half_$m.txt" &
"$B/bench/bench_routing" learned --across "$T/repo_$m.trace" "$T/cpp_$m.trace" > "$R/learned_eviction_across_$m.txt" &
wait
for m in deepseek_v3_trained qwen3_5_moe_trained; do
  for x in repo cpp; do
    "$B/bench/bench_routing" learned --sizes 25,10,50 --rows 250000 "$T/${x}_$m.trace" > "$R/learned_eviction_half_${x}_$m.txt" &
  done
done
wait
for m in deepseek_v3_trained qwen3_5_moe_trained; do
  "$B/bench/bench_routing" learned --across --sizes 25 --rows 250000 "$T/repo_$m.trace" "$T/cpp_$m.trace" \
    > "$R/learned_eviction_across_$m.txt" &
done
wait
# --online: the follows feature counted from the replayed text itself so far, no table fitted
# offline (learned_eviction_online_*.txt). The C++ halves' files are two runs appended, 25 %
# then 10 and 50 % (fitting is deterministic, so each run fits the same models).
for m in $models; do
  for x in repo cpp; do
    "$B/bench/bench_routing" learned --online --sizes 25,10,50 --rows 250000 "$T/${x}_$m.trace" \
      > "$R/learned_eviction_online_half_${x}_$m.txt" &
  done
done
m=deepseek_v3_trained
"$B/bench/bench_routing" learned --online --across --sizes 25 --rows 250000 "$T/repo_$m.trace" "$T/cpp_$m.trace" \
  > "$R/learned_eviction_online_across_$m.txt" &
wait
