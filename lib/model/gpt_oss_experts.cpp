#include "model/gpt_oss_experts.h"

#include "core/error.h"
#include "core/mxfp4.h"

namespace mst {
namespace {

// Part order of each format.
namespace float_part {
constexpr size_t kGateUp = 0, kGateUpBias = 1, kDown = 2, kDownBias = 3;
}
namespace mxfp4_part {
constexpr size_t kGateUpBlocks = 0, kGateUpScales = 1, kGateUpBias = 2, kDownBlocks = 3, kDownScales = 4,
                 kDownBias = 5;
}

// Expert e's slice of a per-layer tensor whose leading dimension is the expert, viewed
// as [rows][cols] elements of its dtype.
ExpertMatrix slice(const TensorInfo &t, int64_t e, int64_t rows, int64_t cols) {
    const uint64_t bytes = uint64_t(rows) * uint64_t(cols) * dtype_size(t.dtype);
    return ExpertMatrix{t.file_index, t.offset + uint64_t(e) * bytes, t.dtype, rows, cols};
}

const TensorInfo &require_float(const Checkpoint &ck, const std::string &name, std::initializer_list<int64_t> shape) {
    const TensorInfo &t = ck.require(name, shape);
    if (!dtype_is_float_weight(t.dtype))
        fail(MST_ERR_UNSUPPORTED, "expert tensor '{}' has dtype {}; expected F32, F16 or BF16", name,
             dtype_name(t.dtype));
    return t;
}

const TensorInfo &require_u8(const Checkpoint &ck, const std::string &name, std::initializer_list<int64_t> shape) {
    const TensorInfo &t = ck.require(name, shape);
    if (t.dtype != DType::U8)
        fail(MST_ERR_BAD_FORMAT, "MXFP4 tensor '{}' has dtype {}; expected U8", name, dtype_name(t.dtype));
    return t;
}

void add_bias(const WeightView &bias, float *y, int64_t m) {
    std::vector<float> b(size_t(bias.cols));
    convert_to_f32(bias.dtype, bias.data, b.data(), b.size());
    for (int64_t t = 0; t < m; ++t)
        for (size_t c = 0; c < b.size(); ++c) y[size_t(t) * b.size() + c] += b[c];
}

void float_expert(Backend &backend, const ExpertWeights &e, const float *x, int64_t m, float *y, float alpha,
                  float limit) {
    const WeightView &gate_up = e.parts[float_part::kGateUp];  // [H][2I]
    const int64_t inter = gate_up.cols / 2;
    std::vector<float> gu(size_t(m * 2 * inter)), act(size_t(m * inter));
    backend.matmul_xw(gate_up, x, gu.data(), m);
    add_bias(e.parts[float_part::kGateUpBias], gu.data(), m);
    backend.clamped_swiglu(gu.data(), act.data(), m, inter, alpha, limit);
    backend.matmul_xw(e.parts[float_part::kDown], act.data(), y, m);
    add_bias(e.parts[float_part::kDownBias], y, m);
}

// The stored parts are bytes: blocks [rows][cols / 2], scales [rows][cols / 32].
WeightView mxfp4_view(const WeightView &blocks, const WeightView &scales) {
    WeightView w{DType::MXFP4, blocks.data, blocks.rows, blocks.cols * 2};
    w.scales = static_cast<const uint8_t *>(scales.data);
    return w;
}

void mxfp4_expert(Backend &backend, const ExpertWeights &e, const float *x, int64_t m, float *y, float alpha,
                  float limit) {
    using namespace mxfp4_part;
    const WeightView gate_up = mxfp4_view(e.parts[kGateUpBlocks], e.parts[kGateUpScales]);  // [2I][H]
    const WeightView down = mxfp4_view(e.parts[kDownBlocks], e.parts[kDownScales]);          // [H][I]
    const int64_t inter = gate_up.rows / 2;
    std::vector<float> gu(size_t(m * 2 * inter)), act(size_t(m * inter));
    backend.matmul(gate_up, x, gu.data(), m);
    add_bias(e.parts[kGateUpBias], gu.data(), m);
    backend.clamped_swiglu(gu.data(), act.data(), m, inter, alpha, limit);
    backend.matmul(down, act.data(), y, m);
    add_bias(e.parts[kDownBias], y, m);
}

}  // namespace

GptOssExperts locate_gpt_oss_experts(const Checkpoint &ck, const std::string &prefix, int64_t n_experts,
                                     int64_t hidden, int64_t inter) {
    const int64_t E = n_experts, H = hidden, I = inter;
    GptOssExperts out;
    out.layouts.resize(size_t(E));
    const TensorInfo &gu_bias = require_float(ck, prefix + ".gate_up_proj_bias", {E, 2 * I});
    const TensorInfo &down_bias = require_float(ck, prefix + ".down_proj_bias", {E, H});

    if (ck.find(prefix + ".gate_up_proj_blocks")) {
        out.format = GptOssExpertFormat::Mxfp4;
        if (H % kMxfp4BlockSize != 0 || I % kMxfp4BlockSize != 0)
            fail(MST_ERR_BAD_FORMAT, "'{}': MXFP4 experts need hidden size {} and intermediate size {} divisible by {}",
                 prefix, H, I, kMxfp4BlockSize);
        const int64_t hb = H / kMxfp4BlockSize, ib = I / kMxfp4BlockSize;
        const TensorInfo &gu_blocks = require_u8(ck, prefix + ".gate_up_proj_blocks", {E, 2 * I, hb, kMxfp4BlockBytes});
        const TensorInfo &gu_scales = require_u8(ck, prefix + ".gate_up_proj_scales", {E, 2 * I, hb});
        const TensorInfo &d_blocks = require_u8(ck, prefix + ".down_proj_blocks", {E, H, ib, kMxfp4BlockBytes});
        const TensorInfo &d_scales = require_u8(ck, prefix + ".down_proj_scales", {E, H, ib});
        for (int64_t e = 0; e < E; ++e)
            out.layouts[size_t(e)].parts = {slice(gu_blocks, e, 2 * I, mxfp4_row_bytes(H)),
                                            slice(gu_scales, e, 2 * I, hb),
                                            slice(gu_bias, e, 1, 2 * I),
                                            slice(d_blocks, e, H, mxfp4_row_bytes(I)),
                                            slice(d_scales, e, H, ib),
                                            slice(down_bias, e, 1, H)};
        return out;
    }
    const TensorInfo &gate_up = require_float(ck, prefix + ".gate_up_proj", {E, H, 2 * I});
    const TensorInfo &down = require_float(ck, prefix + ".down_proj", {E, I, H});
    for (int64_t e = 0; e < E; ++e)
        out.layouts[size_t(e)].parts = {slice(gate_up, e, H, 2 * I), slice(gu_bias, e, 1, 2 * I),
                                        slice(down, e, I, H), slice(down_bias, e, 1, H)};
    return out;
}

ExpertFn gpt_oss_expert_fn(GptOssExpertFormat format, float alpha, float limit) {
    if (format == GptOssExpertFormat::Mxfp4)
        return [alpha, limit](Backend &b, const ExpertWeights &e, const float *x, int64_t m, float *y) {
            mxfp4_expert(b, e, x, m, y, alpha, limit);
        };
    return [alpha, limit](Backend &b, const ExpertWeights &e, const float *x, int64_t m, float *y) {
        float_expert(b, e, x, m, y, alpha, limit);
    };
}

}  // namespace mst
