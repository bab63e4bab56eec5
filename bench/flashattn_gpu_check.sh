#!/usr/bin/env bash
# The cooperative-matrix prefill attention on an NVIDIA GPU (docs/gpu_prefill.md, "Prefill
# attention on cooperative matrices"): its correctness, then its device time against the
# blocked kernel's. One device call; run from the repository root (the tests find tests/data
# through the build's source path, /work/main after the merge).
#
#   OUT=DIR bash bench/flashattn_gpu_check.sh LIBS BIN
# LIBS: the shared libraries the binaries need beyond glibc (bench/vulkan_gpu_pack.sh's
# PACK/lib); BIN: a folder holding test_vulkan_flash_attention, test_vulkan_ops,
# test_golden_gpt_oss, test_golden_qwen3_moe, test_golden_gguf and bench_vulkan_prefill (those
# missing are said and skipped). Everything goes to $OUT/flashattn: gpu.txt, NAME[-ENV].txt per
# run, summary.txt (each run's gtest totals or the bench's table).
# What decides: every run PASSED (test_vulkan_flash_attention's CooperativeMatchesCpu run,
# not skipped; the golden suites within their 2e-3 with the kernel taken, the default), and
# in the bench the cooperative row's median well under the blocked one's (the target: under
# 100 us a layer at 512 tokens against the blocked kernel's ~449).
set -u
libs=${1:?LIBS: the folder of the shared libraries}
bin=${2:?BIN: the folder of binaries}
out=${OUT:?OUT: where the results go}/flashattn
mkdir -p "$out"
say() { echo "$*" | tee -a "$out/summary.txt"; }
if [ -d .gl ]; then for f in .gl/*.deb; do dpkg -x "$f" / 2>/dev/null; done; ldconfig; fi
export LD_LIBRARY_PATH="$libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
for f in /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json /usr/share/vulkan/icd.d/nvidia_icd.json \
         /etc/vulkan/icd.d/nvidia_icd.json; do
  if [ -f "$f" ]; then export VK_DRIVER_FILES="$f" VK_ICD_FILENAMES="$f"; break; fi
done
timeout 10 nvidia-smi --query-gpu=name,driver_version --format=csv > "$out/gpu.txt" 2>&1
cat "$out/gpu.txt"
# run NAME LABEL [ENV=VALUE ...] -- ARGS: one binary under an environment, its totals to the summary.
run() {
  local name=$1 label=$2; shift 2
  local envs=()
  while [ "$#" -gt 0 ] && [ "$1" != "--" ]; do envs+=("$1"); shift; done
  [ "$#" -gt 0 ] && shift
  if [ ! -x "$bin/$name" ]; then say "$label: $bin/$name missing, skipped"; return; fi
  env ${envs[@]+"${envs[@]}"} timeout 240 "$bin/$name" "$@" > "$out/$label.txt" 2>&1
  local rc=$?
  say "$label (rc $rc): $(grep -E '^\[  (PASSED|FAILED|SKIPPED) +\] [0-9]+ tests?' "$out/$label.txt" | tr '\n' ' ')"
  grep -E '^\[  FAILED  \].*,|Failure|Skipped' "$out/$label.txt" | head -20 >> "$out/summary.txt"
}
run test_vulkan_flash_attention flash_tests
run test_vulkan_ops ops_attention -- --gtest_filter='*Attention*'
run test_golden_gpt_oss gpt_oss -- --gtest_filter='*vulkan*'
run test_golden_qwen3_moe qwen3_moe -- --gtest_filter='*vulkan*'
run test_golden_gguf gguf -- --gtest_filter='*vulkan*:*Vulkan*'
run test_golden_gpt_oss gpt_oss-blocked MST_VULKAN_FLASH_ATTENTION=off -- --gtest_filter='*vulkan*'
if [ -x "$bin/bench_vulkan_prefill" ]; then
  for prec in split f16; do
    MST_VULKAN_COOPMAT_PRECISION=$prec timeout 240 "$bin/bench_vulkan_prefill" --attention --tokens 512 --rounds 20 \
      > "$out/bench-$prec.txt" 2>&1
    rc=$?
    say "bench_vulkan_prefill --attention, MST_VULKAN_COOPMAT_PRECISION=$prec (rc $rc):"
    grep -A4 '^attention at' "$out/bench-$prec.txt" | tee -a "$out/summary.txt"
  done
else
  say "bench_vulkan_prefill missing, skipped"
fi
