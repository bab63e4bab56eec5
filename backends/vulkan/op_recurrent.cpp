// The recurrent ops of Gated DeltaNet: causal_conv1d (shaders/causal_conv1d.comp) and the
// gated delta rule (shaders/delta_rule.comp).
#include <algorithm>

#include "backends/vulkan/vulkan_backend.h"
#include "core/error.h"

namespace mst {

void VulkanBackend::causal_conv1d(const float *x, const WeightView &w, const float *state_in, float *state_out,
                                  float *y, int64_t n_tokens, int64_t channels, bool silu) {
    const std::lock_guard<std::recursive_mutex> lock(mutex_);
    check_causal_conv1d_params(x, w, state_out, y, n_tokens, channels);
    const int64_t kernel = w.cols, hist = kernel - 1;
    if (n_tokens == 0) {
        stream_->host_access(state_in, uint64_t(hist * channels) * sizeof(float));
        stream_->host_access(state_out, uint64_t(hist * channels) * sizeof(float));
        if (hist > 0 && state_out != state_in)
            for (int64_t i = 0; i < hist * channels; ++i) state_out[i] = state_in ? state_in[i] : 0.0f;
        return;
    }
    const BufferSlice xs = stream_->input(x, uint64_t(n_tokens * channels) * sizeof(float));
    const BufferSlice ws = residency_->get(*stream_, w, true).data;
    const uint64_t state_bytes = uint64_t(hist * channels) * sizeof(float);
    const BufferSlice si = state_in && hist > 0 ? stream_->input(state_in, state_bytes) : unused_binding();
    const BufferSlice ys = stream_->output_buffer(uint64_t(n_tokens * channels) * sizeof(float));
    const BufferSlice so = hist > 0 ? stream_->output_buffer(state_bytes) : unused_binding();
    const uint32_t push[5] = {uint32_t(n_tokens), uint32_t(channels), uint32_t(kernel), state_in ? 1u : 0u,
                              silu ? 1u : 0u};
    uint32_t gx, gy;
    groups_for((n_tokens + hist) * channels, 256, gx, gy);
    stream_->dispatch(pipelines_->get("causal_conv1d", 5), {xs, ws, si, ys, so}, push, sizeof push, gx, gy);
    stream_->output(ys, y, ys.size);
    if (hist > 0) stream_->output(so, state_out, state_bytes);
    submit();
}

void VulkanBackend::gated_delta_rule(const float *q, const float *k, const float *v, const float *g, const float *beta,
                                     const float *state_in, float *state_out, float *out, const DeltaRuleShape &s) {
    const std::lock_guard<std::recursive_mutex> lock(mutex_);
    check_gated_delta_rule_params(q, k, v, g, beta, state_out, out, s);
    if (s.k_dim > 512) fail(MST_ERR_UNSUPPORTED, "gated_delta_rule: k_dim {} above 512", s.k_dim);
    const uint64_t state_bytes = uint64_t(s.n_heads * s.k_dim * s.v_dim) * sizeof(float);
    stream_->host_access(state_in, state_bytes);
    stream_->host_access(state_out, state_bytes);
    if (s.n_tokens == 0) {
        if (state_out != state_in) {
            if (state_in) std::copy_n(state_in, state_bytes / sizeof(float), state_out);
            else std::fill_n(state_out, state_bytes / sizeof(float), 0.0f);
        }
        return;
    }
    const uint64_t qk_bytes = uint64_t(s.n_tokens * s.n_k_heads * s.k_dim) * sizeof(float);
    const uint64_t v_bytes = uint64_t(s.n_tokens * s.n_heads * s.v_dim) * sizeof(float);
    const uint64_t gb_bytes = uint64_t(s.n_tokens * s.n_heads) * sizeof(float);
    const BufferSlice qs = stream_->input(q, qk_bytes), ks = stream_->input(k, qk_bytes), vs = stream_->input(v, v_bytes);
    const BufferSlice gs = stream_->input(g, gb_bytes), bs = stream_->input(beta, gb_bytes);
    BufferSlice st = stream_->host_scratch(state_bytes);
    if (state_in) std::copy_n(state_in, state_bytes / sizeof(float), reinterpret_cast<float *>(st.mapped));
    else std::fill_n(reinterpret_cast<float *>(st.mapped), state_bytes / sizeof(float), 0.0f);
    const BufferSlice os = stream_->output_buffer(v_bytes);
    // The state is read and written once per token: in device memory, not across the bus.
    const BufferSlice sd = stream_->device_scratch(state_bytes);
    stream_->copy(st, sd, state_bytes);
    struct {
        uint32_t n_tokens, n_heads, n_k_heads, k_dim, v_dim;
        float scale;
    } push{uint32_t(s.n_tokens), uint32_t(s.n_heads), uint32_t(s.n_k_heads), uint32_t(s.k_dim), uint32_t(s.v_dim),
           s.scale};
    stream_->dispatch(pipelines_->get("delta_rule", 7), {qs, ks, vs, gs, bs, sd, os}, &push, sizeof push,
                      uint32_t((s.v_dim + 63) / 64), uint32_t(s.n_heads));
    stream_->copy(sd, st, state_bytes);
    stream_->output(os, out, v_bytes);
    stream_->output(st, state_out, state_bytes);
    submit();
}

}  // namespace mst
