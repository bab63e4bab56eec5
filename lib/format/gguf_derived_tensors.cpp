#include "format/gguf_derived_tensors.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/error.h"
#include "format/gguf_file.h"
#include "format/gguf_names.h"

namespace mst {
namespace {

float log_of_negated(float a) { return std::log(-a); }  // ssm_a = -exp(A_log)
float minus_one(float w) { return w - 1.0f; }            // stored 1 + w

// The order that reads tiled value heads back grouped by key head; identity elsewhere.
std::vector<int64_t> grouped_from_tiled(int64_t n_rows, int64_t offset, int64_t n_k_heads, int64_t r,
                                        int64_t head_size) {
    return inverse_order(tiled_from_grouped(n_rows, offset, n_k_heads, r, head_size));
}

// Qwen3-Next's in_proj_qkvz groups its rows per key head g, [q_g | k_g | v_g | z_g];
// llama.cpp stores attn_qkv [all q | all k | all v] and attn_gate [all z]. Each layer
// with the two and without in_proj_qkvz gets it back, rows gathered from the pair.
void add_qwen3next_qkvz(const std::vector<TensorInfo> &table, int64_t n_k_heads, int64_t r, int64_t k_dim,
                        int64_t v_dim, std::map<std::string, GgufDerivedTensor, std::less<>> &out) {
    static constexpr std::string_view kQkv = "linear_attn.in_proj_qkv.weight";
    const auto has = [&](const std::string &name) {
        return std::any_of(table.begin(), table.end(), [&](const TensorInfo &t) { return t.name == name; });
    };
    for (const TensorInfo &t : table) {
        if (!std::string_view(t.name).ends_with(kQkv)) continue;
        const std::string layer = t.name.substr(0, t.name.size() - kQkv.size());
        const std::string z = layer + "linear_attn.in_proj_z.weight", qkvz = layer + "linear_attn.in_proj_qkvz.weight";
        if (!has(z) || has(qkvz) || t.shape.size() != 2) continue;
        const int64_t rv = r * v_dim, qk = n_k_heads * k_dim, v_rows = n_k_heads * rv;
        GgufDerivedTensor d;
        d.source = t.name;
        d.appended = z;
        d.shape = {2 * qk + 2 * v_rows, t.shape[1]};
        // Rows of the pair, stacked: q at 0, k at qk, v at 2 qk, z at 2 qk + v_rows.
        for (int64_t g = 0; g < n_k_heads; ++g) {
            for (int64_t i = 0; i < k_dim; ++i) d.row_order.push_back(g * k_dim + i);
            for (int64_t i = 0; i < k_dim; ++i) d.row_order.push_back(qk + g * k_dim + i);
            for (int64_t i = 0; i < rv; ++i) d.row_order.push_back(2 * qk + g * rv + i);
            for (int64_t i = 0; i < rv; ++i) d.row_order.push_back(2 * qk + v_rows + g * rv + i);
        }
        out[qkvz] = std::move(d);
    }
}

}  // namespace

std::vector<int64_t> tiled_from_grouped(int64_t n_rows, int64_t offset, int64_t n_k_heads, int64_t r,
                                        int64_t head_size) {
    std::vector<int64_t> order(static_cast<size_t>(n_rows));
    for (int64_t i = 0; i < n_rows; ++i) order[size_t(i)] = i;
    for (int64_t g = 0; g < n_k_heads; ++g)
        for (int64_t i = 0; i < r; ++i)
            for (int64_t e = 0; e < head_size; ++e)
                order[size_t(offset + (i * n_k_heads + g) * head_size + e)] = offset + (g * r + i) * head_size + e;
    return order;
}

std::vector<int64_t> inverse_order(const std::vector<int64_t> &order) {
    std::vector<int64_t> inverse(order.size());
    for (size_t i = 0; i < order.size(); ++i) inverse[size_t(order[i])] = int64_t(i);
    return inverse;
}

void gather_rows_and_columns(const GgufDerivedTensor &d, const uint8_t *src, int64_t rows, size_t row_bytes,
                             DType dtype, uint8_t *dst) {
    const int64_t out_rows = d.row_order.empty() ? rows : int64_t(d.row_order.size());
    const size_t group_bytes = d.column_order.empty() ? 0 : size_t(dtype_row_bytes(dtype, d.column_group));
    for (int64_t i = 0; i < out_rows; ++i) {
        const uint8_t *from = src + size_t(d.row_order.empty() ? i : d.row_order[size_t(i)]) * row_bytes;
        uint8_t *row = dst + size_t(i) * row_bytes;
        if (d.column_order.empty()) {
            std::memcpy(row, from, row_bytes);
            continue;
        }
        for (size_t j = 0; j < d.column_order.size(); ++j)
            std::memcpy(row + j * group_bytes, from + size_t(d.column_order[j]) * group_bytes, group_bytes);
    }
}

void gather_rows_and_columns(const GgufDerivedTensor &d, const float *src, int64_t rows, int64_t cols, float *dst) {
    const int64_t out_rows = d.row_order.empty() ? rows : int64_t(d.row_order.size());
    for (int64_t i = 0; i < out_rows; ++i) {
        const float *from = src + size_t((d.row_order.empty() ? i : d.row_order[size_t(i)]) * cols);
        float *row = dst + size_t(i * cols);
        if (d.column_order.empty()) {
            std::copy_n(from, size_t(cols), row);
        } else {
            for (size_t j = 0; j < d.column_order.size(); ++j)
                std::copy_n(from + size_t(d.column_order[j] * d.column_group), size_t(d.column_group),
                            row + j * size_t(d.column_group));
        }
        if (d.value)
            for (int64_t c = 0; c < cols; ++c) row[c] = d.value(row[c]);
    }
}

DType derived_dtype(const GgufDerivedTensor &d, const TensorInfo &stored, const TensorInfo *appended) {
    if (d.value || (appended && appended->dtype != stored.dtype)) return DType::F32;
    if (!d.column_order.empty() && d.column_group % int64_t(dtype_block_elems(stored.dtype)) != 0) return DType::F32;
    return stored.dtype;
}

uint64_t derived_bytes(const GgufDerivedTensor &d, const TensorInfo &stored, const TensorInfo *appended) {
    const DType t = derived_dtype(d, stored, appended);
    if (t == stored.dtype && !d.value) return stored.nbytes + (appended ? appended->nbytes : 0);
    // The derived shape holds as many elements as the stored tensors.
    return uint64_t(stored.numel() + (appended ? appended->numel() : 0)) * dtype_size(t);
}

std::map<std::string, GgufDerivedTensor, std::less<>> qwen_hybrid_derived_tensors(
    const GgufFile &g, const GgufArchitecture &arch, const std::vector<TensorInfo> &table) {
    const std::string p = arch.gguf_name + ".";
    const auto positive = [&](const std::string &key) {
        const uint64_t v = g.require_uint(key);
        if (v == 0 || v > (uint64_t(1) << 24))
            fail(MST_ERR_BAD_FORMAT, "{}: metadata '{}' is {}, out of range", g.path, key, v);
        return int64_t(v);
    };
    const int64_t n_k_heads = positive(p + "ssm.group_count"), n_v_heads = positive(p + "ssm.time_step_rank");
    const int64_t k_dim = positive(p + "ssm.state_size"), value_dim = positive(p + "ssm.inner_size");
    if (n_v_heads % n_k_heads != 0 || value_dim % n_v_heads != 0)
        fail(MST_ERR_BAD_FORMAT, "{}: {}ssm.time_step_rank {} (value heads) is not a multiple of {}ssm.group_count {}, "
             "or {}ssm.inner_size {} not of it", g.path, p, n_v_heads, p, n_k_heads, p, value_dim);
    const int64_t r = n_v_heads / n_k_heads, v_dim = value_dim / n_v_heads, qk_rows = 2 * n_k_heads * k_dim;
    // Only Qwen3.5's converter reorders the value heads, and only when they outnumber the key heads.
    const bool tiled = arch.gguf_name == "qwen35moe" && r > 1;

    std::map<std::string, GgufDerivedTensor, std::less<>> out;
    for (const TensorInfo &t : table) {
        const std::string &n = t.name;
        const auto ends = [&](std::string_view suffix) { return std::string_view(n).ends_with(suffix); };
        const auto rows = [&] { return t.shape.empty() ? 1 : t.shape.front(); };
        GgufDerivedTensor d;
        d.source = n;
        d.shape = t.shape;
        if (ends("linear_attn.A_log")) {
            d.value = log_of_negated;
            if (tiled) d.row_order = grouped_from_tiled(rows(), 0, n_k_heads, r, 1);
        } else if (ends("linear_attn.dt_bias") || ends("linear_attn.in_proj_a.weight") ||
                   ends("linear_attn.in_proj_b.weight")) {
            if (!tiled) continue;
            d.row_order = grouped_from_tiled(rows(), 0, n_k_heads, r, 1);
        } else if (ends("linear_attn.in_proj_z.weight")) {
            if (!tiled) continue;
            d.row_order = grouped_from_tiled(rows(), 0, n_k_heads, r, v_dim);
        } else if (ends("linear_attn.in_proj_qkv.weight")) {
            if (!tiled) continue;
            if (rows() != qk_rows + value_dim)
                fail(MST_ERR_BAD_FORMAT, "{}: tensor '{}' has {} rows, the ssm.* metadata says {}", g.path, n, rows(),
                     qk_rows + value_dim);
            d.row_order = grouped_from_tiled(rows(), qk_rows, n_k_heads, r, v_dim);
        } else if (ends("linear_attn.conv1d.weight")) {
            if (t.shape.size() != 2 || t.shape[0] != qk_rows + value_dim)
                fail(MST_ERR_BAD_FORMAT, "{}: tensor '{}' has shape {}, expected [{}, kernel]", g.path, n,
                     shape_to_string(t.shape), qk_rows + value_dim);
            d.shape = {t.shape[0], 1, t.shape[1]};  // transformers' Conv1d weight [channels, 1, kernel]
            if (tiled) d.row_order = grouped_from_tiled(t.shape[0], qk_rows, n_k_heads, r, v_dim);
        } else if (ends("linear_attn.out_proj.weight")) {
            if (!tiled) continue;
            if (t.shape.size() != 2 || t.shape[1] != value_dim)
                fail(MST_ERR_BAD_FORMAT, "{}: tensor '{}' has shape {}, expected [hidden, {}]", g.path, n,
                     shape_to_string(t.shape), value_dim);
            d.column_group = v_dim;
            d.column_order = grouped_from_tiled(n_v_heads, 0, n_k_heads, r, 1);
        } else if (ends("mlp.shared_expert_gate.weight")) {
            if (t.shape.size() != 1) continue;
            d.shape = {1, t.shape[0]};
        } else if (ends("norm.weight") && !ends("linear_attn.norm.weight")) {
            d.value = minus_one;
        } else {
            continue;
        }
        out[n] = std::move(d);
    }
    if (arch.gguf_name == "qwen3next") add_qwen3next_qkvz(table, n_k_heads, r, k_dim, v_dim, out);
    return out;
}

}  // namespace mst
