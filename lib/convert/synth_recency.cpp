#include "convert/synth_recency.h"

#include <algorithm>
#include <cmath>
#include <random>

#include "model/gated_deltanet.h"
#include "model/qwen3_5_moe.h"
#include "model/rope_frequencies.h"

namespace mst {
namespace {

// u's weight in a token embedding, in units of the embedding's own deviation: the
// residual stream grows by about one embedding per sublayer, so u must stay well above
// that for the recency heads' sign (q and k both read x . u) to hold in the last layers.
constexpr float kEmbeddingGain = 8.0f;
// The recency logit at distance 0 (S): the heads' attention weight falls as
// exp(S mean cos(d w_i)); 12 keeps their mass within about 15 tokens at the frequencies below
// where the rest of a 1024-token context would otherwise take half of it.
constexpr double kRecencyScore = 12.0;
// The rotary pairs written: those turning a radian within 8 to 128 tokens, so that the
// kernel falls over tens of tokens, the distances a trained model reuses most beyond the
// next token (bench/RESULTS.md).
constexpr double kMinFrequency = 1.0 / 128.0, kMaxFrequency = 1.0 / 8.0;
// Qwen3.5-MoE: a unit of gain writes this many plain heads' output (attention) or this many
// times the recency value heads' plain output (DeltaNet). Its synthesized residual stream
// grows faster than Qwen3-MoE's ((1 + w) norms at w = 1), and at unit 1 the 8 calibration
// rounds' steps stop short of the trained model's reuse in the last layers (bench/RESULTS.md,
// tenth round: units 1-4 for the attention heads, 2, 4 and 8 for the DeltaNet heads).
constexpr float kGatedGainUnit = 4.0f;
// DeltaNet recency heads: b (beta's logit) = this x (h . u), strongly negative (about -6 at the
// first layer by u's share of the embedding; less deeper, where the residual has grown: an
// estimate, not measured), so that beta is small and the moving average keeps what the decay
// keeps (about 99 % a token at A_log -4); its size is undone by the gated RMSNorm after it.
constexpr float kDeltaNetBeta = -0.5f;
// DeltaNet recency heads: z = this x (h . u), positive (about 3 at the first layer, less
// deeper), so that the output gate silu(z) is about constant across tokens.
constexpr float kDeltaNetGate = 0.25f;
// MLA: the latent dim q_a_proj writes from u, about this large at the first layer, so that
// it dominates q_a_layernorm without flattening the other heads' queries much.
constexpr double kQueryLatent = 10.0;

bool ends_with(const std::string &s, std::string_view suffix) {
    return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

int64_t raw_int(const ModelConfig &c, const char *key) {
    const auto it = c.raw.find(key);
    return it != c.raw.end() && it->is_number_integer() ? it->get<int64_t>() : 0;
}

}  // namespace

std::optional<RecencyHeads> RecencyHeads::for_config(const ModelConfig &config, uint64_t seed) {
    RecencyHeads r;
    r.hidden_ = config.hidden_size;
    r.n_heads_ = config.n_heads;
    if (config.model_type == "qwen3_moe") {
        r.kind_ = Kind::QkNorm;
        r.head_dim_ = config.head_dim > 0 ? config.head_dim : config.hidden_size / std::max<int64_t>(config.n_heads, 1);
        r.rope_ = r.head_dim_;
        // Every query head that shares kv head 0 reads its constant key: all of them recency heads.
        r.recency_q_heads_ = int32_t(config.n_heads / std::max<int64_t>(config.n_kv_heads, 1));
    } else if (config.model_type == "qwen3_5_moe" || config.model_type == "qwen3_5_moe_text") {
        r.kind_ = Kind::Gated;
        r.head_dim_ = config.head_dim > 0 ? config.head_dim : config.hidden_size / std::max<int64_t>(config.n_heads, 1);
        // Only the first rotary dims of a head turn with the position: the pairs come from them.
        r.rope_ = int64_t(double(r.head_dim_) * qwen35_partial_rotary_factor(config));
        r.recency_q_heads_ = int32_t(config.n_heads / std::max<int64_t>(config.n_kv_heads, 1));
        r.linear_ = qwen35_linear_layers(config);
        const GatedDeltaNetShape dn = gated_deltanet_shape(config);
        r.dn_k_heads_ = dn.n_k_heads;
        r.dn_v_heads_ = dn.n_v_heads;
        r.dn_k_dim_ = dn.k_dim;
        r.dn_v_dim_ = dn.v_dim;
    } else if (config.model_type == "deepseek_v3") {
        r.kind_ = Kind::Mla;
        r.q_lora_ = raw_int(config, "q_lora_rank");
        r.kv_lora_ = raw_int(config, "kv_lora_rank");
        r.nope_ = raw_int(config, "qk_nope_head_dim");
        r.rope_ = raw_int(config, "qk_rope_head_dim");
        r.v_dim_ = raw_int(config, "v_head_dim");
        if (r.q_lora_ <= 0 || r.kv_lora_ <= 0 || r.rope_ <= 0 || r.v_dim_ <= 0) return std::nullopt;
        r.recency_q_heads_ = 1;  // k_pe is shared by all heads; one head's query reads u
    } else {
        return std::nullopt;
    }
    if (r.hidden_ <= 0 || r.n_heads_ <= 0 || r.rope_ < 2) return std::nullopt;
    const RopeTable rope = make_rope_table(config, int32_t(r.rope_));
    for (size_t i = 0; i < rope.inv_freq.size(); ++i)
        if (rope.inv_freq[i] >= kMinFrequency && rope.inv_freq[i] <= kMaxFrequency) r.pairs_.push_back(int32_t(i));
    if (r.pairs_.empty()) {  // no pair in range: the one nearest its middle (log scale)
        const double mid = std::log(std::sqrt(kMinFrequency * kMaxFrequency));
        size_t best = 0;
        for (size_t i = 1; i < rope.inv_freq.size(); ++i)
            if (std::abs(std::log(rope.inv_freq[i]) - mid) < std::abs(std::log(rope.inv_freq[best]) - mid)) best = i;
        r.pairs_.push_back(int32_t(best));
    }
    // A pair's first dim: (i, i + half) in the neox layout, (2i, 2i + 1) interleaved.
    const bool interleaved = r.kind_ == Kind::Mla && config.raw.value("rope_interleave", true);
    for (int32_t i : r.pairs_) r.dims_.push_back(interleaved ? 2 * i : i);

    std::mt19937_64 rng(seed ^ 0x7ecec1a11ea5ULL);
    std::normal_distribution<double> normal;
    r.u_.resize(size_t(r.hidden_));
    double norm = 0.0;
    for (float &v : r.u_) {
        v = float(normal(rng));
        norm += double(v) * v;
    }
    for (float &v : r.u_) v = float(v / std::sqrt(norm));
    // As synthesize.cpp's embeddings: deviation 1, or hidden^-1/4 tied to the output head.
    const double embedding_std = config.tie_word_embeddings ? 1.0 / std::sqrt(std::sqrt(double(r.hidden_))) : 1.0;
    r.embedding_gain_ = float(kEmbeddingGain * embedding_std);
    // x . u / rms(x) at the first layer: u's part of a normalised embedding.
    const double x_dot_u = kEmbeddingGain / std::sqrt(1.0 + kEmbeddingGain * kEmbeddingGain / double(r.hidden_));
    const double n_dims = double(r.dims_.size());
    if (r.kind_ != Kind::Mla) {
        // After q_norm / k_norm a head's n written dims hold sqrt(head_dim / n) x weight each,
        // so q . k / sqrt(head_dim) = sqrt(head_dim) weight^2 at distance 0. Gated attention's
        // norms weigh by 1 + w: the weight written is 1 less.
        r.qk_norm_weight_ = float(std::sqrt(kRecencyScore / std::sqrt(double(r.head_dim_))));
        if (r.kind_ == Kind::Gated) r.qk_norm_weight_ -= 1.0f;
    } else {
        // q_a_proj row 0 = c u makes latent dim 0 = c x . u / rms(x); q_a_layernorm leaves it
        // L / sqrt((q_lora - 1 + L^2) / q_lora); k_pe's written dims = x . u / rms(x).
        r.q_a_gain_ = float(kQueryLatent / x_dot_u);
        const double normed = kQueryLatent / std::sqrt((double(r.q_lora_) - 1.0 + kQueryLatent * kQueryLatent) / double(r.q_lora_));
        const double scale = 1.0 / std::sqrt(double(r.nope_ + r.rope_));
        r.q_b_gain_ = float(kRecencyScore / (scale * n_dims * normed * x_dot_u));
    }
    return r;
}

RowTransform RecencyHeads::transform(const std::string &name, int32_t layer, int64_t cols, std::optional<float> gain,
                                     bool router) const {
    if (name.find("embed_tokens") != std::string::npos && cols == hidden_)
        return [this](int64_t, float *v) {
            for (int64_t c = 0; c < hidden_; ++c) v[c] += embedding_gain_ * u_[size_t(c)];
        };
    if (router && cols == hidden_)
        return [this](int64_t, float *v) {
            double dot = 0.0;
            for (int64_t c = 0; c < hidden_; ++c) dot += double(v[c]) * u_[size_t(c)];
            for (int64_t c = 0; c < hidden_; ++c) v[c] -= float(dot) * u_[size_t(c)];
        };
    if (layer < 0 || !gain) return {};
    auto is_dim = [this](int64_t j) { return std::ranges::find(dims_, int32_t(j)) != dims_.end(); };
    auto read_u = [this](float *v, float scale) {
        for (int64_t c = 0; c < hidden_; ++c) v[c] = scale * u_[size_t(c)];
    };
    // Gated attention: the recency heads' gate rows are zero, so their output is halved
    // (sigmoid(0)) whatever the token; o_proj doubles it back, times the gain unit.
    const float g = kind_ == Kind::Gated ? 2.0f * kGatedGainUnit * *gain : *gain;
    if (kind_ == Kind::Gated && size_t(layer) < linear_.size() && linear_[size_t(layer)]) {
        // Gated DeltaNet: key head 0's q and k read only u, one dim each (convolution taps all
        // 1), so after the L2 norm both are one constant unit vector and the delta rule keeps
        // an exponential moving average of v in the value heads that share key head 0; their
        // a rows are zero (the decay is A_log's alone), b and z read u (kDeltaNetBeta,
        // kDeltaNetGate), and out_proj writes their output times the gain.
        const int64_t heads = dn_v_heads_ / std::max<int64_t>(dn_k_heads_, 1);
        const int64_t key_dim = dn_k_heads_ * dn_k_dim_;
        auto first_of_key_head_0 = [=](int64_t row) { return row == 0 || row == key_dim; };
        if (ends_with(name, "linear_attn.in_proj_qkv.weight"))
            return [=, this](int64_t row, float *v) {
                if (first_of_key_head_0(row)) read_u(v, 1.0f);
                else if (row < dn_k_dim_ || (row >= key_dim && row < key_dim + dn_k_dim_)) std::fill(v, v + hidden_, 0.0f);
            };
        if (ends_with(name, "linear_attn.conv1d.weight"))
            return [=](int64_t row, float *v) {
                if (first_of_key_head_0(row)) std::fill(v, v + cols, 1.0f);
            };
        if (ends_with(name, "linear_attn.in_proj_b.weight"))
            return [=](int64_t row, float *v) {
                if (row < heads) read_u(v, kDeltaNetBeta);
            };
        if (ends_with(name, "linear_attn.in_proj_a.weight"))
            return [=, this](int64_t row, float *v) {
                if (row < heads) std::fill(v, v + hidden_, 0.0f);
            };
        if (ends_with(name, "linear_attn.in_proj_z.weight"))
            return [=, this](int64_t row, float *v) {
                if (row < heads * dn_v_dim_) read_u(v, kDeltaNetGate);
            };
        if (ends_with(name, "linear_attn.out_proj.weight")) {
            const float gd = kGatedGainUnit * *gain;
            return [=, this](int64_t, float *v) {
                for (int64_t c = 0; c < heads * dn_v_dim_; ++c) v[c] *= gd;
            };
        }
        return {};
    }
    if (ends_with(name, "self_attn.o_proj.weight")) {
        const int64_t head_cols = kind_ == Kind::Mla ? v_dim_ : head_dim_;
        return [head_cols, g, this](int64_t, float *v) {
            for (int64_t c = 0; c < head_cols * recency_q_heads_; ++c) v[c] *= g;
        };
    }
    if (kind_ != Kind::Mla) {
        const bool q = ends_with(name, "self_attn.q_proj.weight"), k = ends_with(name, "self_attn.k_proj.weight");
        if (q || k) {
            const int64_t heads = q ? recency_q_heads_ : 1;
            // Gated q_proj: per head, head_dim query rows then head_dim gate rows (written zero).
            const int64_t rows_per_head = q && kind_ == Kind::Gated ? 2 * head_dim_ : head_dim_;
            return [=, this](int64_t row, float *v) {
                if (row / rows_per_head >= heads) return;
                const int64_t j = row % rows_per_head;
                if (j < head_dim_ && is_dim(j)) read_u(v, 1.0f);
                else std::fill(v, v + hidden_, 0.0f);
            };
        }
        if (ends_with(name, "self_attn.q_norm.weight") || ends_with(name, "self_attn.k_norm.weight"))
            return [=, this](int64_t, float *v) {
                for (int32_t d : dims_) v[d] = qk_norm_weight_;
            };
        return {};
    }
    if (ends_with(name, "self_attn.q_a_proj.weight"))
        return [this, read_u](int64_t row, float *v) {
            if (row == 0) read_u(v, q_a_gain_);
        };
    if (ends_with(name, "self_attn.q_b_proj.weight")) {
        const int64_t per_head = nope_ + rope_;
        return [=, this](int64_t row, float *v) {
            if (row / per_head >= recency_q_heads_) {
                v[0] = 0.0f;  // other heads' queries do not read latent dim 0
                return;
            }
            const int64_t j = row % per_head;
            std::fill(v, v + q_lora_, 0.0f);
            if (j >= nope_ && is_dim(j - nope_)) v[0] = q_b_gain_;
        };
    }
    if (ends_with(name, "self_attn.kv_a_proj_with_mqa.weight"))
        return [=, this](int64_t row, float *v) {
            if (row >= kv_lora_ && is_dim(row - kv_lora_)) read_u(v, 1.0f);
        };
    return {};
}

}  // namespace mst
