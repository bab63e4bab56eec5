// A random weight of any matmul type with its bytes kept alive, for the backends' op tests.
#pragma once

#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include "backends/backend.h"
#include "core/dtype.h"
#include "core/quant.h"
#include "cpu_op_fixture.h"

namespace mst::test {

struct TestWeight {
    std::vector<uint8_t> bytes, scales;
    WeightView view;

    TestWeight(DType t, int64_t rows, int64_t cols, uint32_t seed) {
        const std::vector<float> f = random_floats(size_t(rows * cols), seed);
        view.dtype = t;
        view.rows = rows;
        view.cols = cols;
        if (t == DType::MXFP4) {
            std::mt19937 rng(seed);
            bytes.resize(size_t(rows * cols / 2));
            scales.resize(size_t(rows * cols / 32));
            for (uint8_t &b : bytes) b = uint8_t(rng());
            for (uint8_t &s : scales) s = uint8_t(120 + rng() % 10);
            view.scales = scales.data();
        } else if (t == DType::F8_E4M3) {
            std::mt19937 rng(seed);
            bytes.resize(size_t(rows * cols));
            for (uint8_t &b : bytes) {
                b = uint8_t(rng());
                if ((b & 0x7f) == 0x7f) b &= 0xfe;  // no NaN codes
            }
        } else if (dtype_is_quantized(t)) {
            const uint64_t row_bytes = dtype_row_bytes(t, cols);
            bytes.resize(size_t(row_bytes * uint64_t(rows)));
            for (int64_t r = 0; r < rows; ++r) quantize_row(t, f.data() + r * cols, cols, bytes.data() + r * row_bytes);
        } else {
            bytes.resize(size_t(rows * cols) * dtype_size(t));
            for (size_t i = 0; i < f.size(); ++i) {
                if (t == DType::F32) std::memcpy(bytes.data() + 4 * i, &f[i], 4);
                if (t == DType::F16 || t == DType::BF16) {
                    const uint16_t h = t == DType::F16 ? f32_to_f16(f[i]) : f32_to_bf16(f[i]);
                    std::memcpy(bytes.data() + 2 * i, &h, 2);
                }
            }
        }
        view.data = bytes.data();
    }
};

}  // namespace mst::test
