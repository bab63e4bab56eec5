// Test helpers for the block-quantized types: Gaussian data and whole matrices quantized
// and decoded row by row through the library's quantize_row / convert_to_f32.
#pragma once

#include <cstdint>
#include <vector>

#include "core/dtype.h"

namespace mst::test {

std::vector<float> gaussian(size_t n, uint32_t seed, float sigma = 1.0f, float mean = 0.0f);
// rows x cols floats into rows of dtype_row_bytes(t, cols) bytes.
std::vector<uint8_t> quantize_matrix(DType t, const std::vector<float> &x, int64_t rows, int64_t cols);
std::vector<float> dequantize_matrix(DType t, const std::vector<uint8_t> &q, int64_t rows, int64_t cols);

}  // namespace mst::test
