#!/usr/bin/env bash
# coopprec on an NVIDIA GPU (docs/gpu_prefill.md, "Split f16 staging"): do the split f16
# staging's cooperative-matrix GEMMs (MST_VULKAN_COOPMAT_PRECISION=split, the default) hold
# the golden suites within their bounds, and what do they cost against one f16 (=f16)?
#
#   OUT=DIR bash bench/results/vulkan_h100_calls_2026-12-07b/coopprec_run.sh PACK TESTS
# PACK: bench/vulkan_gpu_pack.sh's payload, unpacked (PACK/bin, PACK/lib); TESTS: a folder of
# test binaries (test_golden_qwen3_5_moe, _gpt_oss, _mixtral, _qwen3_moe, _deepseek_v3,
# test_vulkan_gemm, test_vulkan_gemm_precision; those missing are said and skipped). Run from
# the repository root (the tests find tests/data through /work/main). At most ~145 s
# (BUDGET=seconds to change it). Everything goes to $OUT/coopprec:
#   gpu.txt                      the device and driver
#   tests_split/NAME.txt, .xml   each test binary with the default precision (split);
#                                the xml records each golden case's relative errors
#   errors_split.txt, errors_f16.txt  the golden cases' relative errors (whole, worst row)
#   tests_f16/NAME.txt, .xml     the golden suites again with =f16 (the time left, last)
#   bv_split_R.txt, bv_f16_R.txt bench_vulkan --layers 48 --prefill 512 --decode 8
#                                --no-cpu --no-streamed, rounds R = 1..3 interleaved
#   sweep_split.txt, sweep_f16.txt  bench_vulkan_prefill --sweep --tunings 2x2x2x32: each
#                                prefill product's GEMM device time, main's kernel and 2x2x2x32
#   summary.txt                  the lines that decide: test totals, prefill tok/s per run
#                                (min / median / max per precision), the sweeps' layer totals
set -u
start=$(date +%s)
pack=${1:?PACK: the unpacked payload of bench/vulkan_gpu_pack.sh (PACK/bin, PACK/lib)}
tests=${2:?TESTS: the folder of test binaries}
out=${OUT:?OUT: where the results go}/coopprec
mkdir -p "$out/tests_split" "$out/tests_f16"
el() { echo "== $(( $(date +%s) - start )) s: $*" | tee -a "$out/summary.txt"; }
left() { echo $(( ${BUDGET:-145} - ($(date +%s) - start) )); }
say() { echo "$*" | tee -a "$out/summary.txt"; }
export LD_LIBRARY_PATH="$pack/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
for f in /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json /usr/share/vulkan/icd.d/nvidia_icd.json \
         /etc/vulkan/icd.d/nvidia_icd.json; do
  if [ -f "$f" ]; then export VK_DRIVER_FILES="$f" VK_ICD_FILENAMES="$f"; break; fi
done
{ date -u; timeout 10 nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv; } > "$out/gpu.txt" 2>&1
cat "$out/gpu.txt"
# The test binaries read /work/main/tests/data: point it here (unless a real checkout is there).
if [ ! -e /work/main ] || [ -L /work/main ]; then mkdir -p /work && ln -sfn "$PWD" /work/main; fi
unset MST_VULKAN_COOPMAT_PRECISION

