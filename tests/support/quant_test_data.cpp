#include "quant_test_data.h"

#include <random>

#include "core/quant.h"

namespace mst::test {

std::vector<float> gaussian(size_t n, uint32_t seed, float sigma, float mean) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> dist(mean, sigma);
    std::vector<float> v(n);
    for (float &f : v) f = dist(rng);
    return v;
}

std::vector<uint8_t> quantize_matrix(DType t, const std::vector<float> &x, int64_t rows, int64_t cols) {
    const uint64_t row_bytes = dtype_row_bytes(t, cols);
    std::vector<uint8_t> q(size_t(uint64_t(rows) * row_bytes));
    for (int64_t r = 0; r < rows; ++r) quantize_row(t, x.data() + r * cols, cols, q.data() + uint64_t(r) * row_bytes);
    return q;
}

std::vector<float> dequantize_matrix(DType t, const std::vector<uint8_t> &q, int64_t rows, int64_t cols) {
    const uint64_t row_bytes = dtype_row_bytes(t, cols);
    std::vector<float> x(size_t(rows * cols));
    for (int64_t r = 0; r < rows; ++r)
        convert_to_f32(t, q.data() + uint64_t(r) * row_bytes, x.data() + r * cols, size_t(cols));
    return x;
}

}  // namespace mst::test
