#include "model/expert_tensors.h"

#include <fmt/format.h>

#include "core/error.h"

namespace mst {
namespace {

ExpertMatrix matrix_of(const TensorInfo &t, uint64_t byte_offset, int64_t rows, int64_t cols) {
    // Q8 / Q4 / GGML_* come only from GGUF (or packed) files; safetensors has no such dtype.
    if (!dtype_is_float_weight(t.dtype) && !dtype_is_quantized(t.dtype))
        fail(MST_ERR_UNSUPPORTED, "expert tensor '{}' has dtype {}; experts must be F32, F16, BF16 or block-quantized", t.name,
             dtype_name(t.dtype));
    return ExpertMatrix{t.file_index, t.offset + byte_offset, t.dtype, rows, cols};
}

std::vector<ExpertLayout> locate_fused(const Checkpoint &ck, const std::string &prefix, int64_t n_experts,
                                       int64_t hidden, int64_t inter) {
    const TensorInfo &gate_up = ck.require(prefix + ".gate_up_proj", {n_experts, 2 * inter, hidden});
    const TensorInfo &down = ck.require(prefix + ".down_proj", {n_experts, hidden, inter});
    const uint64_t gu_es = dtype_size(gate_up.dtype), d_es = dtype_size(down.dtype);
    std::vector<ExpertLayout> layouts(static_cast<size_t>(n_experts));
    for (int64_t e = 0; e < n_experts; ++e) {
        const uint64_t gu_base = uint64_t(e) * uint64_t(2 * inter * hidden) * gu_es;
        layouts[size_t(e)].parts = {
            matrix_of(gate_up, gu_base, inter, hidden),
            matrix_of(gate_up, gu_base + uint64_t(inter * hidden) * gu_es, inter, hidden),
            matrix_of(down, uint64_t(e) * uint64_t(hidden * inter) * d_es, hidden, inter)};
    }
    return layouts;
}

}  // namespace

std::vector<ExpertLayout> locate_experts(const Checkpoint &ck, const std::string &prefix, int64_t n_experts,
                                         int64_t hidden, int64_t inter, const ExpertTensorNames &names) {
    if (ck.find(prefix + ".gate_up_proj")) return locate_fused(ck, prefix, n_experts, hidden, inter);
    std::vector<ExpertLayout> layouts(static_cast<size_t>(n_experts));
    for (int64_t e = 0; e < n_experts; ++e) {
        const std::string base = fmt::format("{}.{}.", prefix, e);
        const TensorInfo &gate = ck.require(base + names.gate + ".weight", {inter, hidden});
        const TensorInfo &up = ck.require(base + names.up + ".weight", {inter, hidden});
        const TensorInfo &down = ck.require(base + names.down + ".weight", {hidden, inter});
        layouts[size_t(e)].parts = {matrix_of(gate, 0, inter, hidden), matrix_of(up, 0, inter, hidden),
                                    matrix_of(down, 0, hidden, inter)};
    }
    return layouts;
}

void check_swiglu_experts(const std::vector<ExpertLayout> &layouts, int64_t n_experts, int64_t hidden,
                          int64_t inter, const std::string &where, int64_t layer) {
    if (int64_t(layouts.size()) != n_experts)
        fail(MST_ERR_BAD_FORMAT, "{}: layer {} has {} experts, the config says {}", where, layer, layouts.size(),
             n_experts);
    static constexpr const char *kNames[] = {"gate", "up", "down"};
    for (size_t e = 0; e < layouts.size(); ++e) {
        const std::vector<ExpertMatrix> &parts = layouts[e].parts;
        if (parts.size() != 3)
            fail(MST_ERR_BAD_FORMAT, "{}: layer {} expert {} has {} parts, a SwiGLU expert has 3", where, layer, e,
                 parts.size());
        const int64_t shapes[3][2] = {{inter, hidden}, {inter, hidden}, {hidden, inter}};
        for (size_t p = 0; p < 3; ++p) {
            const ExpertMatrix &m = parts[p];
            if (m.rows != shapes[p][0] || m.cols != shapes[p][1])
                fail(MST_ERR_BAD_FORMAT, "{}: layer {} expert {} {} is [{}, {}], expected [{}, {}]", where, layer, e,
                     kNames[p], m.rows, m.cols, shapes[p][0], shapes[p][1]);
            if (!dtype_is_float_weight(m.dtype) && !dtype_is_quantized(m.dtype))
                fail(MST_ERR_UNSUPPORTED, "{}: layer {} expert {} {} has dtype {}, which the matmul does not take",
                     where, layer, e, kNames[p], dtype_name(m.dtype));
        }
    }
}

}  // namespace mst
