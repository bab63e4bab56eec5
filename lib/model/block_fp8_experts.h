// Routed SwiGLU experts whose projections may be FP8 E4M3 with block scales (DeepSeek-V3,
// Kimi K2), or plain float. The expert cache keeps them as stored: an FP8 expert costs
// half the bytes of a bf16 one in the cache and on the read path, and the CPU computes
// on it directly (Backend::matmul_block_fp8).
//
// Layout parts: each projection's weight, followed by its F32 block scales when the
// weight is F8_E4M3. Projections: gate, up, down (per-expert tensors, or a float fused
// gate_up split in two), or gate_up [2I][H], down when gate_up is fused and FP8 (its
// scale blocks may straddle the gate and up rows, so it stays one projection).
#pragma once

#include <string>
#include <vector>

#include "experts/expert_layout.h"
#include "format/checkpoint.h"
#include "model/block_fp8.h"
#include "model/ffn.h"

namespace mst {

// Throws BAD_FORMAT naming the first missing or misshapen tensor (weights or scales),
// UNSUPPORTED for a dtype other than F32, F16, BF16 and F8_E4M3.
std::vector<ExpertLayout> locate_block_fp8_experts(const Checkpoint &checkpoint, const std::string &prefix,
                                                   int64_t n_experts, int64_t hidden, int64_t intermediate,
                                                   Fp8BlockSize block);

// Checks layouts from wherever they came (a packed index is only as good as its file):
// n_experts experts, each gate, up, down ([I][H], [I][H], [H][I]) or gate_up [2I][H] and
// down, each in a type the matmul takes (F32, F16, BF16, Q8, Q4) or F8_E4M3 followed by
// its F32 block scales. Throws BAD_FORMAT naming `where`, the layer, expert and part.
void check_block_fp8_experts(const std::vector<ExpertLayout> &layouts, int64_t n_experts, int64_t hidden,
                             int64_t intermediate, Fp8BlockSize block, const std::string &where, int64_t layer);

// The ExpertFn computing such experts.
ExpertFn block_fp8_swiglu_expert(Fp8BlockSize block);

}  // namespace mst
