#!/usr/bin/env bash
# vktests on an NVIDIA GPU (issue 17; bench/README.md, the golden suites of 2026-12-07 08:40
# UTC): (1) after many Vulkan backends in one process the NVIDIA driver refused
# vkCreateInstance (VK_ERROR_INCOMPATIBLE_DRIVER); every backend now shares one instance
# (backends/vulkan/vulkan_instance.h). (2) test_vulkan_router_topk_fusion found the fusion
# off on the H100: its fused run came first on fresh weights, whose copies a discrete GPU
# records at first use (and with them the deferred norm); the fusion tests now run both
# memory paths and make their weights resident first.
#
#   OUT=DIR bash bench/results/vulkan_h100_calls_2026-12-07b/vktests_run.sh PACK TESTS
# PACK: bench/vulkan_gpu_pack.sh's payload, unpacked (PACK/bin, PACK/lib: the libraries,
# the Vulkan loader among them); TESTS: a folder of stripped test binaries:
#   test_vulkan_backend_lifetime test_vulkan_driver_instance_cycles
#   test_vulkan_router_topk_fusion test_vulkan_attention_fusion test_vulkan_kv_append_fusion
#   test_vulkan_decode_fusion test_golden_qwen3_moe test_golden_deepseek_v3 test_golden_qwen3_5_moe
# (those missing are said and skipped). Run from the repository root (the tests find
# tests/data through /work/main). At most ~115 s (BUDGET=seconds to change it). Everything
# goes to $OUT/vktests:
#   gpu.txt      the device and driver
#   NAME.txt     each test binary's output
#   summary.txt  per binary: rc, gtest's PASSED/SKIPPED/FAILED totals, how many
#                vkCreateInstance refusals (VK_ERROR_INCOMPATIBLE_DRIVER) it met; then the
#                lines that decide:
#     "after 64 backends: instances created 1 -> 1; devices alive 0 -> 0, ..." and the same
#       "after 12 models": what the process held before and after the cycles (fds,
#       threads, mapped regions); instances created must stay 1;
#     "N cycles of an instance[ and a device], X ms each, none refused" or "cycle N of ...:
#       vkCreateInstance returned VK_ERROR_INCOMPATIBLE_DRIVER": the driver probe
#       (disabled tests, run here): how many instance cycles the driver takes in one
#       process, and whether its fds or mapped memory grow per cycle;
#     "the fusion did not engage" lines (none expected), and "cannot fuse here" skips.
set -u
start=$(date +%s)
pack=${1:?PACK: the unpacked payload of bench/vulkan_gpu_pack.sh (PACK/bin, PACK/lib)}
tests=${2:?TESTS: the folder of test binaries}
out=${OUT:?OUT: where the results go}/vktests
mkdir -p "$out"
el() { echo "== $(( $(date +%s) - start )) s: $*" | tee -a "$out/summary.txt"; }
left() { echo $(( ${BUDGET:-115} - ($(date +%s) - start) )); }
say() { echo "$*" | tee -a "$out/summary.txt"; }
# The Vulkan loader's Debian packages where the caller left them (.gl/: with libvulkan1
# alone the NVIDIA ICD fails with VK_ERROR_INCOMPATIBLE_DRIVER at once).
if [ -d .gl ]; then for f in .gl/*.deb; do dpkg -x "$f" / 2>/dev/null; done; ldconfig; fi
export LD_LIBRARY_PATH="$pack/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
for f in /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json /usr/share/vulkan/icd.d/nvidia_icd.json \
         /etc/vulkan/icd.d/nvidia_icd.json; do
  if [ -f "$f" ]; then export VK_DRIVER_FILES="$f" VK_ICD_FILENAMES="$f"; break; fi
done
{ date -u; timeout 10 nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv; } > "$out/gpu.txt" 2>&1
cat "$out/gpu.txt"
# The test binaries read /work/main/tests/data: point it here (unless a real checkout is there).
if [ ! -e /work/main ] || [ -L /work/main ]; then mkdir -p /work && ln -sfn "$PWD" /work/main; fi
export MST_CPU_ACT_BITS=16 OMP_WAIT_POLICY=passive

# One test binary with `filter` and extra gtest arguments, at most `cap` s; its totals in the summary.
run_test() {
  local name=$1 cap=$2 filter=$3 t f=$out/$1.txt
  shift 3
  [ -x "$tests/$name" ] || { say "$name: not in $tests"; return; }
  t=$(left); [ "$t" -gt "$cap" ] && t=$cap
  [ "$t" -lt 8 ] && { el "out of time before $name"; return; }
  el "$name (at most $t s)"
  timeout "$t" "$tests/$name" --gtest_filter="$filter" "$@" > "$f" 2>&1
  local rc=$?
  say "$name: rc $rc $(grep -E '^\[  (PASSED|FAILED|SKIPPED) +\] [0-9]+ test' "$f" | sed 's/, listed below:/;/' | tr '\n' ' ')" \
      "$(grep -c 'VK_ERROR_INCOMPATIBLE_DRIVER' "$f") lines with VK_ERROR_INCOMPATIBLE_DRIVER"
  grep -E '^\[  FAILED  \] .*\.' "$f" | head -6 | cut -c1-220 | tee -a "$out/summary.txt"
}

run_test test_vulkan_backend_lifetime 30 '*'
grep -E '^after [0-9]+ ' "$out/test_vulkan_backend_lifetime.txt" 2>/dev/null | tee -a "$out/summary.txt"
run_test test_golden_qwen3_moe 30 '*ulkan*-*rained*'
for name in test_vulkan_router_topk_fusion test_vulkan_attention_fusion test_vulkan_kv_append_fusion \
            test_vulkan_decode_fusion; do
  run_test "$name" 12 '*'
  grep -hE 'did not engage|cannot fuse here' "$out/$name.txt" 2>/dev/null | sort | uniq -c | head -4 |
    cut -c1-220 | tee -a "$out/summary.txt"
done
run_test test_vulkan_driver_instance_cycles 22 '*' --gtest_also_run_disabled_tests
grep -hE 'cycles of |^cycle [0-9]+ of ' "$out/test_vulkan_driver_instance_cycles.txt" 2>/dev/null | cut -c1-300 |
  tee -a "$out/summary.txt"
# The two suites that met the refusal on 2026-12-07, with the time left.
run_test test_golden_deepseek_v3 25 '*ulkan*-*rained*'
run_test test_golden_qwen3_5_moe 25 '*ulkan*-*rained*'
el done
