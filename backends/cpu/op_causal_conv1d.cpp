// Causal depthwise conv1d with carried state (the short convolution of Gated DeltaNet).
// Activations are token-major, so the loop runs over tokens outside and channels inside:
// the channel loop is contiguous in x, y and the transposed weights and vectorises.
#include <cmath>
#include <vector>

#include "backends/cpu/cpu_backend.h"
#include "backends/cpu/parallel_for.h"

namespace mst {

void CpuBackend::causal_conv1d(const float *x, const WeightView &w, const float *state_in, float *state_out, float *y,
                               int64_t n_tokens, int64_t channels, bool silu) {
    check_causal_conv1d_params(x, w, state_out, y, n_tokens, channels);
    const int64_t kernel = w.cols, hist = kernel - 1;
    if (n_tokens == 0) {
        if (hist > 0 && state_out != state_in) {
            for (int64_t i = 0; i < hist * channels; ++i) state_out[i] = state_in ? state_in[i] : 0.0f;
        }
        return;
    }

    // Weights as [kernel][channels] so that one tap is a contiguous row.
    std::vector<float> wc(size_t(kernel * channels)), wt(size_t(kernel * channels));
    convert_to_f32(w.dtype, w.data, wc.data(), wc.size());
    for (int64_t c = 0; c < channels; ++c)
        for (int64_t j = 0; j < kernel; ++j) wt[size_t(j * channels + c)] = wc[size_t(c * kernel + j)];

    // Input row s of the extended sequence: the state for s < 0, x afterwards.
    const std::vector<float> zeros(state_in ? 0 : size_t(channels), 0.0f);
    auto input_row = [&](int64_t s) -> const float * {
        if (s >= 0) return x + s * channels;
        return state_in ? state_in + (hist + s) * channels : zeros.data();
    };

    const int threads = threads_for(n_tokens * channels * kernel);
    parallel_for(n_tokens, threads, [&](int64_t t_begin, int64_t t_end) {
        for (int64_t t = t_begin; t < t_end; ++t) {
            float *yt = y + t * channels;
            for (int64_t c = 0; c < channels; ++c) yt[c] = 0.0f;
            for (int64_t j = 0; j < kernel; ++j) {
                const float *in = input_row(t - hist + j);
                const float *wj = wt.data() + j * channels;
                for (int64_t c = 0; c < channels; ++c) yt[c] += wj[c] * in[c];
            }
            if (silu)
                for (int64_t c = 0; c < channels; ++c) yt[c] = yt[c] / (1.0f + std::exp(-yt[c]));
        }
    });

    // The new state is the last `hist` inputs. It is gathered first, because rows of it may
    // still come from state_in, which state_out may alias.
    if (hist > 0) {
        std::vector<float> next(size_t(hist * channels));
        for (int64_t r = 0; r < hist; ++r) {
            const float *in = input_row(n_tokens - hist + r);
            std::copy(in, in + channels, next.data() + r * channels);
        }
        std::copy(next.begin(), next.end(), state_out);
    }
}

}  // namespace mst
