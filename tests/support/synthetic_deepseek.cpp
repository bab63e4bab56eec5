#include "synthetic_deepseek.h"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>
#include <stdexcept>
#include <vector>

#include <fmt/format.h>

#include "core/dtype.h"
#include "fp8_e4m3.h"
#include "safetensors_writer.h"
#include "test_paths.h"

namespace mst::test {
namespace {

using S = SyntheticDeepseekShape;

class Builder {
public:
    Builder(const SyntheticDeepseek &o) : o_(o), rng_(uint32_t(o.seed)) {}

    std::vector<float> random(int64_t n, float scale) {
        std::uniform_real_distribution<float> dist(-scale, scale);
        std::vector<float> v(static_cast<size_t>(n));
        for (float &x : v) x = dist(rng_);
        return v;
    }

    // Norm weights, embeddings, the router: bf16 in both forms.
    void plain(const std::string &name, std::vector<int64_t> shape, float scale, float offset = 0.0f) {
        int64_t n = 1;
        for (int64_t d : shape) n *= d;
        std::vector<float> v = random(n, scale);
        for (float &x : v) x += offset;
        writer_.add_bf16(name, std::move(shape), v);
    }

    // `count` matrices rows x cols in one tensor (count 0: a 2-D tensor).
    void projection(const std::string &name, int64_t count, int64_t rows, int64_t cols, bool force_bf16 = false) {
        const int64_t n = std::max<int64_t>(count, 1);
        const float scale = 1.0f / std::sqrt(float(cols));
        std::vector<int64_t> shape = count ? std::vector<int64_t>{count, rows, cols} : std::vector<int64_t>{rows, cols};
        if (force_bf16) {
            writer_.add_bf16(name, shape, random(n * rows * cols, scale));
            return;
        }
        std::vector<uint8_t> codes;
        std::vector<float> scales, values;
        int64_t srows = 0, scols = 0;
        for (int64_t m = 0; m < n; ++m) {
            const Fp8Matrix q = quantize_e4m3(random(rows * cols, scale), rows, cols, o_.block_rows, o_.block_cols);
            codes.insert(codes.end(), q.codes.begin(), q.codes.end());
            scales.insert(scales.end(), q.scales.begin(), q.scales.end());
            for (double v : q.values) values.push_back(float(v));  // exact: 4 bits times a float32
            srows = (rows + o_.block_rows - 1) / o_.block_rows;
            scols = (cols + o_.block_cols - 1) / o_.block_cols;
        }
        if (!o_.fp8) {
            writer_.add_f32(name, shape, values);
            return;
        }
        writer_.add(name, DType::F8_E4M3, shape, codes);
        if (name + "_scale_inv" == o_.omit_tensor) return;
        writer_.add_f32(name + "_scale_inv",
                        count ? std::vector<int64_t>{count, srows, scols} : std::vector<int64_t>{srows, scols}, scales);
    }

