// Shared pieces of the block-quantized type tests (test_quant.cpp for moestream's Q8 / Q4,
// test_ggml_legacy_quants.cpp for GGUF's legacy types, test_ggml_kquants.cpp for the
// K-quants): Gaussian data, row-wise quantize / dequantize, and the CPU kernels' error
// against dequantize-then-multiply in double precision, as a ratio to the kernels' bound.
//
// Kernel bound, per output: the kernels quantize activations to 16 bits per block of 32,
// so each activation moves by at most half a step, amax(block) / 32767 / 2, and it
// multiplies the weight's code term w - min (a block's minimum, for the types that have
// one, meets the exact float sum of the activations):
//   |y - ref| <= sum_c |w_c - min_c| * amax(block of c) / 65534 + kFloatSlack * sum_c |w_c x_c|
// where ref is the product with the dequantized weights in double and kFloatSlack covers
// float32 accumulation and the products of scales. Where the CPU backend gives type t 8-bit
// activations (cpu_int8_activations_for, MST_CPU_ACT_BITS) they are rounded as llama.cpp's
// Q8_0 / Q8_1 / Q8_K blocks (quant_activation_ggml.cpp): step amax / 127 of the scale's block
// (256 values for IQ4_XS, else 32), the scale rounded to f16 (at most amax * 2^-11 more per
// value), and a minimum meets the f16 sum of the quantized values, not the exact one, so the
// activation error multiplies |w - min| + |min|:
//   |y - ref| <= sum_c (|w_c - min_c| + |min_c|) * amax(scale block of c) * (1/254 + 1/2048) + slack
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "backends/backend.h"
#include "backends/cpu/cpu_backend.h"
#include "backends/cpu/quant_kernels.h"
#include "core/ggml_kquants.h"
#include "core/ggml_legacy_quants.h"
#include "core/quant.h"
#include "quant_test_data.h"

namespace mst::test {

inline constexpr double kQuantFloatSlack = 1e-5;

inline std::vector<uint8_t> quantize(DType t, const std::vector<float> &x, int64_t rows, int64_t cols) {
    return quantize_matrix(t, x, rows, cols);
}

inline std::vector<float> dequantize(DType t, const std::vector<uint8_t> &q, int64_t rows, int64_t cols) {
    return dequantize_matrix(t, q, rows, cols);
}

// The minimum of 32-element block `b` of a row of type t (0 for the types without one).
inline double block_min(DType t, const uint8_t *row, int64_t b) {
    if (t == DType::Q4) return half_to_float(reinterpret_cast<const BlockQ4 *>(row)[b].m);
    if (!dtype_is_ggml_legacy(t)) return 0.0;
    GgmlSubBlockCodes codes;
    ggml_legacy_decode(t, row, b, codes);
    return codes.min;
}

// Gaussian weights of type t, quantized and decoded, and activations with an outlier in
// their first block (which coarsens only that block); y is filled with a guard value.
struct QuantMatmulData {
    std::vector<uint8_t> q;
    std::vector<float> wd, x, y;
    static constexpr size_t kGuard = 16;

