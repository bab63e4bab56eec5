// Backend::matmul on compressed-tensors pack-quantized integers (PACKED_I4, PACKED_I8)
// against dequantise-then-multiply in double. The reference decodes each value from the
// format's definition written out here (unsigned value q + 2^(bits - 1), 32 / bits values
// per little-endian int32, first value in the lowest bits), not through core/packed_int.h.
// Every ISA this machine runs, 1 and 2 threads; rows and columns odd multiples of the
// group (3, 5, 7 groups of 32), group sizes the SIMD chunks do not divide (24, 40), one
// scale per row (channel). Bound: max |y - ref| / max |ref| < 1e-5; a wrong nibble order,
// offset or scale gives >= 1e-2.
#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <vector>

#include "core/error.h"
#include "cpu_op_fixture.h"
#include "expect_error.h"

namespace mst {
namespace {

using test::normalized_error;
using test::random_floats;

constexpr double kBound = 1e-5;

struct PackedMatrix {
    int bits;
    int64_t rows, cols, group;
    std::vector<uint32_t> words;   // [rows][ceil(cols * bits / 32)]
    std::vector<uint16_t> scales;  // bf16 [rows][cols / group]
    std::vector<int> codes;        // the signed integers, [rows][cols]

    int64_t row_words() const { return (cols * bits + 31) / 32; }
    double value(int64_t r, int64_t c) const {
        uint32_t s = uint32_t(scales[size_t(r * (cols / group) + c / group)]) << 16;
        float scale;
        std::memcpy(&scale, &s, sizeof scale);
        return double(codes[size_t(r * cols + c)]) * double(scale);
    }
    WeightView view() const {
        WeightView w{bits == 4 ? DType::PACKED_I4 : DType::PACKED_I8, words.data(), rows, cols};
        w.scales = reinterpret_cast<const uint8_t *>(scales.data());
        w.group_size = group;
        return w;
    }
};

PackedMatrix random_packed(int bits, int64_t rows, int64_t cols, int64_t group, uint32_t seed) {
    std::mt19937 rng(seed);
    const int half = 1 << (bits - 1);
    std::uniform_int_distribution<int> code(-half, half - 1);
    std::uniform_real_distribution<float> scale(0.002f, 0.05f);
    PackedMatrix m{bits, rows, cols, group, {}, {}, {}};
    m.words.assign(size_t(rows * m.row_words()), 0u);
    m.codes.resize(size_t(rows * cols));
    const int per_word = 32 / bits;
    for (int64_t r = 0; r < rows; ++r)
        for (int64_t c = 0; c < cols; ++c) {
            const int q = code(rng);
            m.codes[size_t(r * cols + c)] = q;
            m.words[size_t(r * m.row_words() + c / per_word)] |= uint32_t(q + half) << (bits * (c % per_word));
        }
    for (int64_t i = 0; i < rows * (cols / group); ++i) {
        const float s = scale(rng);
        uint32_t b;
        std::memcpy(&b, &s, sizeof b);
        m.scales.push_back(uint16_t(b >> 16));  // truncated to bf16: exact for the reference
    }
    return m;
}

std::vector<double> reference(const PackedMatrix &w, const std::vector<float> &x, int64_t n_tokens) {
    std::vector<double> y(size_t(n_tokens * w.rows), 0.0);
    for (int64_t t = 0; t < n_tokens; ++t)
        for (int64_t r = 0; r < w.rows; ++r) {
            double sum = 0.0;
            for (int64_t c = 0; c < w.cols; ++c) sum += w.value(r, c) * double(x[size_t(t * w.cols + c)]);
            y[size_t(t * w.rows + r)] = sum;
        }
    return y;
}

class CpuOpMatmulPackedInt : public test::CpuOpTest {
protected:
    void check(const PackedMatrix &w, int64_t n_tokens, uint32_t seed) {
        SCOPED_TRACE(::testing::Message() << "INT" << w.bits << " rows " << w.rows << " cols " << w.cols << " group "
                                          << w.group << " n_tokens " << n_tokens);
        const std::vector<float> x = random_floats(size_t(n_tokens * w.cols), seed);
        const size_t n_out = size_t(n_tokens * w.rows);
        const std::vector<float> y =
            test::run_guarded(n_out, [&](float *out) { backend_->matmul(w.view(), x.data(), out, n_tokens); });
        EXPECT_LT(normalized_error(y, reference(w, x, n_tokens)), kBound);
    }

    // A matrix and inputs drawn from one seed.
    void check_seeded(int bits, int64_t rows, int64_t cols, int64_t group, int64_t n_tokens, uint32_t seed) {
        check(random_packed(bits, rows, cols, group, seed), n_tokens, seed + 1000);
    }
};

TEST_P(CpuOpMatmulPackedInt, Int4GroupsOf32AtOddSizes) {
    uint32_t seed = 1;
    for (int64_t rows : {1, 3, 65, 131})
        for (int64_t cols : {96, 160, 224})  // 3, 5 and 7 groups
            for (int64_t n : {1, 3, 4, 7}) check_seeded(4, rows, cols, 32, n, seed++);
}

TEST_P(CpuOpMatmulPackedInt, Int8GroupsAndChannels) {
    uint32_t seed = 100;
    for (int64_t rows : {3, 67})
        for (int64_t n : {1, 5}) {
            check_seeded(8, rows, 96, 32, n, seed++);
            check_seeded(8, rows, 224, 224, n, seed++);  // one scale per row
        }
}

TEST_P(CpuOpMatmulPackedInt, GroupSizesTheChunksDoNotDivide) {
    uint32_t seed = 200;
    for (int bits : {4, 8}) {
        check_seeded(bits, 5, 72, 24, 3, seed++);  // 8 divides 24, 16 does not
        check_seeded(bits, 5, 120, 40, 2, seed++);  // 8 divides 40, 16 does not
        check_seeded(bits, 4, 36, 12, 2, seed++);  // neither: the scalar path
        check_seeded(bits, 3, 100, 100, 1, seed++);  // a channel of 100: padded last word
    }
}

TEST_P(CpuOpMatmulPackedInt, LargeMatrixAcrossThreads) {
    check(random_packed(4, 256, 2048, 32, 7), 1, 8);
    check(random_packed(4, 96, 1024, 128, 9), 6, 10);
}

TEST_P(CpuOpMatmulPackedInt, RefusesAGroupThatDoesNotDivideTheRow) {
    PackedMatrix w = random_packed(4, 2, 96, 32, 3);
    WeightView v = w.view();
    v.group_size = 40;
    std::vector<float> x(96, 1.0f), y(2);
    test::expect_error([&] { backend_->matmul(v, x.data(), y.data(), 1); }, MST_ERR_INVALID_ARGUMENT,
                       {"PACKED_I4", "group size 40", "96 columns"});
    v.group_size = 0;
    test::expect_error([&] { backend_->matmul(v, x.data(), y.data(), 1); }, MST_ERR_INVALID_ARGUMENT,
                       {"group size 0"});
    v = w.view();
    v.scales = nullptr;
    test::expect_error([&] { backend_->matmul(v, x.data(), y.data(), 1); }, MST_ERR_INVALID_ARGUMENT, {"scales"});
}

MST_INSTANTIATE_CPU_OP(CpuOpMatmulPackedInt);

}  // namespace
}  // namespace mst