    void write(const std::string &path) const { writer_.write(path); }

private:
    const SyntheticDeepseek &o_;
    std::mt19937 rng_;
    SafetensorsWriter writer_;
};

}  // namespace

void write_synthetic_deepseek(const std::string &dir, const SyntheticDeepseek &o) {
    namespace fs = std::filesystem;
    Builder b(o);
    const int64_t qk = S::kNope + S::kRope;
    b.plain("model.embed_tokens.weight", {S::kVocab, S::kHidden}, 1.0f);
    b.plain("model.norm.weight", {S::kHidden}, 0.2f, 1.0f);
    b.plain("lm_head.weight", {S::kVocab, S::kHidden}, 0.125f);
    for (int64_t l = 0; l < S::kLayers; ++l) {
        const std::string p = fmt::format("model.layers.{}.", l);
        b.plain(p + "input_layernorm.weight", {S::kHidden}, 0.2f, 1.0f);
        b.plain(p + "post_attention_layernorm.weight", {S::kHidden}, 0.2f, 1.0f);
        b.projection(p + "self_attn.q_a_proj.weight", 0, S::kQLora, S::kHidden);
        b.plain(p + "self_attn.q_a_layernorm.weight", {S::kQLora}, 0.2f, 1.0f);
        b.projection(p + "self_attn.q_b_proj.weight", 0, S::kHeads * qk, S::kQLora);
        b.projection(p + "self_attn.kv_a_proj_with_mqa.weight", 0, S::kKvLora + S::kRope, S::kHidden);
        b.plain(p + "self_attn.kv_a_layernorm.weight", {S::kKvLora}, 0.2f, 1.0f);
        b.projection(p + "self_attn.kv_b_proj.weight", 0, S::kHeads * (S::kNope + S::kV), S::kKvLora);
        b.projection(p + "self_attn.o_proj.weight", 0, S::kHidden, S::kHeads * S::kV);
        if (l == 0) {
            b.projection(p + "mlp.gate_proj.weight", 0, S::kDenseFfn, S::kHidden);
            b.projection(p + "mlp.up_proj.weight", 0, S::kDenseFfn, S::kHidden);
            b.projection(p + "mlp.down_proj.weight", 0, S::kHidden, S::kDenseFfn);
            continue;
        }
        b.plain(p + "mlp.gate.weight", {S::kExperts, S::kHidden}, 0.5f);
        b.plain(p + "mlp.gate.e_score_correction_bias", {S::kExperts}, 0.05f);
        b.projection(p + "mlp.shared_experts.gate_proj.weight", 0, S::kExpertFfn, S::kHidden);
        b.projection(p + "mlp.shared_experts.up_proj.weight", 0, S::kExpertFfn, S::kHidden);
        b.projection(p + "mlp.shared_experts.down_proj.weight", 0, S::kHidden, S::kExpertFfn);
        if (o.fused_experts) {
            b.projection(p + "mlp.experts.gate_up_proj", S::kExperts, 2 * S::kExpertFfn, S::kHidden);
            b.projection(p + "mlp.experts.down_proj", S::kExperts, S::kHidden, S::kExpertFfn, o.bf16_expert_down);
            continue;
        }
        for (int64_t e = 0; e < S::kExperts; ++e) {
            const std::string q = fmt::format("{}mlp.experts.{}.", p, e);
            b.projection(q + "gate_proj.weight", 0, S::kExpertFfn, S::kHidden);
            b.projection(q + "up_proj.weight", 0, S::kExpertFfn, S::kHidden);
            b.projection(q + "down_proj.weight", 0, S::kHidden, S::kExpertFfn, o.bf16_expert_down);
        }
    }
    b.write((fs::path(dir) / "model.safetensors").string());

    nlohmann::json config = {{"architectures", {"DeepseekV3ForCausalLM"}},
                             {"model_type", "deepseek_v3"},
                             {"vocab_size", S::kVocab},
                             {"hidden_size", S::kHidden},
                             {"intermediate_size", S::kDenseFfn},
                             {"moe_intermediate_size", S::kExpertFfn},
                             {"num_hidden_layers", S::kLayers},
                             {"num_attention_heads", S::kHeads},
                             {"num_key_value_heads", S::kHeads},
                             {"n_routed_experts", S::kExperts},
                             {"n_shared_experts", 1},
                             {"num_experts_per_tok", S::kTopK},
                             {"n_group", 4},
                             {"topk_group", 2},
                             {"routed_scaling_factor", 2.5},
                             {"norm_topk_prob", true},
                             {"first_k_dense_replace", 1},
                             {"q_lora_rank", S::kQLora},
                             {"kv_lora_rank", S::kKvLora},
                             {"qk_nope_head_dim", S::kNope},
                             {"qk_rope_head_dim", S::kRope},
                             {"v_head_dim", S::kV},
                             {"rms_norm_eps", 1e-6},
                             {"rope_theta", 10000.0},
                             {"rope_scaling",
                              {{"type", "yarn"},
                               {"factor", 8.0},
                               {"original_max_position_embeddings", 64},
                               {"beta_fast", 32},
                               {"beta_slow", 1},
                               {"mscale", 1.0},
                               {"mscale_all_dim", 1.0}}},
                             {"max_position_embeddings", 512},
                             {"tie_word_embeddings", false},
                             {"scoring_func", "sigmoid"},
                             {"topk_method", "noaux_tc"},
                             {"eos_token_id", 1}};
    if (o.fp8)
        config["quantization_config"] = {{"quant_method", "fp8"},
                                         {"fmt", "e4m3"},
                                         {"activation_scheme", "dynamic"},
                                         {"weight_block_size", {o.block_rows, o.block_cols}}};
    config.merge_patch(o.config_overrides);
    std::ofstream(fs::path(dir) / "config.json") << config.dump(2);
    for (const char *f : {"tokenizer.json", "tokenizer_config.json"})
        fs::copy_file(data_path(std::string("tokenizer/") + f), fs::path(dir) / f,
                      fs::copy_options::overwrite_existing);
}

}  // namespace mst::test
