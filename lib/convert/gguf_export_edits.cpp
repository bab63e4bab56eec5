#include "convert/gguf_export_edits.h"

#include <cmath>
#include <string_view>

#include "core/error.h"

namespace mst {
namespace {

float negated_exp(float a_log) { return -std::exp(a_log); }  // llama.cpp's ssm_a
float plus_one(float w) { return 1.0f + w; }                 // its RMSNorm weights

int64_t positive(const nlohmann::json &config, const char *key) {
    const nlohmann::json v = config.value(key, nlohmann::json());
    if (!v.is_number_integer() || v.get<int64_t>() <= 0)
        fail(MST_ERR_BAD_FORMAT, "config.json's '{}' is missing or not a positive integer, which GGUF needs", key);
    return v.get<int64_t>();
}

GgufExportEdit qwen35moe_edit(const TensorInfo &t, const nlohmann::json &config) {
    const int64_t n_k = positive(config, "linear_num_key_heads"), n_v = positive(config, "linear_num_value_heads");
    const int64_t k_dim = positive(config, "linear_key_head_dim"), v_dim = positive(config, "linear_value_head_dim");
    if (n_v % n_k != 0)
        fail(MST_ERR_BAD_FORMAT, "config.json's linear_num_value_heads {} is not a multiple of linear_num_key_heads {}",
             n_v, n_k);
    const int64_t r = n_v / n_k, qk_rows = 2 * n_k * k_dim, value_dim = n_v * v_dim;
    const bool tiled = r > 1;  // _LinearAttentionVReorderBase reorders only then
    const int64_t rows = t.shape.empty() ? 1 : t.shape.front();
    const auto ends = [&](std::string_view suffix) { return std::string_view(t.name).ends_with(suffix); };
    const auto expect_rows = [&](int64_t want) {
        if (rows != want)
            fail(MST_ERR_BAD_FORMAT, "tensor '{}' has {} rows where config.json's linear_* sizes make {}", t.name, rows,
                 want);
    };
    GgufExportEdit e;
    e.how.source = t.name;
    e.how.shape = t.shape;
    e.to_f32 = t.shape.size() < 2;
    if (ends("linear_attn.A_log")) {
        e.how.value = negated_exp;
        e.to_f32 = true;
        if (tiled) e.how.row_order = tiled_from_grouped(rows, 0, n_k, r, 1);
    } else if (ends("linear_attn.dt_bias") || ends("linear_attn.in_proj_a.weight") ||
               ends("linear_attn.in_proj_b.weight")) {
        if (tiled) e.how.row_order = tiled_from_grouped(rows, 0, n_k, r, 1);
    } else if (ends("linear_attn.in_proj_z.weight")) {
        expect_rows(value_dim);
        if (tiled) e.how.row_order = tiled_from_grouped(rows, 0, n_k, r, v_dim);
    } else if (ends("linear_attn.in_proj_qkv.weight")) {
        expect_rows(qk_rows + value_dim);
        if (tiled) e.how.row_order = tiled_from_grouped(rows, qk_rows, n_k, r, v_dim);
    } else if (ends("linear_attn.conv1d.weight")) {
        // ggml's ssm_conv takes F32 only, as convert_hf_to_gguf.py keeps it.
        if (t.shape.size() != 3 || t.shape[1] != 1) fail(MST_ERR_BAD_FORMAT, "tensor '{}' is not [channels, 1, kernel]", t.name);
        expect_rows(qk_rows + value_dim);
        e.how.shape = {t.shape[0], t.shape[2]};
        e.to_f32 = true;
        if (tiled) e.how.row_order = tiled_from_grouped(rows, qk_rows, n_k, r, v_dim);
    } else if (ends("linear_attn.out_proj.weight")) {
        if (t.shape.size() != 2 || t.shape[1] != value_dim)
            fail(MST_ERR_BAD_FORMAT, "tensor '{}' has shape {}, expected [hidden, {}]", t.name, shape_to_string(t.shape),
                 value_dim);
        if (tiled) {
            if (v_dim % int64_t(dtype_block_elems(t.dtype)) != 0)
                fail(MST_ERR_UNSUPPORTED,
                     "tensor '{}' is {}, whose blocks the value heads' reorder ({} columns each) would cut; convert "
                     "its dense weights to bf16",
                     t.name, dtype_name(t.dtype), v_dim);
            e.how.column_group = v_dim;
            e.how.column_order = tiled_from_grouped(n_v, 0, n_k, r, 1);
        }
    } else if (ends("mlp.shared_expert_gate.weight")) {
        e.how.shape = {t.shape.back()};  // llama.cpp's ffn_gate_inp_shexp is a vector
        e.to_f32 = true;
    } else if (ends("norm.weight") && !ends("linear_attn.norm.weight")) {
        e.how.value = plus_one;
        e.to_f32 = true;
    }
    return e;
}

}  // namespace

GgufExportEdit gguf_export_edit(const std::string &gguf_arch, const TensorInfo &t, const nlohmann::json &config) {
    if (gguf_arch == "qwen35moe") return qwen35moe_edit(t, config);
    GgufExportEdit e;
    e.how.source = t.name;
    e.how.shape = t.shape;
    e.to_f32 = t.shape.size() < 2;
    return e;
}

}  // namespace mst
