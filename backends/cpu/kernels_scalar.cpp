// Portable kernels: the fallback on CPUs without AVX2 and on other architectures, and the
// path MST_CPU_ISA=scalar forces. Plain loops; the compiler may vectorise what it can
// without reassociating float sums.
#include <cmath>
#include <cstring>

#include "backends/cpu/cpu_kernels.h"

namespace mst {
namespace {

constexpr int kMaxTokens = 4;
static_assert(kMaxTokens <= CpuKernels::kMaxTokensAny);

inline float load_f32(const float *p, int64_t i) { return p[i]; }

inline float load_bf16(const uint16_t *p, int64_t i) {
    const uint32_t bits = uint32_t(p[i]) << 16;
    float f;
    std::memcpy(&f, &bits, sizeof f);
    return f;
}

// By bit manipulation rather than core/dtype's ldexp-based conversion, which is exact but
// far too slow for an inner loop.
inline float load_f16(const uint16_t *p, int64_t i) {
    const uint32_t h = p[i];
    const uint32_t sign = (h & 0x8000u) << 16;
    const uint32_t exponent = (h >> 10) & 0x1fu;
    const uint32_t mantissa = h & 0x3ffu;
    uint32_t bits;
    if (exponent == 0) {
        // Zero or subnormal: mantissa * 2^-24 is exact in float32.
        float magnitude = float(mantissa) * 5.9604644775390625e-8f;
        std::memcpy(&bits, &magnitude, sizeof bits);
        bits |= sign;
    } else if (exponent == 31) {
        bits = sign | 0x7f800000u | (mantissa << 13);
    } else {
        bits = sign | ((exponent + 112u) << 23) | (mantissa << 13);
    }
    float f;
    std::memcpy(&f, &bits, sizeof f);
    return f;
}

template <int NT, typename T, float (*Load)(const T *, int64_t)>
void dot_rows_tile(const T *w, int64_t n_rows, int64_t cols, const float *x, int64_t ldx, float *y,
                   int64_t ldy) {
    for (int64_t r = 0; r < n_rows; ++r) {
        const T *row = w + r * cols;
        float acc[NT] = {};
        for (int64_t c = 0; c < cols; ++c) {
            const float wv = Load(row, c);
            for (int t = 0; t < NT; ++t) acc[t] += wv * x[t * ldx + c];
        }
        for (int t = 0; t < NT; ++t) y[t * ldy + r] = acc[t];
    }
}

template <typename T, float (*Load)(const T *, int64_t)>
void dot_rows(const void *w, int64_t n_rows, int64_t cols, const float *x, int64_t ldx, int n_tok,
              float *y, int64_t ldy) {
    const T *wt = static_cast<const T *>(w);
    switch (n_tok) {
        case 1: return dot_rows_tile<1, T, Load>(wt, n_rows, cols, x, ldx, y, ldy);
        case 2: return dot_rows_tile<2, T, Load>(wt, n_rows, cols, x, ldx, y, ldy);
        case 3: return dot_rows_tile<3, T, Load>(wt, n_rows, cols, x, ldx, y, ldy);
        default: return dot_rows_tile<4, T, Load>(wt, n_rows, cols, x, ldx, y, ldy);
    }
}

void axpy(int64_t n, float a, const float *x, float *y) {
    for (int64_t i = 0; i < n; ++i) y[i] += a * x[i];
}

float exp_shift_sum(float *x, int64_t n, float shift) {
    float sum = 0.0f;
    for (int64_t i = 0; i < n; ++i) {
        x[i] = std::exp(x[i] - shift);
        sum += x[i];
    }
    return sum;
}

constexpr CpuKernels kScalar{
    .dot_rows_f32 = dot_rows<float, load_f32>,
    .dot_rows_f16 = dot_rows<uint16_t, load_f16>,
    .dot_rows_bf16 = dot_rows<uint16_t, load_bf16>,
    .max_tokens = kMaxTokens,
    .axpy = axpy,
    .exp_shift_sum = exp_shift_sum,
};

}  // namespace

const CpuKernels &cpu_kernels_scalar() { return kScalar; }

}  // namespace mst
