// FP8 E4M3 ("e4m3fn") for tests, written from the format's definition independently of
// the library: decoding, nearest-value encoding and block quantisation the way FP8
// checkpoints are made (one scale per block, the block's largest magnitude mapped to 448).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

namespace mst::test {

// Sign bit, 4 exponent bits (bias 7), 3 mantissa bits; exponent 0 is subnormal; S.1111.111 is
// NaN; there are no infinities.
inline double e4m3_value(uint8_t b) {
    const int exponent = (b >> 3) & 15, mantissa = b & 7;
    if (exponent == 15 && mantissa == 7) return std::numeric_limits<double>::quiet_NaN();
    const double magnitude =
        exponent == 0 ? mantissa / 8.0 * std::pow(2.0, -6) : (1.0 + mantissa / 8.0) * std::pow(2.0, exponent - 7);
    return (b & 0x80) ? -magnitude : magnitude;
}

// The nearest finite code (ties to the even code), saturating at +-448.
inline uint8_t e4m3_encode(double v) {
    static const std::vector<double> magnitudes = [] {
        std::vector<double> m(0x7f);
        for (int code = 0; code < 0x7f; ++code) m[size_t(code)] = e4m3_value(uint8_t(code));
        return m;
    }();
    const double a = std::fabs(v);
    // Magnitudes grow with the code: the first one at or above a, or the one below it.
    const size_t above = size_t(std::lower_bound(magnitudes.begin(), magnitudes.end(), a) - magnitudes.begin());
    uint8_t best;
    if (above == magnitudes.size()) {
        best = 0x7e;
    } else if (above == 0) {
        best = 0;
    } else {
        const double d_above = magnitudes[above] - a, d_below = a - magnitudes[above - 1];
        best = uint8_t(d_above < d_below || (d_above == d_below && above % 2 == 0) ? above : above - 1);
    }
    return uint8_t(best | (v < 0 && best != 0 ? 0x80 : 0));
}

// A rows x cols matrix quantised in blocks: codes, float32 scales
// [ceil(rows / br)][ceil(cols / bc)], and the exact values they represent.
struct Fp8Matrix {
    int64_t rows = 0, cols = 0;
    std::vector<uint8_t> codes;
    std::vector<float> scales;
    std::vector<double> values;
};

inline Fp8Matrix quantize_e4m3(const std::vector<float> &w, int64_t rows, int64_t cols, int64_t br, int64_t bc) {
    Fp8Matrix m;
    m.rows = rows;
    m.cols = cols;
    const int64_t srows = (rows + br - 1) / br, scols = (cols + bc - 1) / bc;
    m.codes.resize(size_t(rows * cols));
    m.values.resize(size_t(rows * cols));
    m.scales.resize(size_t(srows * scols));
    for (int64_t sr = 0; sr < srows; ++sr)
        for (int64_t sc = 0; sc < scols; ++sc) {
            double max_abs = 0.0;
            for (int64_t r = sr * br; r < std::min(rows, (sr + 1) * br); ++r)
                for (int64_t c = sc * bc; c < std::min(cols, (sc + 1) * bc); ++c)
                    max_abs = std::max(max_abs, std::fabs(double(w[size_t(r * cols + c)])));
            const float scale = max_abs > 0.0 ? float(max_abs / 448.0) : 1.0f;
            m.scales[size_t(sr * scols + sc)] = scale;
            for (int64_t r = sr * br; r < std::min(rows, (sr + 1) * br); ++r)
                for (int64_t c = sc * bc; c < std::min(cols, (sc + 1) * bc); ++c) {
                    const size_t i = size_t(r * cols + c);
                    m.codes[i] = e4m3_encode(double(w[i]) / double(scale));
                    m.values[i] = e4m3_value(m.codes[i]) * double(scale);
                }
        }
    return m;
}

}  // namespace mst::test