    QuantMatmulData(DType t, int64_t rows, int64_t cols, int64_t n_tokens, uint32_t seed)
        : q(quantize(t, gaussian(size_t(rows * cols), seed, 0.05f, 0.01f), rows, cols)),
          wd(dequantize(t, q, rows, cols)),
          x(gaussian(size_t(n_tokens * cols), seed + 1)),
          y(size_t(n_tokens * rows) + kGuard, -7.0f) {
        if (!x.empty()) x[0] = 9.0f;
    }
    void run(Backend &backend, DType t, int64_t rows, int64_t cols, int64_t n_tokens) {
        backend.matmul(WeightView{t, q.data(), rows, cols}, x.data(), y.data(), n_tokens);
        for (size_t i = 0; i < kGuard; ++i) EXPECT_EQ(y[y.size() - 1 - i], -7.0f) << "wrote past the output";
    }
};

// The largest ratio of |y - ref| to the bound above (<= 1 passes) over the outputs of one
// matmul of Gaussian weights of type t (an outlier in the activations' first block), and
// that nothing was written past the output.
inline double quant_matmul_error(Backend &backend, DType t, int64_t rows, int64_t cols, int64_t n_tokens,
                                 uint32_t seed) {
    QuantMatmulData d(t, rows, cols, n_tokens, seed);
    d.run(backend, t, rows, cols, n_tokens);
    const uint64_t row_bytes = dtype_row_bytes(t, cols);
    const bool int8 = cpu_int8_activations_for(t);
    const double step_per_amax = int8 ? 1.0 / 254 + 1.0 / 2048 : 1.0 / 65534;
    const int64_t scale_block = int8 && t == DType::GGML_IQ4_XS ? 256 : 32;
    double worst = 0.0;
    for (int64_t tok = 0; tok < n_tokens; ++tok) {
        const float *xt = d.x.data() + tok * cols;
        // Indexed by 32-block, each holding the largest |x| of the scale's block around it.
        std::vector<double> scale_amax(size_t((cols + scale_block - 1) / scale_block), 0.0), block_amax;
        for (int64_t c = 0; c < cols; ++c)
            scale_amax[size_t(c / scale_block)] = std::max(scale_amax[size_t(c / scale_block)], double(std::fabs(xt[c])));
        for (int64_t b = 0; b < (cols + 31) / 32; ++b) block_amax.push_back(scale_amax[size_t(b * 32 / scale_block)]);
        for (int64_t r = 0; r < rows; ++r) {
            double ref = 0.0, quant_bound = 0.0, magnitude = 0.0, min = 0.0;
            for (int64_t c = 0; c < cols; ++c) {
                if (c % 32 == 0) min = block_min(t, d.q.data() + uint64_t(r) * row_bytes, c / 32);
                const double wv = d.wd[size_t(r * cols + c)];
                ref += wv * xt[c];
                quant_bound += (std::fabs(wv - min) + (int8 ? std::fabs(min) : 0.0)) * block_amax[size_t(c / 32)] *
                               step_per_amax;
                magnitude += std::fabs(wv * xt[c]);
            }
            const double got = d.y[size_t(tok * rows + r)];
            if (std::isnan(got)) return INFINITY;
            worst = std::max(worst, std::fabs(got - ref) / (quant_bound + kQuantFloatSlack * magnitude + 1e-30));
        }
    }
    return worst;
}

// The same for the K-quants, whose kernels quantize activations to int8 per super-block of
// 256: each moves by at most half a step, amax(block) / 127 / 2, and meets the whole weight
// (the minimum term uses the quantized block sums), so
//   |y - ref| <= sum_c |w_c| * amax(block of c) / 254 + kQuantFloatSlack * sum_c (|w_c| + |m_c|) |x_c|
// where m_c is the minimum term of w_c's sub-block (float32 cancels the code and minimum
// sums against each other).
inline double kquant_matmul_error(Backend &backend, DType t, int64_t rows, int64_t cols, int64_t n_tokens,
                                  uint32_t seed) {
    QuantMatmulData d(t, rows, cols, n_tokens, seed);
    // The minimum term of each weight, for the float-cancellation part of the bound.
    std::vector<double> mins(size_t(rows * cols));
    const uint64_t row_bytes = dtype_row_bytes(t, cols);
    for (int64_t r = 0; r < rows; ++r)
        for (int64_t b = 0; b * kSuperBlock < cols; ++b) {
            KQuantCodes c;
            kquant_unpack(t, d.q.data() + r * row_bytes + b * dtype_size(t), c);
            for (int64_t i = 0; i < kSuperBlock && b * kSuperBlock + i < cols; ++i)
                mins[size_t(r * cols + b * kSuperBlock + i)] = std::fabs(double(c.dmin) * c.min[i / 16]);
        }
    d.run(backend, t, rows, cols, n_tokens);
    double worst = 0.0;
    for (int64_t tok = 0; tok < n_tokens; ++tok) {
        const float *xt = d.x.data() + tok * cols;
        std::vector<double> amax(size_t((cols + kSuperBlock - 1) / kSuperBlock), 0.0);
        for (int64_t c = 0; c < cols; ++c)
            amax[size_t(c / kSuperBlock)] = std::max(amax[size_t(c / kSuperBlock)], double(std::fabs(xt[c])));
        for (int64_t r = 0; r < rows; ++r) {
            double ref = 0.0, quant_bound = 0.0, magnitude = 0.0;
            for (int64_t c = 0; c < cols; ++c) {
                const double wv = d.wd[size_t(r * cols + c)];
                ref += wv * xt[c];
                quant_bound += std::fabs(wv) * amax[size_t(c / kSuperBlock)] / 254.0;
                magnitude += (std::fabs(wv) + mins[size_t(r * cols + c)]) * std::fabs(xt[c]);
            }
            const double got = d.y[size_t(tok * rows + r)];
            if (std::isnan(got)) return INFINITY;
            worst = std::max(worst, std::fabs(got - ref) / (quant_bound + kQuantFloatSlack * magnitude + 1e-30));
        }
    }
    return worst;
}

// The kernel tests of each type family run per (ISA, type, threads) on their own CPU backend,
// skipped where this CPU lacks the ISA; Error is quant_matmul_error or kquant_matmul_error.
using KernelParam = std::tuple<CpuIsa, DType, int>;

template <double (*Error)(Backend &, DType, int64_t, int64_t, int64_t, uint32_t)>
class QuantKernelTest : public ::testing::TestWithParam<KernelParam> {
protected:
    void SetUp() override {
        const auto [isa, dtype, threads] = GetParam();
        if (!cpu_isa_supported(isa)) GTEST_SKIP() << "this CPU has no " << cpu_isa_name(isa);
        backend_ = std::make_unique<CpuBackend>(threads, isa);
    }

    double matmul_error(int64_t rows, int64_t cols, int64_t n_tokens, uint32_t seed) {
        return Error(*backend_, std::get<1>(GetParam()), rows, cols, n_tokens, seed);
    }

    std::unique_ptr<CpuBackend> backend_;
};

// The test names' suffix: ISA, type and threads.
inline std::string kernel_param_name(const ::testing::TestParamInfo<KernelParam> &info) {
    return std::string(cpu_isa_name(std::get<0>(info.param))) + "_" + std::string(dtype_name(std::get<1>(info.param))) +
           "_t" + std::to_string(std::get<2>(info.param));
}

}  // namespace mst::test
