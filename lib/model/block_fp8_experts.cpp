#include "model/block_fp8_experts.h"

#include <fmt/format.h>

#include "core/error.h"
#include "model/linear.h"

namespace mst {
namespace {

ExpertMatrix part_of(const TensorInfo &t, uint64_t byte_offset, int64_t rows, int64_t cols) {
    // Block-quantized experts come from a GGUF file's quantized tensors (deepseek2).
    if (!dtype_is_float_weight(t.dtype) && !dtype_is_quantized(t.dtype) && t.dtype != DType::F8_E4M3)
        fail(MST_ERR_UNSUPPORTED, "expert tensor '{}' has dtype {}; experts must be F32, F16, BF16, Q8 or F8_E4M3",
             t.name, dtype_name(t.dtype));
    return ExpertMatrix{t.file_index, t.offset + byte_offset, t.dtype, rows, cols};
}

// Appends matrix `index` of `count` stored in tensor t (rows x cols each), and its
// block scales when t is FP8.
void add_projection(const Checkpoint &ck, const TensorInfo &t, int64_t index, int64_t count, int64_t rows, int64_t cols,
                    Fp8BlockSize block, ExpertLayout &layout) {
    const uint64_t matrix_bytes = uint64_t(rows) * dtype_row_bytes(t.dtype, cols);
    layout.parts.push_back(part_of(t, uint64_t(index) * matrix_bytes, rows, cols));
    if (t.dtype != DType::F8_E4M3) return;
    const TensorInfo &scale = require_fp8_scale(ck, t, count, rows, cols, block);
    const int64_t srows = scale.shape[scale.shape.size() - 2], scols = scale.shape.back();
    const uint64_t scale_bytes = uint64_t(srows * scols) * sizeof(float);
    layout.parts.push_back(part_of(scale, uint64_t(index) * scale_bytes, srows, scols));
    layout.parts.back().quantizable = false;  // scales, not a matrix to multiply
}

}  // namespace

std::vector<ExpertLayout> locate_block_fp8_experts(const Checkpoint &ck, const std::string &prefix, int64_t n_experts,
                                                   int64_t hidden, int64_t inter, Fp8BlockSize block) {
    std::vector<ExpertLayout> layouts(static_cast<size_t>(n_experts));
    if (ck.find(prefix + ".gate_up_proj")) {
        const TensorInfo &gate_up = ck.require(prefix + ".gate_up_proj", {n_experts, 2 * inter, hidden});
        const TensorInfo &down = ck.require(prefix + ".down_proj", {n_experts, hidden, inter});
        for (int64_t e = 0; e < n_experts; ++e) {
            ExpertLayout &layout = layouts[size_t(e)];
            if (gate_up.dtype == DType::F8_E4M3) {
                add_projection(ck, gate_up, e, n_experts, 2 * inter, hidden, block, layout);
            } else {
                // Gate rows first, then up: two matrices of the same tensor.
                const uint64_t es = dtype_size(gate_up.dtype), base = uint64_t(e * 2 * inter * hidden) * es;
                layout.parts.push_back(part_of(gate_up, base, inter, hidden));
                layout.parts.push_back(part_of(gate_up, base + uint64_t(inter * hidden) * es, inter, hidden));
            }
            add_projection(ck, down, e, n_experts, hidden, inter, block, layout);
        }
        return layouts;
    }
    for (int64_t e = 0; e < n_experts; ++e) {
        const std::string base = fmt::format("{}.{}.", prefix, e);
        ExpertLayout &layout = layouts[size_t(e)];
        add_projection(ck, ck.require(base + "gate_proj.weight", {inter, hidden}), 0, 1, inter, hidden, block, layout);
        add_projection(ck, ck.require(base + "up_proj.weight", {inter, hidden}), 0, 1, inter, hidden, block, layout);
        add_projection(ck, ck.require(base + "down_proj.weight", {hidden, inter}), 0, 1, hidden, inter, block, layout);
    }
    return layouts;
}

void check_block_fp8_experts(const std::vector<ExpertLayout> &layouts, int64_t n_experts, int64_t hidden,
                             int64_t inter, Fp8BlockSize block, const std::string &where, int64_t layer) {
    if (int64_t(layouts.size()) != n_experts)
        fail(MST_ERR_BAD_FORMAT, "{}: layer {} has {} experts, the config says {}", where, layer, layouts.size(),
             n_experts);
    for (size_t e = 0; e < layouts.size(); ++e) {
        // The projections in order, each a weight and, for FP8, its scales.
        std::vector<std::pair<const ExpertMatrix *, const ExpertMatrix *>> projections;
        const std::vector<ExpertMatrix> &parts = layouts[e].parts;
        for (size_t i = 0; i < parts.size(); ++i) {
            const ExpertMatrix &w = parts[i];
            if (w.dtype == DType::F8_E4M3) {
                if (i + 1 == parts.size())
                    fail(MST_ERR_BAD_FORMAT, "{}: layer {} expert {}: an FP8 projection without its scales", where,
                         layer, e);
                projections.emplace_back(&w, &parts[++i]);
            } else if (dtype_is_float_weight(w.dtype) || dtype_is_quantized(w.dtype)) {
                projections.emplace_back(&w, nullptr);
            } else {
                fail(MST_ERR_BAD_FORMAT, "{}: layer {} expert {} part {} has dtype {}", where, layer, e, i,
                     dtype_name(w.dtype));
            }
        }
        std::vector<std::pair<int64_t, int64_t>> shapes;
        if (projections.size() == 3) shapes = {{inter, hidden}, {inter, hidden}, {hidden, inter}};
        else if (projections.size() == 2) shapes = {{2 * inter, hidden}, {hidden, inter}};
        else
            fail(MST_ERR_BAD_FORMAT, "{}: layer {} expert {} has {} projections; expected 2 or 3", where, layer, e,
                 projections.size());
        for (size_t p = 0; p < shapes.size(); ++p) {
            const auto [w, scale] = projections[p];
            if (w->rows != shapes[p].first || w->cols != shapes[p].second)
                fail(MST_ERR_BAD_FORMAT, "{}: layer {} expert {} projection {} is [{}, {}], expected [{}, {}]", where,
                     layer, e, p, w->rows, w->cols, shapes[p].first, shapes[p].second);
            if (!scale) continue;
            const int64_t srows = (w->rows + block.rows - 1) / block.rows, scols = (w->cols + block.cols - 1) / block.cols;
            if (!fp8_scale_dtype_ok(scale->dtype) || scale->rows != srows || scale->cols != scols)
                fail(MST_ERR_BAD_FORMAT, "{}: layer {} expert {} projection {} has scales {} [{}, {}], expected F32, "
                     "BF16 or F16 [{}, {}]", where, layer, e, p, dtype_name(scale->dtype), scale->rows, scale->cols,
                     srows, scols);
        }
    }
}

ExpertFn block_fp8_swiglu_expert(Fp8BlockSize block) {
    return [block](Backend &backend, const ExpertWeights &expert, const float *x, int64_t m, float *y) {
        Linear projections[3];
        std::vector<float> widened[3];  // BF16 / F16 scales as F32, which the kernels take
        size_t n = 0;
        for (size_t i = 0; i < expert.parts.size(); ++i) {
            if (n == 3) fail(MST_ERR_INTERNAL, "expert has more than three projections");
            Linear &p = projections[n++];
            p.weight = expert.parts[i];
            if (p.weight.dtype != DType::F8_E4M3) continue;
            if (i + 1 == expert.parts.size()) fail(MST_ERR_INTERNAL, "FP8 expert projection without its scales");
            p.scale_inv = expert.parts[++i];
            p.block = block;
            if (p.scale_inv.dtype != DType::F32) {
                std::vector<float> &f = widened[n - 1];
                f.resize(size_t(p.scale_inv.rows * p.scale_inv.cols));
                convert_to_f32(p.scale_inv.dtype, static_cast<const uint8_t *>(p.scale_inv.data), f.data(), f.size());
                p.scale_inv = WeightView{DType::F32, f.data(), p.scale_inv.rows, p.scale_inv.cols};
            }
        }
        if (n == 3)
            return swiglu_linear(backend, SwigluLinear{projections[0], projections[1], projections[2]}, x, m, y);
        if (n != 2) fail(MST_ERR_INTERNAL, "expert has {} projections; expected 2 or 3", n);
        const int64_t inter = projections[0].weight.rows / 2;
        std::vector<float> gate_up(size_t(m * 2 * inter)), act(size_t(m * inter));
        run_linear(backend, projections[0], x, gate_up.data(), m);
        for (int64_t t = 0; t < m; ++t) {
            const float *row = gate_up.data() + t * 2 * inter;
            backend.silu_mul(row, row + inter, act.data() + t * inter, inter);
        }
        run_linear(backend, projections[1], act.data(), y, m);
    };
}

}  // namespace mst
