// Random weights written directly in their stored form (BF16 values, Q8 / Q4 blocks):
// `moestream synth` never builds a float matrix to quantize, so it writes as fast as
// the disk takes it. Every value comes from a counter-based generator keyed by a stream
// (one per tensor or expert part), its row and its block, so the bytes depend on the
// seed alone, never on how rows are split between threads.
#pragma once

#include <cstdint>
#include <string_view>

#include "core/dtype.h"

namespace mst {

// What to put in a tensor.
struct WeightFill {
    enum Kind { Constant, Uniform } kind = Uniform;
    float value = 0.0f;  // Constant: every element
    float std = 0.0f;    // Uniform: zero-mean, this standard deviation
};

// A stream key for `name` under `seed`: distinct names give independent streams.
uint64_t weight_stream(uint64_t seed, std::string_view name);

// The e8m0 scale byte that gives MXFP4 blocks of uniformly random codes (the nibbles'
// values 0, +-0.5 .. +-6 equally likely) the deviation `std`, to the nearest power of 2.
uint8_t mxfp4_scale_for_std(float std);

// Writes rows [first_row, first_row + rows) of a [.., cols] tensor of `dtype` (BF16, F32,
// Q8 or Q4; Constant only for BF16 and F32; or U8, bytes: Uniform = random bytes such as
// MXFP4 codes, Constant = the byte `value`) to dst, which receives
// rows * dtype_row_bytes(dtype, cols) bytes. Q8 / Q4 blocks get one scale per tensor,
// chosen so that their codes, uniform over the type's range, have the asked deviation
// (Q8: d = std sqrt(3) / 127; Q4: d = std / sqrt(255 / 12), m = -7.5 d). Throws
// MST_ERR_INVALID_ARGUMENT for another dtype or a Constant quantized tensor.
void fill_weight_rows(DType dtype, const WeightFill &fill, uint64_t stream, int64_t first_row, int64_t rows,
                      int64_t cols, void *dst);

}  // namespace mst