# One test binary under `precision` (split or f16), its Vulkan tests only, at most `cap` s.
run_test() {
  local name=$1 precision=$2 cap=$3 dir=$out/tests_$2 t
  [ -x "$tests/$name" ] || { say "$name: not in $tests"; return; }
  t=$(left); t=$(( t - ${RESERVE:-0} )); [ "$t" -gt "$cap" ] && t=$cap
  [ "$t" -lt 8 ] && { el "out of time before $name ($precision)"; return; }
  MST_VULKAN_COOPMAT_PRECISION=$precision MST_CPU_ACT_BITS=16 OMP_WAIT_POLICY=passive timeout "$t" "$tests/$name" \
    --gtest_filter='*ulkan*-*rained*' --gtest_output="xml:$dir/$name.xml" > "$dir/$name.txt" 2>&1
  say "$name ($precision): rc $? $(grep -E '^\[  (PASSED|FAILED) ' "$dir/$name.txt" | tr '\n' ' ')"
  grep -E '^\[  FAILED  \] .*\.' "$dir/$name.txt" | head -8 | tee -a "$out/summary.txt"
  grep -E 'actual: .* vs ' "$dir/$name.txt" | head -6 | cut -c1-200 | tee -a "$out/summary.txt"
}
# The golden cases' errors from the xml files: per binary, each case's name, then its
# *relative_error properties (golden_logits.h records them, passing or not).
errors() {
  for x in "$out/tests_$1"/test_golden_*.xml; do
    [ -f "$x" ] || continue
    echo "# $(basename "$x" .xml)"
    grep -oE '<testcase name="[^"]*"|<property name="[^"]*relative_error" value="[^"]*"' "$x" |
      sed -E 's/<testcase name="([^"]*)"/\1:/; s/<property name="([^"]*)" value="([^"]*)"/  \1 \2/' | paste -sd' ' |
      sed 's/ \([^ ]*:\)/\n\1/g'
  done > "$out/errors_$1.txt"
}

goldens="test_golden_qwen3_5_moe test_golden_gpt_oss test_golden_mixtral test_golden_qwen3_moe test_golden_deepseek_v3"
el "tests with the default precision (split), at most 25 s each, 80 s kept for the benchmarks"
for name in $goldens test_vulkan_gemm_precision test_vulkan_gemm; do RESERVE=80 run_test "$name" split 25; done
errors split

bv() {
  local precision=$1 round=$2 t f=$out/bv_$1_$2.txt
  t=$(left); [ "$t" -gt 25 ] && t=25; [ "$t" -lt 12 ] && { el "out of time before bench_vulkan $precision $round"; return; }
  MST_VULKAN_COOPMAT_PRECISION=$precision timeout "$t" "$pack/bin/bench_vulkan" --layers 48 --prefill 512 --decode 8 \
    --no-cpu --no-streamed > "$f" 2>&1
  say "bench_vulkan $precision round $round: $(grep -oE 'prefill [0-9]+ tokens [0-9.]+ tok/s' "$f" | head -1) $(grep -c 'f16 staging '"$precision" "$f") staging line"
}
el "bench_vulkan 48 layers, prefill 512: split, f16 interleaved, 3 rounds"
for round in 1 2 3; do bv split $round; bv f16 $round; done
for precision in split f16; do
  grep -ohE 'prefill [0-9]+ tokens [0-9.]+ tok/s' "$out"/bv_${precision}_*.txt 2>/dev/null | awk '{print $4}' | sort -n |
    awk -v p=$precision '{v[NR]=$1} END {if (NR) printf "prefill tok/s %s: min %s median %s max %s (%d runs)\n", p, v[1], v[int((NR+1)/2)], v[NR], NR}' |
    tee -a "$out/summary.txt"
done

for precision in split f16; do
  t=$(left); [ "$t" -gt 20 ] && t=20; [ "$t" -lt 10 ] && { el "out of time before the $precision sweep"; continue; }
  el "bench_vulkan_prefill --sweep --tunings 2x2x2x32 ($precision)"
  MST_VULKAN_COOPMAT_PRECISION=$precision timeout "$t" "$pack/bin/bench_vulkan_prefill" --sweep --tunings 2x2x2x32 \
    --rounds 3 > "$out/sweep_$precision.txt" 2>&1
  grep -A3 -E '^GEMM device time of a layer' "$out/sweep_$precision.txt" | tee -a "$out/summary.txt"
done

el "golden suites with =f16 (the time left)"
for name in test_golden_qwen3_5_moe test_golden_gpt_oss test_golden_mixtral; do run_test "$name" f16 25; done
errors f16
el done
