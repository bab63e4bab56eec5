// A projection whose weight is stored either as a float matrix or as FP8 E4M3 with block
// scales, so that one architecture runs both kinds of checkpoint through the same code.
#pragma once

#include <cstdint>
#include <vector>

#include "backends/backend.h"
#include "model/block_fp8.h"

namespace mst {

struct Linear {
    WeightView weight;     // [out][in]; F8_E4M3 when scale_inv.data is set
    WeightView scale_inv;  // F32 block scales of an FP8 weight; data == nullptr otherwise
    Fp8BlockSize block;
    std::vector<float> bias;  // [out], or empty
    bool is_block_fp8() const { return scale_inv.data != nullptr; }
};

// y [n][out] = W x (+ bias) for x [n][in].
void run_linear(Backend &backend, const Linear &w, const float *x, float *y, int64_t n_tokens);

// out[t] = down(silu(gate h[t]) * up h[t]) for n_tokens rows of h [n][H]; out [n][H].
struct SwigluLinear {
    Linear gate, up, down;
};
void swiglu_linear(Backend &backend, const SwigluLinear &w, const float *h, int64_t n_tokens, float *out);

}  // namespace mst
