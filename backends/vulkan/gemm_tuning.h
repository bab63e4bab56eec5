// The tiling of the tuned prefill GEMM (shaders/gemm_tuned.comp), chosen at run time:
// MST_VULKAN_COOP_TUNING=MIxNJxSPLITKxBK[xTN[xSTAGES]] (e.g. 2x2x2x32, 2x2x1x32x32) or `main` (main's
// kernel, shaders/gemm.comp, the default). They go to the shader as specialization constants,
// so one build can compare every tuning on one GPU (bench_vulkan_prefill --sweep).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "backends/vulkan/gemm_precision.h"
#include "core/dtype.h"

namespace mst {

struct GemmTuning {
    // 16 x 16 sums per subgroup along rows and tokens, groups of 4 subgroups splitting a
    // step's columns, columns a step. mi == 0: main's kernel (gemm.comp), not a tuning.
    uint32_t mi = 0, nj = 0, splitk = 0, bk = 0;
    // Tokens a pass (32 or 64): a workgroup takes a 64-token tile (the grid's and the grouped
    // tile table's) in 64 / tn passes; its 4 subgroups lie tn / 16 nj along the tokens and
    // the rest along the rows.
    uint32_t tn = 64;
    // Staged copies of the tiles (1 or 2): with 2 a step stores the next one's tiles into
    // the other copy after its products, one barrier a step instead of two, for twice the
    // staging's shared memory.
    uint32_t stages = 1;

    bool tuned() const { return mi != 0; }
    // Subgroups along the weight rows (of the 4 a group).
    // (0 for a shape check_gemm_tuning refuses: no division by zero before it is checked.)
    uint32_t row_subgroups() const {
        const uint32_t along_tokens = nj == 0 ? 0 : tn / (16u * nj);
        return along_tokens == 0 ? 0 : 4u / along_tokens;
    }
    // Weight rows a workgroup takes: gemm_tuned.comp's BM = 16 MI SR (main's kernel: 64).
    uint32_t tile_rows() const { return tuned() ? 16u * mi * row_subgroups() : 64u; }
    uint32_t threads() const { return 128u * splitk; }
    // Shared memory a workgroup of the tuned kernel declares, with the up weights' tile
    // (SwiGLU) or without, under `precision`: split adds a lo tile beside each staged tile
    // (the activations', and the weights' for types f16 does not hold: the count is for
    // those, the most a type needs). The sums lie over the staged tiles: the larger of the two.
    uint32_t shared_bytes(bool swiglu, CoopPrecision precision) const;
    // The same for the variant of `type`'s weights exactly: the tiles gemm_tuned.comp splits
    // for that type (SPLIT_W, SPLIT_X: q4 under split stages one f16 of each, f16 and bf16
    // split the activations, f32 and q8 both; under exact q4 splits both).
    uint32_t shared_bytes(bool swiglu, CoopPrecision precision, DType type) const;
    // "MIxNJxSPLITKxBK" (with "xTN" when tn is not 64, "xTNxSTAGES" when stages is not 1),
    // or "main".
    std::string name() const;
};

inline bool operator==(const GemmTuning &a, const GemmTuning &b) {
    return a.mi == b.mi && a.nj == b.nj && a.splitk == b.splitk && a.bk == b.bk && a.tn == b.tn &&
           a.stages == b.stages;
}

// MST_VULKAN_COOP_TUNING's value: one tuning for every product, or DENSE/GROUPED (e.g.
// 1x2x4x128/2x2x1x32x32, main/2x2x1x32x32): the dense products' and the grouped routed
// experts'. False with `why` naming the bad part; the outputs stay as they were.
bool parse_gemm_tunings(std::string_view text, GemmTuning &dense, GemmTuning &grouped, std::string &why);

// "A" when both are A, else "DENSE/GROUPED" (what parse_gemm_tunings reads back).
std::string gemm_tunings_name(const GemmTuning &dense, const GemmTuning &grouped);

// Parses "main" or "MIxNJxSPLITKxBK[xTN[xSTAGES]]" and checks the shader's rules (check_gemm_tuning);
// false with `why` saying what is wrong.
bool parse_gemm_tuning(std::string_view text, GemmTuning &out, std::string &why);

// The rules every device shares: NJ of 1, 2 or 4, TN of 32 or 64 holding whole 16 NJ-token
// blocks (TN / 16 NJ subgroups along a pass's tokens), MI of 1 to 8, SPLITK of 1, 2, 4 or 8, BK a multiple of 32 up to 256 whose 16-column
// slices SPLITK groups share evenly, and whole 8-element pieces of both staged tiles for
// every thread. The device's shared memory and workgroup size are checked on top
// (VulkanBackend::set_gemm_tuning).
bool check_gemm_tuning(const GemmTuning &t, std::string &why);

}  // namespace mst
