// The AMX-INT8 row kernels (backends/cpu/quant_kernels_amx.cpp), reached as the library
// reaches them, through the 8-bit-activation AVX-512 table, against the scalar 8-bit
// reference at odd sizes: rows not a multiple of the 16-row tile, 1..40 tokens in the
// table's calls of up to 16, odd and even block counts, partial last blocks.
//
// Bound, per output: both sides sum the same exact int32 block sums, scaled in float, over
// n blocks; each rounds each of its at most 2n + 3 steps by at most 2^-24 of a partial sum,
// so they differ by at most (2n + 3) * 2^-23 * S, S = sum over blocks of
// |d_w d_x isum| + |m_w x_sum| (the standard bound for recursive summation, for each side).
// One wrong block, scale, minimum or nibble order breaks it by orders of magnitude.
#include <gtest/gtest.h>

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <vector>

#include "backends/cpu/cpu_isa.h"
#include "backends/cpu/matmul_quant.h"
#include "backends/cpu/quant_kernels.h"
#include "core/quant.h"
#include "quant_matmul_check.h"

#if defined(__x86_64__)
namespace mst {
namespace {

using test::gaussian;
using test::quantize;

constexpr const char *kNoAmx = "this CPU has no AMX-INT8, the OS refused the tile permission, or MST_CPU_AMX=0";

// S of the bound above for output (row r, token t), in double.
double magnitude(DType t, const uint8_t *row, const QuantizedActivation *x, int64_t n_blocks) {
    double s = 0.0;
    for (int64_t b = 0; b < n_blocks; ++b) {
        double dw, mw = 0.0;
        int64_t isum = 0;
        if (t == DType::Q8) {
            const BlockQ8 &w = reinterpret_cast<const BlockQ8 *>(row)[b];
            dw = half_to_float(w.d);
            for (int i = 0; i < 32; ++i) isum += int64_t(w.q[i]) * x[b].q[i];
        } else {
            const BlockQ4 &w = reinterpret_cast<const BlockQ4 *>(row)[b];
            dw = half_to_float(w.d);
            mw = half_to_float(w.m);
            for (int i = 0; i < 16; ++i) isum += int64_t(w.q[i] & 0x0f) * x[b].q[i] + int64_t(w.q[i] >> 4) * x[b].q[i + 16];
        }
        s += std::fabs(dw * x[b].d * double(isum)) + std::fabs(mw * x[b].sum);
    }
    return s;
}

// y [n_tok][rows] by `k`'s kernel for type t, in calls of at most k.max_tokens tokens, as
// the matmul and the routed experts call it.
std::vector<float> product(const QuantKernels &k, DType t, const std::vector<uint8_t> &w, int64_t rows, int64_t cols,
                           const std::vector<QuantizedActivation> &xq, int n_tok) {
    const int64_t n_blocks = (cols + 31) / 32, row_bytes = int64_t(dtype_row_bytes(t, cols));
    std::vector<float> y(size_t(rows * n_tok), NAN);
    for (int t0 = 0; t0 < n_tok; t0 += k.max_tokens) {
        const int n = std::min(k.max_tokens, n_tok - t0);
        quant_dot_rows_kernel(k, t)(w.data(), row_bytes, rows, n_blocks, xq.data() + t0 * n_blocks, n_blocks, n,
                                    y.data() + t0 * rows, rows);
    }
    return y;
}

std::vector<QuantizedActivation> activations(const QuantKernels &k, int64_t cols, int n_tok, uint32_t seed) {
    const int64_t n_blocks = (cols + 31) / 32;
    const std::vector<float> x = gaussian(size_t(n_tok * cols), seed);
    std::vector<QuantizedActivation> xq(size_t(n_tok * n_blocks));
    for (int j = 0; j < n_tok; ++j) k.quantize_activation(x.data() + j * cols, cols, xq.data() + j * n_blocks);
    return xq;
}

TEST(QuantKernelsAmx, TheInt8TableTakesThemForSixteenTokens) {
    if (!cpu_use_amx()) GTEST_SKIP() << kNoAmx;
    EXPECT_EQ(quant_kernels_avx512_int8().max_tokens, kAmxMaxTokens);
    // The 16-bit table keeps its kernels: AMX-INT8 multiplies bytes only.
    EXPECT_LT(quant_kernels_avx512().max_tokens, kAmxMaxTokens);
}

TEST(QuantKernelsAmx, MatchTheScalarReferenceWithinFloatRounding) {
    if (!cpu_use_amx()) GTEST_SKIP() << kNoAmx;
    const QuantKernels &scalar = quant_kernels_scalar_int8(), &amx = quant_kernels_avx512_int8();
    for (const DType t : {DType::Q8, DType::Q4})
        for (const int64_t rows : {1, 15, 16, 37})
            for (const int64_t cols : {32, 33, 95, 992, 1057, 2081})
                for (const int n_tok : {1, 2, 3, 8, 9, 10, 16, 17, 25, 40}) {
                    const int64_t n_blocks = (cols + 31) / 32, row_bytes = int64_t(dtype_row_bytes(t, cols));
                    const std::vector<uint8_t> w = quantize(t, gaussian(size_t(rows * cols), uint32_t(cols)), rows, cols);
                    const std::vector<QuantizedActivation> xq = activations(scalar, cols, n_tok, uint32_t(cols + n_tok));
                    const std::vector<float> ref = product(scalar, t, w, rows, cols, xq, n_tok);
                    const std::vector<float> got = product(amx, t, w, rows, cols, xq, n_tok);
                    for (int j = 0; j < n_tok; ++j)
                        for (int64_t r = 0; r < rows; ++r) {
                            const size_t i = size_t(j * rows + r);
                            const double s = magnitude(t, w.data() + r * row_bytes, xq.data() + j * n_blocks, n_blocks);
                            // Calls of too few tokens (and Q8's unless MST_CPU_AMX=all) take
                            // the VNNI kernels, whose bound is test_quant's QuantKernelsInt8 one.
                            const bool amx_call =
                                (t == DType::Q4 || cpu_use_amx_for_q8()) &&
                                std::min(amx.max_tokens, n_tok - j / amx.max_tokens * amx.max_tokens) >= kAmxMinTokens;
                            double ref_scale = 0.0;
                            for (float v : ref) ref_scale = std::max(ref_scale, double(std::fabs(v)));
                            const double bound = amx_call ? double(2 * n_blocks + 3) * FLT_EPSILON * s
                                                          : 1e-5 * ref_scale + 1e-6;
                            ASSERT_LE(std::fabs(double(got[i]) - ref[i]), bound)
                                << dtype_name(t) << " rows " << rows << " cols " << cols << " tokens " << n_tok
                                << " row " << r << " token " << j << ": " << got[i] << " vs " << ref[i];
                        }
                }
}

// Each output is computed on its own: a token's results are bitwise the same whatever other
// tokens share its call (kAmxMinTokens..16 of them, the calls that take the AMX kernel) and
// whatever rows are around it.
TEST(QuantKernelsAmx, AnOutputDoesNotDependOnItsNeighbours) {
    if (!cpu_use_amx()) GTEST_SKIP() << kNoAmx;
    const QuantKernels &amx = quant_kernels_avx512_int8();
    for (const DType t : {DType::Q8, DType::Q4}) {
        const int64_t rows = 40, cols = 1057, n_blocks = (cols + 31) / 32, row_bytes = int64_t(dtype_row_bytes(t, cols));
        const std::vector<uint8_t> w = quantize(t, gaussian(size_t(rows * cols), 5), rows, cols);
        const std::vector<QuantizedActivation> xq = activations(amx, cols, 16, 6);
        const std::vector<float> all = product(amx, t, w, rows, cols, xq, 16);
        // Tokens 3..3 + kAmxMinTokens alone, over rows 5..21 (a tile boundary elsewhere).
        const int n = kAmxMinTokens;
        std::vector<float> part(size_t(n * 17), NAN);
        quant_dot_rows_kernel(amx, t)(w.data() + 5 * row_bytes, row_bytes, 17, n_blocks, xq.data() + 3 * n_blocks,
                                      n_blocks, n, part.data(), 17);
        for (int j = 0; j < n; ++j)
            for (int r = 0; r < 17; ++r)
                ASSERT_EQ(part[size_t(j * 17 + r)], all[size_t((3 + j) * rows + 5 + r)])
                    << dtype_name(t) << " token " << 3 + j << " row " << 5 + r;
    }
}

}  // namespace
}  // namespace mst
#endif  // __x86_64__
