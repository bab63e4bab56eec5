#!/usr/bin/env bash
# Makes the measurements bench/RESULTS.md records: a Qwen3-30B-A3B-shaped model (all 48
# layers, q4 experts, q8 dense weights, random weights from `moestream synth`) decoding
# inside a 6 GiB memory limit (page cache included), every storage tier cold and warm,
# plain page-faulting mmap, every cache policy, and a sweep of expert-cache budgets with
# its plot.
#
#   bench/results/run_qwen3_30b_a3b.sh [MODEL.mst]
#
# The model is synthesized first when MODEL.mst does not exist (18.4 GiB). Outputs land
# beside this script: one .txt (the table) and one .json per group, and the plot.
set -euo pipefail
cd "$(dirname "$0")/../.."
MODEL=${1:-models/qwen3-30b-a3b-q4.mst}
OUT=bench/results
BIN=./build/bin/moestream
LIMIT=${LIMIT:-6G}

if [ ! -f "$MODEL" ]; then
    mkdir -p "$(dirname "$MODEL")"
    "$BIN" synth --config ../shared/configs/qwen3-30b-a3b.json --experts q4 --dense q8 --seed 1 "$MODEL"
fi

# 8 prompt tokens (a long prompt reads every expert of every layer and says nothing about
# decode), 16 decoded tokens, the next layer's experts read ahead.
common=(-m "$MODEL" --prompt-tokens 8 --gen-tokens 16 --prefetch)
run() {  # run NAME ARGS...: one bench invocation in the memory limit, table to NAME.txt
    local name=$1
    shift
    echo "== $name: moestream bench ${common[*]} $*" | tee "$OUT/$name.txt"
    bash bench/limit_memory.sh "$LIMIT" "$BIN" bench "${common[@]}" "$@" --json "$OUT/$name.json" 2>&1 |
        tee -a "$OUT/$name.txt"
}

run tiers_cold --cold --cache-mb 2048 --sweep-storage mmap,pread,direct,uring
# What an engine that leaves I/O to page faults gets: the mmap tier without WILLNEED (and
# so without populating on the I/O threads); prefetch then only maps, it reads nothing.
run mmap_plain_cold --cold --cache-mb 2048 --storage mmap --storage-willneed 0
run tiers_warm --cache-mb 2048 --sweep-storage mmap,pread,direct,uring
run policies_cold --cold --storage uring --cache-mb 2048 --sweep-policy lru,lfu,arc,none
run budgets_cold --cold --sweep-storage mmap,uring --sweep-cache-mb 256,1024,2048,2560 \
    --plot "$OUT/budgets_cold.svg"
