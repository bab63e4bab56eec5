#!/usr/bin/env bash
# Lead call (2026-12-07, 22:01 UTC; raw output bench/results/vulkan_h100_2026-12-07_2200.txt; the device budget left
# after the evening's failed starts holds one call): main with gemmbig, flashattn, matvecrows
# merged, then loadsahead (the decode's latency-bound kernels issue their loads together; OLD_BV:
# main's bench_vulkan before it, xz, run beside the defaults each round). The golden suites and
# the new kernels' tests on the H100 (the
# cooperative-matrix paths run nowhere else), old vs cooperative prefill attention, the prefill
# GEMM sweep (wide tiles), then 48-layer rounds with the candidates. Environment: PACKDIR (the
# pack: bench/vulkan_gpu_pack.sh + tests.tar.xz), BUDGET, TUNINGS, MV, EXTRA_ENV.
set -u
start=$(date +%s)
el() { echo "== $(( $(date +%s) - start )) s: $*"; }
left() { echo $(( ${BUDGET:-560} - ($(date +%s) - start) )); }
for f in .gl/*.deb; do dpkg -x $f / 2>/dev/null; done; ldconfig
P=${PACKDIR:-.gpu/g1} W=/tmp/w
mkdir -p $W/pack $OUT/lead; rm -rf $W/pack/*; tar -C $W/pack -xJf $P/payload.tar.xz || exit 1
rm -rf $W/tb; tar -C $W -xJf $P/tests.tar.xz || exit 1
export LD_LIBRARY_PATH=$W/pack/lib
for f in /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json /usr/share/vulkan/icd.d/nvidia_icd.json /etc/vulkan/icd.d/nvidia_icd.json; do
  if [ -f "$f" ]; then export VK_DRIVER_FILES="$f" VK_ICD_FILENAMES="$f"; break; fi; done
{ date -u; timeout 10 nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv; nproc; } | tee $OUT/lead/gpu.txt
M=$W/pack/bin/moestream mst=$W/qwen3-30b-a3b-48.mst gguf=$W/qwen3-30b-a3b-48.gguf
( [ -f $gguf ] || { nice timeout 400 $M synth --config $W/pack/qwen3-30b-a3b.json --layers 48 $mst > $W/synth48.txt 2>&1 &&
  nice timeout 300 $M convert $mst $gguf > $W/convert48.txt 2>&1; }; echo "files rc $?" >> $W/synth48.txt ) &
if [ ! -e /work/main ] || [ -L /work/main ]; then mkdir -p /work && ln -sfn "$PWD" /work/main; fi
el "golden suites and the new kernels' tests, in parallel, at most 100 s"
mkdir -p $OUT/lead/golden
for t in $(ls $W/tb); do
  envs="MST_CPU_ACT_BITS=16 MST_VULKAN_FLASH_ATTENTION=auto"; [ $t = test_golden_gguf ] && envs="MST_VULKAN_COOPMAT_PRECISION=exact MST_VULKAN_FLASH_ATTENTION=auto"
  filt='*ulkan*-*rained*'; case $t in test_golden_*) ;; test_vulkan_ops) filt='*Attention*';; *) filt='*';; esac
  ( env $envs OMP_WAIT_POLICY=passive timeout 100 $W/tb/$t --gtest_filter="$filt" > $OUT/lead/golden/$t.txt 2>&1; echo "rc $?" >> $OUT/lead/golden/$t.txt ) &
done
while pgrep -f "$W/tb/" > /dev/null; do sleep 2; done
for t in $OUT/lead/golden/*.txt; do echo "$(basename $t .txt): $(tail -1 $t) $(grep -E '^\[  (PASSED|FAILED) ' $t | tr '\n' ' ')"; grep -E "^\[  FAILED  \] .*\.|actual: |Failure" $t | head -12 | cut -c1-220; done
B=$W/pack/bin
el "prefill attention: blocked vs cooperative, 512 tokens"
timeout 60 $B/bench_vulkan_prefill --attention --tokens 512 --rounds 20 > $OUT/lead/attention.txt 2>&1; tail -15 $OUT/lead/attention.txt
el "prefill GEMM sweep"
MST_VULKAN_PROFILE=2 timeout 100 $B/bench_vulkan_prefill --sweep --tokens 512 --rounds 3 ${TUNINGS:+--tunings $TUNINGS} > $OUT/lead/gemm_sweep.txt 2>&1; echo "rc $?"; tail -30 $OUT/lead/gemm_sweep.txt | cut -c1-200
BEST=$(grep -oE 'BEST_TUNINGS=[^ ]+' $OUT/lead/gemm_sweep.txt | tail -1 | cut -d= -f2); echo "best gemm: $BEST"; echo "$BEST" > $W/best.txt
MV=${MV:-}
bv() { local label=$1 envs=$2 t; shift 2; t=$(left); [ "$t" -gt 35 ] && t=35; [ "$t" -lt 15 ] && { el "no time for bv $label"; return; }
  env $envs timeout $t ${BVBIN:-$B/bench_vulkan} --layers 48 --prefill 512 --decode 64 --no-cpu --no-streamed "$@" > $OUT/lead/bv_$label.txt 2>&1
  echo "bv $label: $(grep -E 'vulkan resident' $OUT/lead/bv_$label.txt | cut -c1-150) | $(grep -oE 'decode logits hash [0-9a-f]+' $OUT/lead/bv_$label.txt)"; }
L=$W/pack/llama/llama_runner
lr() { local label=$1; local t; t=$(left); [ "$t" -lt 40 ] && { el "out of time before llama $label"; return; }; [ "$t" -gt 45 ] && t=45
  el "llama.cpp $label"; timeout $t $L -m $gguf -ngl 999 -t "$(nproc)" --synthetic-prompt 512 --decode forced -b 512 --backends $W/pack/llama -n 64 --passes 2 > $OUT/lead/llama_$label.txt 2>&1
  grep -E "prompt_first|decode_tok" $OUT/lead/llama_$label.txt | tr '\n' ' '; echo; }
ALL="MST_VULKAN_FLASH_ATTENTION=auto ${BEST:+MST_VULKAN_COOP_TUNING=$BEST} ${MV:+MST_VULKAN_MATVEC_TUNING=$MV} ${EXTRA_ENV:-}"
echo "all: $ALL"
[ -n "${OLD_BV:-}" ] && xz -dc $OLD_BV > $W/bench_vulkan_old && chmod +x $W/bench_vulkan_old
for r in 1 2 3; do
  bv def_$r ""
  [ -n "${OLD_BV:-}" ] && BVBIN=$W/bench_vulkan_old bv old_$r ""
  bv all_$r "$ALL"
  bv flash_$r MST_VULKAN_FLASH_ATTENTION=auto
  [ -n "$BEST" ] && bv gemm_$r "MST_VULKAN_COOP_TUNING=$BEST"
  [ -n "$MV" ] && bv mv_$r "MST_VULKAN_MATVEC_TUNING=$MV"
  [ -n "${EXTRA_ENV:-}" ] && bv extra_$r "$EXTRA_ENV"
  if grep -q "files rc 0" $W/synth48.txt 2>/dev/null && [ -f $gguf ]; then lr $r; fi
done
tail -2 $W/synth48.txt
cd $OUT && tar -czf $OUT/results_1.tgz --exclude results_1.tgz . 2>/dev/null; find $OUT -mindepth 1 -maxdepth 1 ! -name results_1.tgz -exec rm -rf {} +
el done
