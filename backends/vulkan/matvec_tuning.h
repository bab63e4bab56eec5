// The shapes of the one-token product kernels, chosen at run time:
// MST_VULKAN_MATVEC_TUNING=dense=LxR[xP],swiglu=LxR[xP],combine=LxR[xP] (any of the three, in any
// order; a family left out keeps its default) or `default`. L (LANES) lanes share a weight
// row and R (ROWS) rows of lanes make a workgroup; each lane takes P (PER_LANE, default 1)
// consecutive rows, so a workgroup covers R x P rows and every x element a lane loads feeds
// P rows' weights (matvec_rows.glsl). L, R and P go to the shaders as specialization
// constants 0, 1 and 4, so one build can compare every shape on one GPU (bench_vulkan
// --matvec-sweep). matvec_id_combine.comp (MST_VULKAN_COMBINE_IN_DOWN=1) takes the combine
// family's LxR at one row a lane; matvec_id.comp's down products before combine_id (the
// default) take its P.
//   dense:   matvec.comp and its fused forms matvec_fused.comp (norm+product, product+add):
//            q/k/v/o, the router and lm_head of a decode step.
//   swiglu:  matvec_id_swiglu.comp, the routed experts' gate+up+SwiGLU.
//   combine: matvec_id_combine.comp, the routed experts' down products and their sum.
// matvec_id.comp (MST_VULKAN_MOE_FUSION=0's products) keeps the default shape: it is the
// reference the fused kernels are held to bit for bit.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace mst {

struct MatvecShape {
    uint32_t lanes = 32, rows = 4, per_lane = 1;
    uint32_t threads() const { return lanes * rows; }
    // Weight rows a workgroup covers (its grid is the rows over this, rounded up).
    uint32_t rows_per_group() const { return rows * per_lane; }
    std::string name() const;  // "LxR", or "LxRxP" where P is above 1
};

inline bool operator==(const MatvecShape &a, const MatvecShape &b) {
    return a.lanes == b.lanes && a.rows == b.rows && a.per_lane == b.per_lane;
}

struct MatvecTuning {
    MatvecShape dense, swiglu, combine;
    // Every family at s (what a sweep's row and a test of one shape run).
    static MatvecTuning at(const MatvecShape &s) { return MatvecTuning{s, s, s}; }
    // "dense=LxR,swiglu=LxR,combine=LxR", every family named (what the sweep prints).
    std::string name() const;
};

inline bool operator==(const MatvecTuning &a, const MatvecTuning &b) {
    return a.dense == b.dense && a.swiglu == b.swiglu && a.combine == b.combine;
}

// Parses MST_VULKAN_MATVEC_TUNING's value over `defaults` (the device's default shapes):
// "default", or comma-separated family=LxR or family=LxRxP with each family at most once. False with `why`
// saying what is wrong (out untouched).
bool parse_matvec_tuning(std::string_view text, const MatvecTuning &defaults, MatvecTuning &out, std::string &why);

// The rules of the shaders on any device: LANES a power of two from 4 to 256 (the lanes'
// sums meet in a halving tree), ROWS from 1 to 64, at most 1024 invocations a workgroup,
// PER_LANE from 1 to 8 (each row a lane takes holds its own sum and weight loads in
// registers).
// The device's workgroup limits and subgroup size are checked on top
// (VulkanBackend::set_matvec_tuning).
bool check_matvec_shape(const MatvecShape &s, std::string &why);

// check_matvec_shape for each family, the error naming the family.
bool check_matvec_tuning(const MatvecTuning &t, std::string &why);

}  // namespace mst
