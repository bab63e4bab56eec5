#include "model/gpt_oss_experts.h"

#include "core/error.h"
#include "core/mxfp4.h"

namespace mst {
namespace {

// Part order of each format.
namespace float_part {
constexpr size_t kGateUp = 0, kGateUpBias = 1, kDown = 2, kDownBias = 3;
}
namespace split_part {
constexpr size_t kGate = 0, kGateBias = 1, kUp = 2, kUpBias = 3, kDown = 4, kDownBias = 5;
}
namespace mxfp4_part {
constexpr size_t kGateUpBlocks = 0, kGateUpScales = 1, kGateUpBias = 2, kDownBlocks = 3, kDownScales = 4,
                 kDownBias = 5;
}

// Expert e's slice of a per-layer tensor whose leading dimension is the expert, viewed
// as [rows][cols] elements of its dtype. None is quantizable: the float matrices are
// multiplied transposed (matmul_xw), biases are read as floats, MXFP4 is quantized already.
ExpertMatrix slice(const TensorInfo &t, int64_t e, int64_t rows, int64_t cols) {
    const uint64_t bytes = uint64_t(rows) * uint64_t(cols) * dtype_size(t.dtype);
    return ExpertMatrix{t.file_index, t.offset + uint64_t(e) * bytes, t.dtype, rows, cols, false};
}

enum class PartKind { Float, U8, Matrix };  // a float type; MXFP4 blocks or scales; float or Q8

struct PartSpec {
    const char *name;
    int64_t rows, cols;
    PartKind kind;
};

bool kind_accepts(PartKind kind, DType t) {
    switch (kind) {
        case PartKind::Float: return dtype_is_float_weight(t);
        case PartKind::U8: return t == DType::U8;
        case PartKind::Matrix: return dtype_is_float_weight(t) || dtype_is_quantized(t);
    }
    return false;
}

const char *kind_name(PartKind kind) {
    switch (kind) {
        case PartKind::Float: return "F32, F16 or BF16";
        case PartKind::U8: return "U8";
        case PartKind::Matrix: return "F32, F16, BF16 or Q8";
    }
    return "";
}

void check_parts(const ExpertLayout &layout, const std::vector<PartSpec> &spec, const std::string &where,
                 int64_t layer, size_t expert) {
    for (size_t p = 0; p < spec.size(); ++p) {
        const ExpertMatrix &m = layout.parts[p];
        if (m.rows != spec[p].rows || m.cols != spec[p].cols)
            fail(MST_ERR_BAD_FORMAT, "{}: layer {} expert {} {} is [{}, {}], expected [{}, {}]", where, layer, expert,
                 spec[p].name, m.rows, m.cols, spec[p].rows, spec[p].cols);
        if (!kind_accepts(spec[p].kind, m.dtype))
            fail(MST_ERR_BAD_FORMAT, "{}: layer {} expert {} {} has dtype {}, expected {}", where, layer, expert,
                 spec[p].name, dtype_name(m.dtype), kind_name(spec[p].kind));
    }
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
    w.expert_key = blocks.expert_key;  // the blocks' key names the pair: both belong to one expert
    return w;
}

// The split form: gate and up computed apart, then interleaved (gate_i, up_i at 2i,
// 2i + 1) as the clamped SwiGLU reads them.
void split_expert(Backend &backend, const ExpertWeights &e, const float *x, int64_t m, float *y, float alpha,
                  float limit) {
    using namespace split_part;
    const int64_t inter = e.parts[kGate].rows;
    std::vector<float> gate(size_t(m * inter)), up(size_t(m * inter)), gu(size_t(m * 2 * inter)),
        act(size_t(m * inter));
    backend.matmul(e.parts[kGate], x, gate.data(), m);
    add_bias(e.parts[kGateBias], gate.data(), m);
    backend.matmul(e.parts[kUp], x, up.data(), m);
    add_bias(e.parts[kUpBias], up.data(), m);
    for (size_t i = 0; i < gate.size(); ++i) {
        gu[2 * i] = gate[i];
        gu[2 * i + 1] = up[i];
    }
    backend.clamped_swiglu(gu.data(), act.data(), m, inter, alpha, limit);
    backend.matmul(e.parts[kDown], act.data(), y, m);
    add_bias(e.parts[kDownBias], y, m);
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
    // The published forms first: a synthesized checkpoint answers every name.
    if (!ck.find(prefix + ".gate_up_proj_blocks") && !ck.find(prefix + ".gate_up_proj") &&
        ck.find(prefix + ".0.gate_proj.weight")) {
        out.format = GptOssExpertFormat::SplitGateUp;
        for (int64_t e = 0; e < E; ++e) {
            const std::string base = prefix + "." + std::to_string(e) + ".";
            const auto matrix = [&](const char *name, int64_t rows, int64_t cols) {
                const TensorInfo &t = ck.require(base + name, {rows, cols});
                return ExpertMatrix{t.file_index, t.offset, t.dtype, rows, cols};
            };
            const auto bias = [&](const char *name, int64_t n) {
                const TensorInfo &t = require_float(ck, base + name, {n});
                return ExpertMatrix{t.file_index, t.offset, t.dtype, 1, n, false};
            };
            out.layouts[size_t(e)].parts = {matrix("gate_proj.weight", I, H), bias("gate_proj.bias", I),
                                            matrix("up_proj.weight", I, H),   bias("up_proj.bias", I),
                                            matrix("down_proj.weight", H, I), bias("down_proj.bias", H)};
        }
        return out;
    }
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

GptOssExpertFormat check_gpt_oss_experts(const std::vector<ExpertLayout> &layouts, int64_t n_experts, int64_t hidden,
                                         int64_t inter, const std::string &where, int64_t layer) {
    const int64_t H = hidden, I = inter;
    if (int64_t(layouts.size()) != n_experts)
        fail(MST_ERR_BAD_FORMAT, "{}: layer {} has {} experts, the config says {}", where, layer, layouts.size(),
             n_experts);
    const size_t n_parts = layouts.empty() ? 0 : layouts[0].parts.size();
    if (n_parts != 4 && n_parts != 6)
        fail(MST_ERR_BAD_FORMAT,
             "{}: layer {} experts have {} parts; gpt_oss experts have 4 (float) or 6 (MXFP4 or split gate/up)", where,
             layer, n_parts);
    const GptOssExpertFormat format = n_parts == 4                              ? GptOssExpertFormat::Float
                                      : layouts[0].parts[0].dtype == DType::U8 ? GptOssExpertFormat::Mxfp4
                                                                                : GptOssExpertFormat::SplitGateUp;
    std::vector<PartSpec> spec;
    constexpr PartKind F = PartKind::Float, U = PartKind::U8, M = PartKind::Matrix;
    if (format == GptOssExpertFormat::Float) {
        spec = {{"gate_up_proj", H, 2 * I, F}, {"gate_up_proj_bias", 1, 2 * I, F},
                {"down_proj", I, H, F},        {"down_proj_bias", 1, H, F}};
    } else if (format == GptOssExpertFormat::SplitGateUp) {
        spec = {{"gate_proj", I, H, M}, {"gate_proj_bias", 1, I, F}, {"up_proj", I, H, M},
                {"up_proj_bias", 1, I, F}, {"down_proj", H, I, M},   {"down_proj_bias", 1, H, F}};
    } else {
        if (H % kMxfp4BlockSize != 0 || I % kMxfp4BlockSize != 0)
            fail(MST_ERR_BAD_FORMAT, "{}: MXFP4 experts need hidden size {} and intermediate size {} divisible by {}",
                 where, H, I, kMxfp4BlockSize);
        spec = {{"gate_up_proj_blocks", 2 * I, mxfp4_row_bytes(H), U},
                {"gate_up_proj_scales", 2 * I, H / kMxfp4BlockSize, U},
                {"gate_up_proj_bias", 1, 2 * I, F},
                {"down_proj_blocks", H, mxfp4_row_bytes(I), U},
                {"down_proj_scales", H, I / kMxfp4BlockSize, U},
                {"down_proj_bias", 1, H, F}};
    }
    for (size_t e = 0; e < layouts.size(); ++e) {
        if (layouts[e].parts.size() != n_parts)
            fail(MST_ERR_BAD_FORMAT, "{}: layer {} expert {} has {} parts, expert 0 has {}", where, layer, e,
                 layouts[e].parts.size(), n_parts);
        check_parts(layouts[e], spec, where, layer, e);
    }
    return format;
}

ExpertFn gpt_oss_expert_fn(GptOssExpertFormat format, float alpha, float limit) {
    if (format == GptOssExpertFormat::Mxfp4)
        return [alpha, limit](Backend &b, const ExpertWeights &e, const float *x, int64_t m, float *y) {
            mxfp4_expert(b, e, x, m, y, alpha, limit);
        };
    if (format == GptOssExpertFormat::SplitGateUp)
        return [alpha, limit](Backend &b, const ExpertWeights &e, const float *x, int64_t m, float *y) {
            split_expert(b, e, x, m, y, alpha, limit);
        };
    return [alpha, limit](Backend &b, const ExpertWeights &e, const float *x, int64_t m, float *y) {
        float_expert(b, e, x, m, y, alpha, limit);
    };
}

}  // namespace mst
