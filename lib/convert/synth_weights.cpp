#include "convert/synth_weights.h"

#include <xxhash.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/error.h"
#include "core/mxfp4.h"
#include "core/quant.h"

namespace mst {
namespace {

// SplitMix64's output function over a counter: a full-period, well-mixed 64-bit value
// per (stream, counter) at a few multiplies, which is what lets any thread produce any
// row without stepping a generator there.
inline uint64_t random_at(uint64_t stream, uint64_t counter) {
    uint64_t z = stream + (counter + 1) * 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

inline uint16_t bf16_bits(float f) {
    uint32_t bits;
    std::memcpy(&bits, &f, sizeof bits);
    bits += 0x7fffu + ((bits >> 16) & 1u);  // round to nearest even; values here are finite
    return uint16_t(bits >> 16);
}

// Counters are laid out as [row][32-element group][word], 8 words a group (a BF16
// group uses all 8, Q8 4, Q4 2), so each type reads its own prefix of the same grid.
constexpr uint64_t kWordsPerGroup = 8;

void fill_float(DType dtype, const WeightFill &fill, uint64_t stream, int64_t first_row, int64_t rows, int64_t cols,
                void *dst) {
    const uint64_t groups = uint64_t((cols + kQuantBlock - 1) / kQuantBlock);
    // Uniform on [-a, a] has deviation a / sqrt(3).
    const float a = fill.std * std::sqrt(3.0f);
    for (int64_t r = 0; r < rows; ++r) {
        const uint64_t row = uint64_t(first_row + r);
        for (int64_t c0 = 0; c0 < cols; c0 += kQuantBlock) {
            const uint64_t g = uint64_t(c0 / kQuantBlock);
            const int64_t n = std::min<int64_t>(kQuantBlock, cols - c0);
            float values[kQuantBlock];
            if (fill.kind == WeightFill::Constant) {
                for (int64_t i = 0; i < n; ++i) values[i] = fill.value;
            } else {
                for (int64_t w = 0; w < (n + 3) / 4; ++w) {
                    const uint64_t bits = random_at(stream, (row * groups + g) * kWordsPerGroup + uint64_t(w));
                    for (int64_t k = 0; k < 4 && 4 * w + k < n; ++k) {
                        const uint32_t u = uint32_t(bits >> (16 * k)) & 0xffffu;
                        values[4 * w + k] = a * ((float(u) + 0.5f) / 32768.0f - 1.0f);
                    }
                }
            }
            const size_t at = size_t(r * cols + c0);
            if (dtype == DType::F32) {
                std::memcpy(static_cast<float *>(dst) + at, values, size_t(n) * sizeof(float));
            } else {
                uint16_t *out = static_cast<uint16_t *>(dst) + at;
                for (int64_t i = 0; i < n; ++i) out[i] = bf16_bits(values[i]);
            }
        }
    }
}

void fill_q8(const WeightFill &fill, uint64_t stream, int64_t first_row, int64_t rows, int64_t cols, void *dst) {
    const int64_t groups = (cols + kQuantBlock - 1) / kQuantBlock;
    const uint16_t d = float_to_half(fill.std * std::sqrt(3.0f) / 127.0f);
    auto *blocks = static_cast<BlockQ8 *>(dst);
    for (int64_t r = 0; r < rows; ++r) {
        const uint64_t row = uint64_t(first_row + r);
        for (int64_t g = 0; g < groups; ++g) {
            BlockQ8 &b = blocks[r * groups + g];
            b.d = d;
            const uint64_t base = (row * uint64_t(groups) + uint64_t(g)) * kWordsPerGroup;
            for (int w = 0; w < 4; ++w) {
                const uint64_t bits = random_at(stream, base + uint64_t(w));
                std::memcpy(b.q + 8 * w, &bits, 8);
            }
            for (int8_t &q : b.q)
                if (q == -128) q = -127;  // the type's codes stop at -127
            // The padding of a row's last block is zero, as the converter writes it.
            for (int64_t i = cols - g * kQuantBlock; i < kQuantBlock; ++i) b.q[i] = 0;
        }
    }
}

void fill_q4(const WeightFill &fill, uint64_t stream, int64_t first_row, int64_t rows, int64_t cols, void *dst) {
    const int64_t groups = (cols + kQuantBlock - 1) / kQuantBlock;
    // 16 equally likely levels d q + m, q in 0..15: deviation d sqrt(255 / 12), mean
    // m + 7.5 d, which m = -7.5 d centres on zero.
    const float df = fill.std / std::sqrt(255.0f / 12.0f);
    const uint16_t d = float_to_half(df), m = float_to_half(-7.5f * half_to_float(float_to_half(df)));
    auto *blocks = static_cast<BlockQ4 *>(dst);
    for (int64_t r = 0; r < rows; ++r) {
        const uint64_t row = uint64_t(first_row + r);
        for (int64_t g = 0; g < groups; ++g) {
            BlockQ4 &b = blocks[r * groups + g];
            b.d = d;
            b.m = m;
            const uint64_t base = (row * uint64_t(groups) + uint64_t(g)) * kWordsPerGroup;
            const uint64_t lo = random_at(stream, base), hi = random_at(stream, base + 1);
            std::memcpy(b.q, &lo, 8);
            std::memcpy(b.q + 8, &hi, 8);
            // Padding past the row's end decodes to m, as the converter's zero codes do.
            const int64_t valid = cols - g * kQuantBlock;
            for (int64_t i = valid; i < kQuantBlock; ++i) {
                if (i < 16) b.q[i] &= 0xf0;
                else b.q[i - 16] &= 0x0f;
            }
        }
    }
}

void fill_bytes(const WeightFill &fill, uint64_t stream, int64_t first_row, int64_t rows, int64_t cols, void *dst) {
    auto *out = static_cast<uint8_t *>(dst);
    if (fill.kind == WeightFill::Constant) {
        std::memset(out, int(fill.value), size_t(rows * cols));
        return;
    }
    for (int64_t r = 0; r < rows; ++r)
        for (int64_t c0 = 0; c0 < cols; c0 += 8) {
            const uint64_t bits = random_at(stream, uint64_t(first_row + r) * uint64_t((cols + 7) / 8) + uint64_t(c0 / 8));
            std::memcpy(out + r * cols + c0, &bits, size_t(std::min<int64_t>(8, cols - c0)));
        }
}

}  // namespace

uint8_t mxfp4_scale_for_std(float std) {
    double mean_square = 0;
    for (float v : kFp4Values) mean_square += double(v) * v / 16.0;
    const double e = 127.0 + std::round(std::log2(double(std) / std::sqrt(mean_square)));
    return uint8_t(std::clamp(e, 1.0, 254.0));
}

uint64_t weight_stream(uint64_t seed, std::string_view name) { return XXH64(name.data(), name.size(), seed); }

void fill_weight_rows(DType dtype, const WeightFill &fill, uint64_t stream, int64_t first_row, int64_t rows,
                      int64_t cols, void *dst) {
    switch (dtype) {
        case DType::BF16:
        case DType::F32:
            fill_float(dtype, fill, stream, first_row, rows, cols, dst);
            return;
        case DType::Q8:
        case DType::Q4:
            if (fill.kind == WeightFill::Constant)
                fail(MST_ERR_INVALID_ARGUMENT, "a constant tensor cannot be written as {}", dtype_name(dtype));
            if (dtype == DType::Q8)
                fill_q8(fill, stream, first_row, rows, cols, dst);
            else
                fill_q4(fill, stream, first_row, rows, cols, dst);
            return;
        case DType::U8:
            fill_bytes(fill, stream, first_row, rows, cols, dst);
            return;
        default:
            fail(MST_ERR_INVALID_ARGUMENT, "cannot write random weights of type {}", dtype_name(dtype));
    }
}

}  // namespace mst
