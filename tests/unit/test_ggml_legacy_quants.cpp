// The GGML legacy block types (Q4_0, Q5_0, Q5_1, IQ4_NL, IQ4_XS, MXFP4, and Q4_1 as
// moestream's Q4): sizes and names, decoding against a decoder written here from ggml's
// definitions, round-trip error bounds of the round-to-nearest quantizers, GGUF type
// mapping, and the CPU kernels against dequantize-then-multiply in double precision at odd
// sizes, for every ISA this machine runs.
//
// The kernels are held to the bound of tests/support/quant_matmul_check.h, as moestream's
// Q8 / Q4 are.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <random>
#include <tuple>
#include <vector>

#include "backends/cpu/cpu_backend.h"
#include "backends/cpu/kquant_kernels.h"
#include "backends/cpu/quant_kernels_ggml_legacy.h"
#include "core/error.h"
#include "core/ggml_legacy_quants.h"
#include "core/quant.h"
#include "cli_process.h"
#include "expect_error.h"
#include "quant_matmul_check.h"
#include "format/checkpoint.h"
#include "format/gguf_types.h"
#include "gguf_builder.h"
#include "gguf_model_writer.h"
#include "test_paths.h"

namespace mst {
namespace {

constexpr DType kTypes[] = {DType::GGML_Q4_0, DType::GGML_Q5_0,   DType::GGML_Q5_1,
                            DType::GGML_IQ4_NL, DType::GGML_IQ4_XS, DType::GGML_MXFP4};

using test::dequantize;
using test::gaussian;
using test::quantize;

// ---- an independent decoder, from ggml's dequantize_row_* definitions ----------------

float f16(const uint8_t *p) { return f16_to_f32(uint16_t(p[0] | (p[1] << 8))); }

const int kIq4[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};
const float kE2m1[16] = {0, 0.5f, 1, 1.5f, 2, 3, 4, 6, -0.0f, -0.5f, -1, -1.5f, -2, -3, -4, -6};

// One block of `t` at p decoded into out (32 values, 256 for IQ4_XS).
void reference_decode(DType t, const uint8_t *p, float *out) {
    const auto nib = [](const uint8_t *qs, int i) { return i < 16 ? qs[i] & 15 : qs[i - 16] >> 4; };
    switch (t) {
        case DType::Q4:  // Q4_1: f16 d, f16 m, 16 bytes
            for (int i = 0; i < 32; ++i) out[i] = f16(p) * float(nib(p + 4, i)) + f16(p + 2);
            return;
        case DType::GGML_Q4_0:
            for (int i = 0; i < 32; ++i) out[i] = f16(p) * float(nib(p + 2, i) - 8);
            return;
        case DType::GGML_Q5_0:
        case DType::GGML_Q5_1: {
            const bool q51 = t == DType::GGML_Q5_1;
            const uint8_t *qh = p + (q51 ? 4 : 2);
            for (int i = 0; i < 32; ++i) {
                const int high = (qh[i / 8] >> (i % 8)) & 1;
                const int q = nib(qh + 4, i) | (high << 4);
                out[i] = q51 ? f16(p) * float(q) + f16(p + 2) : f16(p) * float(q - 16);
            }
            return;
        }
        case DType::GGML_IQ4_NL:
            for (int i = 0; i < 32; ++i) out[i] = f16(p) * float(kIq4[nib(p + 2, i)]);
            return;
        case DType::GGML_IQ4_XS: {
            const int scales_h = p[2] | (p[3] << 8);
            for (int s = 0; s < 8; ++s) {
                const int low = s % 2 ? p[4 + s / 2] >> 4 : p[4 + s / 2] & 15;
                const int ls = low | (((scales_h >> (2 * s)) & 3) << 4);
                for (int i = 0; i < 32; ++i) out[32 * s + i] = f16(p) * float(ls - 32) * float(kIq4[nib(p + 8 + 16 * s, i)]);
            }
            return;
        }
        case DType::GGML_MXFP4:
            for (int i = 0; i < 32; ++i) out[i] = std::ldexp(kE2m1[nib(p + 1, i)], int(p[0]) - 127);
            return;
        default:
            FAIL() << "no reference decoder for " << dtype_name(t);
    }
}

TEST(GgmlLegacyTypes, SizesNamesAndGgufMapping) {
    const struct { DType t; uint32_t ggml; size_t bytes, elems; } kRows[] = {
        {DType::GGML_Q4_0, ggml_type::Q4_0, 18, 32},      {DType::GGML_Q5_0, ggml_type::Q5_0, 22, 32},
        {DType::GGML_Q5_1, ggml_type::Q5_1, 24, 32},      {DType::GGML_IQ4_NL, ggml_type::IQ4_NL, 18, 32},
        {DType::GGML_IQ4_XS, ggml_type::IQ4_XS, 136, 256}, {DType::GGML_MXFP4, ggml_type::MXFP4, 17, 32},
        {DType::Q4, ggml_type::Q4_1, 20, 32},             {DType::Q8, ggml_type::Q8_0, 34, 32},
    };
    for (const auto &row : kRows) {
        EXPECT_EQ(dtype_size(row.t), row.bytes) << dtype_name(row.t);
        EXPECT_EQ(dtype_block_elems(row.t), row.elems) << dtype_name(row.t);
        EXPECT_EQ(dtype_row_bytes(row.t, int64_t(row.elems) * 3), row.bytes * 3) << dtype_name(row.t);
        EXPECT_TRUE(dtype_is_quantized(row.t)) << dtype_name(row.t);
        EXPECT_EQ(dtype_from_name(dtype_name(row.t)), row.t) << dtype_name(row.t);
        EXPECT_EQ(ggml_type_to_dtype(row.ggml), row.t) << ggml_type_name(row.ggml);
        EXPECT_EQ(dtype_to_ggml_type(row.t), row.ggml) << dtype_name(row.t);
        // The ggml table's block (from ggml's type traits) is the block moestream reads.
        const auto info = ggml_type_info(row.ggml);
        ASSERT_TRUE(info);
        EXPECT_EQ(info->block_bytes, row.bytes) << info->name;
        EXPECT_EQ(info->block_elems, row.elems) << info->name;
    }
    EXPECT_EQ(dtype_name(DType::GGML_IQ4_XS), "IQ4_XS");
    EXPECT_NE(DType::GGML_MXFP4, DType::MXFP4);  // the gpt-oss form keeps its scales apart
    EXPECT_EQ(dtype_to_ggml_type(DType::MXFP4), std::nullopt);
    EXPECT_EQ(ggml_type_to_dtype(ggml_type::IQ2_XXS), std::nullopt);
}

// Random bytes (with sane f16 scales) decode as ggml defines each type; for Q4_1 this is
// what makes moestream's Q4 block and GGML Q4_1 the same bytes.
TEST(GgmlLegacyTypes, DecodingMatchesGgmlDefinitions) {
    std::mt19937 rng(7);
    for (DType t : {DType::Q4, DType::GGML_Q4_0, DType::GGML_Q5_0, DType::GGML_Q5_1, DType::GGML_IQ4_NL,
                    DType::GGML_IQ4_XS, DType::GGML_MXFP4}) {
        const int64_t elems = int64_t(dtype_block_elems(t)), blocks = 3;
        std::vector<uint8_t> bytes(dtype_size(t) * blocks);
        for (uint8_t &b : bytes) b = uint8_t(rng());
        for (int64_t b = 0; b < blocks; ++b) {
            uint8_t *p = bytes.data() + b * int64_t(dtype_size(t));
            if (t == DType::GGML_MXFP4) {
                p[0] = uint8_t(100 + rng() % 50);
                continue;
            }
            const int halves = t == DType::Q4 || t == DType::GGML_Q5_1 ? 2 : 1;  // d (and m)
            for (int h = 0; h < halves; ++h) {
                const uint16_t v = f32_to_f16(std::ldexp(float(rng() % 1000) - 500.0f, -12));
                p[2 * h] = uint8_t(v & 0xff);
                p[2 * h + 1] = uint8_t(v >> 8);
            }
        }
        std::vector<float> got(size_t(blocks * elems)), want(got.size());
        dequantize_row(t, bytes.data(), got.data(), blocks * elems);
        for (int64_t b = 0; b < blocks; ++b) reference_decode(t, bytes.data() + b * int64_t(dtype_size(t)), &want[size_t(b * elems)]);
        for (size_t i = 0; i < got.size(); ++i) ASSERT_EQ(got[i], want[i]) << dtype_name(t) << " element " << i;
        // A prefix decodes the same values.
        std::vector<float> prefix(size_t(elems + 5));
        dequantize_row(t, bytes.data(), prefix.data(), elems + 5);
        for (size_t i = 0; i < prefix.size(); ++i) ASSERT_EQ(prefix[i], want[i]) << dtype_name(t);
    }
}

// Per element: |x - dequantized| within what the type's levels allow around the scale the
// quantizer picks, plus 2^-10 of it for the f16 rounding of the scale. RMS over Gaussian
// rows (relative to sigma) is printed and bounded at about 1.2x what was measured. The
// kernel bound below is met with margin: the worst output reaches 0.34 of it.
TEST(GgmlLegacyTypes, RoundTripErrorIsBounded) {
    const struct { DType t; double rms_bound; } kRms[] = {
        // measured: 0.0868, 0.0433, 0.0379, 0.0812, 0.0814, 0.1196
        {DType::GGML_Q4_0, 0.105}, {DType::GGML_Q5_0, 0.052}, {DType::GGML_Q5_1, 0.046},
        {DType::GGML_IQ4_NL, 0.098}, {DType::GGML_IQ4_XS, 0.098}, {DType::GGML_MXFP4, 0.145},
    };
    constexpr int64_t kRows = 64, kCols = 512;
    const std::vector<float> x = gaussian(size_t(kRows * kCols), 11, 0.7f, 0.1f);
    for (const auto &[t, rms_bound] : kRms) {
        const std::vector<uint8_t> q = quantize(t, x, kRows, kCols);
        const std::vector<float> y = dequantize(t, q, kRows, kCols);
        double sq = 0.0;
        for (int64_t b = 0; b < kRows * kCols; b += 32) {
            double amax = 0.0, lo = INFINITY, hi = -INFINITY;
            for (int64_t i = b; i < b + 32; ++i) {
                amax = std::max(amax, double(std::fabs(x[size_t(i)])));
                lo = std::min(lo, double(x[size_t(i)]));
                hi = std::max(hi, double(x[size_t(i)]));
            }
            double bound = INFINITY;
            switch (t) {
                case DType::GGML_Q4_0: bound = amax / 8; break;           // the far side clips one step
                case DType::GGML_Q5_0: bound = amax / 16; break;
                case DType::GGML_Q5_1: bound = (hi - lo) / 62 + std::fabs(lo) / 1024; break;
                case DType::GGML_IQ4_NL: bound = amax * 14 / 127; break;  // 113 against -127
                case DType::GGML_MXFP4: bound = amax / 3; break;          // half of the top gap (4 to 6), 6 s >= amax / 2
                default: break;                                           // IQ4_XS: RMS only
            }
            bound *= 1.0 + 1.0 / 512;
            for (int64_t i = b; i < b + 32; ++i) {
                const double e = std::fabs(double(x[size_t(i)]) - y[size_t(i)]);
                sq += e * e;
                ASSERT_LE(e, bound) << dtype_name(t) << " element " << i;
            }
        }
        const double rms = std::sqrt(sq / double(kRows * kCols)) / 0.7;
        std::printf("%s: RMS error / sigma %.4f\n", std::string(dtype_name(t)).c_str(), rms);
        EXPECT_LT(rms, rms_bound) << dtype_name(t);
    }
}

TEST(GgmlLegacyTypes, ZeroBlocksAndBadInputAreHandled) {
    for (DType t : kTypes) {
        const int64_t n = int64_t(dtype_block_elems(t));
        std::vector<float> x(size_t(n), 0.0f), y(size_t(n), 1.0f);
        std::vector<uint8_t> q(dtype_size(t));
        quantize_row(t, x.data(), n, q.data());
        dequantize_row(t, q.data(), y.data(), n);
        EXPECT_EQ(y, x) << dtype_name(t);
        test::expect_error([&] { quantize_row(t, x.data(), n - 1, q.data()); }, MST_ERR_INVALID_ARGUMENT,
                           {std::string(dtype_name(t)), "not a multiple of its"});
        x[3] = NAN;
        test::expect_error([&] { quantize_row(t, x.data(), n, q.data()); }, MST_ERR_UNSUPPORTED, {"not finite"});
    }
}

// ---- kernels ----------------------------------------------------------------------------

class GgmlLegacyKernels : public test::QuantKernelTest<test::quant_matmul_error> {};

TEST_P(GgmlLegacyKernels, MatchDequantizedReferenceAtOddSizes) {
    const int64_t block = int64_t(dtype_block_elems(std::get<1>(GetParam())));
    double worst = 0.0;
    uint32_t seed = 1;
    for (int64_t rows : {1, 3, 5, 17})
        for (int64_t blocks : {1, 2, 3, 5})
            for (int64_t tokens : {1, 2, 3, 4, 5, 17}) {
                const double err = matmul_error(rows, blocks * block, tokens, seed++);
                EXPECT_LE(err, 1.0) << "rows " << rows << " cols " << blocks * block << " tokens " << tokens;
                worst = std::max(worst, err);
            }
    std::printf("worst error / bound: %.3f\n", worst);
    RecordProperty("worst_error_over_bound", std::to_string(worst));
}

TEST_P(GgmlLegacyKernels, LargeMatmulIsThreadedAndCorrect) {
    // Enough work to take the parallel path, rows not a multiple of any tile.
    EXPECT_LE(matmul_error(301, 512, 7, 99), 1.0);
    EXPECT_LE(matmul_error(1029, 256, 1, 98), 1.0);
}

TEST_P(GgmlLegacyKernels, RowsOffTheBlockAndNullPointersAreRefused) {
    const DType t = std::get<1>(GetParam());
    const int64_t block = int64_t(dtype_block_elems(t));
    std::vector<uint8_t> w(dtype_size(t) * 4);
    std::vector<float> x(size_t(4 * block)), y(8, 5.0f);
    test::expect_error([&] { backend_->matmul(WeightView{t, w.data(), 2, block + 16}, x.data(), y.data(), 1); },
                       MST_ERR_INVALID_ARGUMENT, {std::string(dtype_name(t)), "not a multiple of its"});
    test::expect_error([&] { backend_->matmul(WeightView{t, nullptr, 2, block}, x.data(), y.data(), 1); },
                       MST_ERR_INVALID_ARGUMENT, {"null"});
    backend_->matmul(WeightView{t, nullptr, 3, 0}, nullptr, y.data(), 2);
    EXPECT_EQ(std::vector<float>(y.begin(), y.begin() + 6), std::vector<float>(6, 0.0f));
}

#if defined(__x86_64__)
// Each float kernel table brings its own GGML kernels, so that MST_CPU_ISA picks them all.
TEST(GgmlKernelTables, FollowTheFloatKernelTable) {
    EXPECT_EQ(&ggml_legacy_kernels_for(cpu_kernels_avx512()), &ggml_legacy_kernels_avx512());
    EXPECT_EQ(&ggml_legacy_kernels_for(cpu_kernels_avx2()), &ggml_legacy_kernels_avx2());
    EXPECT_EQ(&kquant_kernels_for(cpu_kernels_avx512()), &kquant_kernels_avx512());
    EXPECT_EQ(&kquant_kernels_for(cpu_kernels_avx2()), &kquant_kernels_avx2());
    EXPECT_EQ(&kquant_kernels_for(cpu_kernels_scalar()), &kquant_kernels_scalar());
}
#endif

INSTANTIATE_TEST_SUITE_P(Isa, GgmlLegacyKernels,
                         ::testing::Combine(::testing::Values(CpuIsa::Scalar, CpuIsa::Avx2, CpuIsa::Avx512),
                                            ::testing::ValuesIn(kTypes), ::testing::Values(1, 2)),
                         test::kernel_param_name);

// ---- GGUF -------------------------------------------------------------------------------

// A tensor of a type moestream has no kernel for is refused naming the tensor and type,
// and a type number ggml never defined is refused as unknown.
TEST(GgmlLegacyGguf, UnsupportedAndUnknownTypesAreNamed) {
    const std::string dir = test::make_temp_dir("ggml_legacy_gguf");
    test::GgufBuilder b;
    b.add_string("general.architecture", "qwen3moe");
    b.add_tensor("blk.0.ffn_gate_exps.weight", ggml_type::IQ2_XXS, {256, 1, 2}, std::string(2 * 66, '\0'));
    b.write(dir + "/iq2.gguf");
    test::expect_error([&] { Checkpoint::open(dir + "/iq2.gguf"); }, MST_ERR_UNSUPPORTED,
                       {"tensor 'blk.0.ffn_gate_exps.weight'", "ggml type IQ2_XXS", "cannot compute on"});
    std::string raw = b.build();
    // The type field follows the tensor's name and its dimensions (n_dims u32, 3 x u64).
    const std::string name = "blk.0.ffn_gate_exps.weight";
    const size_t at = raw.find(name) + name.size() + 4 + 3 * 8;
    raw[at] = char(99);
    {
        std::FILE *f = std::fopen((dir + "/unknown.gguf").c_str(), "wb");
        ASSERT_NE(f, nullptr);
        std::fwrite(raw.data(), 1, raw.size(), f);
        std::fclose(f);
    }
    test::expect_error([&] { Checkpoint::open(dir + "/unknown.gguf"); }, MST_ERR_UNSUPPORTED,
                       {"blk.0.ffn_gate_exps.weight", "unknown ggml type 99"});
    std::filesystem::remove_all(dir);
}

// `moestream info` names each group's ggml types, the legacy ones included, and the model
// behind them loads (the experts of each of the two files are Q5_1, MXFP4).
TEST(GgmlLegacyGguf, InfoNamesTheTypes) {
    const std::string dir = test::make_temp_dir("ggml_legacy_info");
    for (const auto &[type, name] : {std::pair{test::GgufWeightType::Q5_1, "Q5_1"}, {test::GgufWeightType::MXFP4, "MXFP4"}}) {
        const std::string path = dir + "/tiny_" + name + ".gguf";
        test::write_qwen3moe_gguf(test::data_path("qwen3_moe_tiny"), path, type);
        const test::CliResult r = test::run_cli(MST_CLI_PATH, {"info", "-m", path});
        ASSERT_EQ(r.status, 0) << r.err;
        EXPECT_NE(r.out.find(std::string("ffn_gate_exps.weight")), std::string::npos) << r.out;
        EXPECT_NE(r.out.find(std::string(name) + " x"), std::string::npos) << r.out;
        EXPECT_NE(r.out.find("architecture:"), std::string::npos) << r.out;  // the model loaded
    }
    std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace mst
