#include "model/packed_int_experts.h"

#include <fmt/format.h>

#include "core/error.h"
#include "core/packed_int.h"
#include "model/linear.h"

namespace mst {
namespace {

constexpr const char *kProjections[3] = {"gate_proj", "up_proj", "down_proj"};

// Rows and columns of projection p (gate, up, down) of an expert.
std::pair<int64_t, int64_t> projection_shape(size_t p, int64_t hidden, int64_t inter) {
    return p == 2 ? std::pair{hidden, inter} : std::pair{inter, hidden};
}

ExpertMatrix whole(const TensorInfo &t) {
    return ExpertMatrix{t.file_index, t.offset, t.dtype, t.shape[0], t.shape[1], false};
}

}  // namespace

std::vector<ExpertLayout> locate_packed_int_experts(const Checkpoint &ck, const std::string &prefix, int64_t n_experts,
                                                    int64_t hidden, int64_t inter, const PackedIntScheme &scheme) {
    std::vector<ExpertLayout> layouts(static_cast<size_t>(n_experts));
    for (int64_t e = 0; e < n_experts; ++e) {
        ExpertLayout &layout = layouts[size_t(e)];
        for (size_t p = 0; p < 3; ++p) {
            const auto [rows, cols] = projection_shape(p, hidden, inter);
            const PackedIntTensors t =
                require_packed_int(ck, fmt::format("{}.{}.{}", prefix, e, kProjections[p]), rows, cols, scheme);
            layout.parts.push_back(whole(*t.packed));
            layout.parts.push_back(whole(*t.scale));
        }
    }
    return layouts;
}

bool layouts_are_packed_int(const std::vector<ExpertLayout> &layouts) {
    return !layouts.empty() && !layouts[0].parts.empty() && layouts[0].parts[0].dtype == DType::I32;
}

void check_packed_int_experts(const std::vector<ExpertLayout> &layouts, int64_t n_experts, int64_t hidden,
                              int64_t inter, const PackedIntScheme &scheme, const std::string &where, int64_t layer) {
    if (int64_t(layouts.size()) != n_experts)
        fail(MST_ERR_BAD_FORMAT, "{}: layer {} has {} experts, the config says {}", where, layer, layouts.size(),
             n_experts);
    for (size_t e = 0; e < layouts.size(); ++e) {
        const std::vector<ExpertMatrix> &parts = layouts[e].parts;
        if (parts.size() != 6)
            fail(MST_ERR_BAD_FORMAT, "{}: layer {} expert {} has {} parts; INT{} experts have 6", where, layer, e,
                 parts.size(), scheme.bits);
        for (size_t p = 0; p < 3; ++p) {
            const auto [rows, cols] = projection_shape(p, hidden, inter);
            const int64_t group = scheme.group_for(cols);
            if (cols % group != 0)
                fail(MST_ERR_BAD_FORMAT, "{}: layer {} expert {} {}: group size {} does not divide {} inputs", where,
                     layer, e, kProjections[p], group, cols);
            const ExpertMatrix &w = parts[2 * p], &s = parts[2 * p + 1];
            const int64_t words = packed_int_row_words(cols, scheme.bits);
            if (w.dtype != DType::I32 || w.rows != rows || w.cols != words)
                fail(MST_ERR_BAD_FORMAT, "{}: layer {} expert {} {} words are {} [{}, {}], expected I32 [{}, {}]", where,
                     layer, e, kProjections[p], dtype_name(w.dtype), w.rows, w.cols, rows, words);
            if (s.dtype != DType::BF16 || s.rows != rows || s.cols != cols / group)
                fail(MST_ERR_BAD_FORMAT, "{}: layer {} expert {} {} scales are {} [{}, {}], expected BF16 [{}, {}]",
                     where, layer, e, kProjections[p], dtype_name(s.dtype), s.rows, s.cols, rows, cols / group);
        }
    }
}

ExpertFn packed_int_swiglu_expert(const PackedIntScheme &scheme, int64_t hidden, int64_t inter) {
    const DType type = scheme.bits == 4 ? DType::PACKED_I4 : DType::PACKED_I8;
    return [type, scheme, hidden, inter](Backend &backend, const ExpertWeights &expert, const float *x, int64_t m,
                                         float *y) {
        if (expert.parts.size() != 6)
            fail(MST_ERR_INTERNAL, "INT expert has {} parts; expected 6", expert.parts.size());
        Linear projections[3];
        for (size_t p = 0; p < 3; ++p) {
            const auto [rows, cols] = projection_shape(p, hidden, inter);
            const WeightView &words = expert.parts[2 * p], &scales = expert.parts[2 * p + 1];
            WeightView &w = projections[p].weight;
            w = WeightView{type, words.data, rows, cols};
            w.scales = static_cast<const uint8_t *>(scales.data);
            w.group_size = scheme.group_for(cols);
            // The words' key names the pair: both belong to one expert and never change.
            w.expert_key = words.expert_key;
            w.stable = words.stable;
        }
        swiglu_linear(backend, SwigluLinear{projections[0], projections[1], projections[2]}, x, m, y);
    };
}

}  // namespace mst
