// The one-token product kernels' shapes chosen at run time (MST_VULKAN_MATVEC_TUNING,
// backends/vulkan/matvec_tuning.h) and their q4 unit (MST_VULKAN_Q4_BLOCK): the value's
// grammar and rules (no device needed); then, on a device, every shape of the sweep's grid
// (bench/matvec_sweep.h) against the CPU for the dense products (matvec.comp) and the
// routed experts' fused kernels (matvec_id_swiglu.comp, matvec_id_combine.comp), with LANES
// below, at and above the subgroup size (the shared-memory tree, one subgroup a row, a
// row of several subgroups); the device's limits; the environment variable.
#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "backends/backend.h"
#include "backends/cpu/cpu_backend.h"
#include "backends/device_experts.h"
#include "core/error.h"
#include "cpu_op_fixture.h"
#include "expect_error.h"
#include "scoped_env.h"
#include "test_weight.h"
#include "vulkan_suite.h"

#ifdef MST_HAVE_VULKAN
#include "backends/vulkan/matvec_tuning.h"
#include "bench/matvec_sweep.h"
#endif

namespace mst {
namespace {

#ifdef MST_HAVE_VULKAN

using test::normalized_error;
using test::random_floats;
using test::ScopedEnv;
using test::TestWeight;

// As test_vulkan_matvec: float sums in other orders; for Q8/Q4 the CPU rounds activations
// to 16-bit integers per block, the GPU does not.
constexpr double kFloatBound = 2e-5, kQuantBound = 3e-4;

const MatvecTuning kDefaults{{32, 4}, {32, 4}, {32, 4}};

TEST(MatvecTuning, ParsesEachFamilyOverTheDefaults) {
    MatvecTuning t;
    std::string why;
    ASSERT_TRUE(parse_matvec_tuning("dense=16x8", kDefaults, t, why)) << why;
    EXPECT_EQ(t, (MatvecTuning{{16, 8}, {32, 4}, {32, 4}}));
    ASSERT_TRUE(parse_matvec_tuning("combine=8x16,dense=64x2,swiglu=4x1", kDefaults, t, why)) << why;
    EXPECT_EQ(t, (MatvecTuning{{64, 2}, {4, 1}, {8, 16}}));
    EXPECT_EQ(t.name(), "dense=64x2,swiglu=4x1,combine=8x16");
    ASSERT_TRUE(parse_matvec_tuning("default", kDefaults, t, why)) << why;
    EXPECT_EQ(t, kDefaults);
    // What name() prints is what the sweep tells the user to set: it parses back.
    const MatvecTuning odd{{128, 8}, {16, 2}, {256, 4}};
    ASSERT_TRUE(parse_matvec_tuning(odd.name(), kDefaults, t, why)) << why;
    EXPECT_EQ(t, odd);
    // Several rows a lane (the dense family's PER_LANE): a third number; 1 is the two-number shape.
    ASSERT_TRUE(parse_matvec_tuning("dense=32x4x4,combine=16x8", kDefaults, t, why)) << why;
    EXPECT_EQ(t, (MatvecTuning{{32, 4, 4}, {32, 4}, {16, 8}}));
    EXPECT_EQ(t.name(), "dense=32x4x4,swiglu=32x4,combine=16x8");
    EXPECT_EQ(t.dense.rows_per_group(), 16u);
    ASSERT_TRUE(parse_matvec_tuning(t.name(), kDefaults, t, why)) << why;
    EXPECT_EQ(t, (MatvecTuning{{32, 4, 4}, {32, 4}, {16, 8}}));
    ASSERT_TRUE(parse_matvec_tuning("dense=64x2x1", kDefaults, t, why)) << why;
    EXPECT_EQ(t.dense, (MatvecShape{64, 2}));
    EXPECT_EQ(t.dense.name(), "64x2");
    ASSERT_TRUE(parse_matvec_tuning("swiglu=64x2x3", kDefaults, t, why)) << why;
    EXPECT_EQ(t, (MatvecTuning{{32, 4}, {64, 2, 3}, {32, 4}}));
    ASSERT_TRUE(parse_matvec_tuning("combine=8x16x2", kDefaults, t, why)) << why;
    EXPECT_EQ(t, (MatvecTuning{{32, 4}, {32, 4}, {8, 16, 2}}));
}

TEST(MatvecTuning, NamesWhatIsWrongAndLeavesTheTuningAlone) {
    const struct {
        const char *text, *says;
    } bad[] = {{"", "expected `default`"},
               {"dense", "expected `default`"},
               {"dense=32x4,", "expected `default`"},
               {"attention=32x4", "unknown family 'attention'"},
               {"dense=32x4,dense=16x8", "family 'dense' given twice"},
               {"dense=32", "is not LANESxROWS"},
               {"dense=32x", "is not LANESxROWS"},
               {"dense=x4", "is not LANESxROWS"},
               {"dense=32x4x", "is not LANESxROWS"},
               {"dense=32x4x2x1", "is not LANESxROWS"},
               {"dense=32x4x0", "PER_LANE must be 1 to 8"},
               {"dense=32x4x9", "PER_LANE must be 1 to 8"},
               {"combine=32x4x9", "PER_LANE must be 1 to 8"},
               {"dense=-32x4", "is not LANESxROWS"},
               {"dense=24x4", "LANES must be a power of two from 4 to 256"},
               {"swiglu=2x4", "LANES must be a power of two from 4 to 256"},
               {"swiglu=512x1", "LANES must be a power of two from 4 to 256"},
               {"combine=32x0", "ROWS must be 1 to 64"},
               {"combine=4x65", "ROWS must be 1 to 64"},
               {"combine=256x8", "more than 1024 a workgroup"}};
    for (const auto &b : bad) {
        MatvecTuning t{{8, 8}, {8, 8}, {8, 8}};
        std::string why;
        EXPECT_FALSE(parse_matvec_tuning(b.text, kDefaults, t, why)) << b.text;
        EXPECT_NE(why.find(b.says), std::string::npos) << b.text << ": " << why;
        EXPECT_NE(why.find(std::string("'") + b.text + "'"), std::string::npos) << "names the value: " << why;
        EXPECT_EQ(t, (MatvecTuning{{8, 8}, {8, 8}, {8, 8}})) << "left as it was: " << b.text;
    }
}

class VulkanMatvecTuning : public test::VulkanSuite {
protected:
    void TearDown() override {
        if (!vulkan_) return;
        std::string why;
        vulkan_->set_matvec_tuning(vulkan_->default_matvec_tuning(), why);
        vulkan_->set_q4_block(false);
    }
    CpuBackend cpu_{2, cpu_isa_best()};
};

// One token's dense product of t at rows x cols against the CPU.
double dense_error(Backend &gpu, CpuBackend &cpu, DType t, int64_t rows, int64_t cols, uint32_t seed) {
    const TestWeight w(t, rows, cols, seed);
    const std::vector<float> x = random_floats(size_t(cols), seed + 1);
    std::vector<float> want(static_cast<size_t>(rows)), got(want.size(), NAN);
    cpu.matmul(w.view, x.data(), want.data(), 1);
    gpu.matmul(w.view, x.data(), got.data(), 1);
    return normalized_error(got, want);
}

constexpr int32_t kExperts = 9;

// Every expert of one layer (gate, up, down of type t), keyed for the layer.
struct Experts {
    int64_t layer, hidden, inter;
    std::vector<std::unique_ptr<TestWeight>> parts;
    std::vector<WeightView> gate, up, down;
    Experts(DType t, int64_t layer_, int64_t hidden_, int64_t inter_, uint32_t seed)
        : layer(layer_), hidden(hidden_), inter(inter_) {
        for (int32_t e = 0; e < kExperts; ++e)
            for (int p = 0; p < 3; ++p) {
                parts.push_back(std::make_unique<TestWeight>(t, p < 2 ? inter : hidden, p < 2 ? hidden : inter,
                                                             seed + uint32_t(3 * e + p)));
                parts.back()->view.expert_key = make_expert_key(layer, e, p);
                (p == 0 ? gate : p == 1 ? up : down).push_back(parts.back()->view);
            }
    }
    SwigluExpertSet set() const { return SwigluExpertSet{layer, kExperts, gate.data(), up.data(), down.data()}; }
};

// x + the k chosen experts of h through the fused id kernels (routed_swiglu_by_id_add)
// against the CPU's routed_swiglu.
double experts_error(VulkanBackend &gpu, CpuBackend &cpu, const Experts &L, int32_t k, uint32_t seed) {
    std::vector<int32_t> ids(kExperts);
    std::iota(ids.begin(), ids.end(), 0);
    std::shuffle(ids.begin(), ids.end(), std::mt19937(seed));
    ids.resize(size_t(k));
    const std::vector<float> w = random_floats(size_t(k), seed + 1, 0.1f, 1.0f);
    const std::vector<float> h = random_floats(size_t(L.hidden), seed + 2);
    const std::vector<float> start = random_floats(size_t(L.hidden), seed + 3);
    std::vector<float> want = start, got = start;
    static const int64_t token0 = 0;
    std::vector<SwigluExpertUse> uses;
    for (size_t j = 0; j < ids.size(); ++j) {
        const size_t e = size_t(ids[j]);
        uses.push_back(SwigluExpertUse{L.gate[e], L.up[e], L.down[e], &token0, &w[j], 1});
    }
    cpu.routed_swiglu(h.data(), want.data(), 1, L.hidden, uses.data(), uses.size());
    DeviceExperts *by_id = device_experts(gpu);
    EXPECT_TRUE(by_id->routed_swiglu_by_id_add(L.layer, h.data(), got.data(), L.hidden, ids.data(), w.data(), k));
    gpu.sync();
    return normalized_error(got, want);
}

// Every shape of the sweep's default grid the device takes, each family at it, against the
// CPU: dense q4/q8/bf16 products (rows no workgroup divides, rows of one unit-step and
// of several unrolled steps) and the fused experts (q4 and bf16, k of 3 and 8), both q4 units.
TEST_F(VulkanMatvecTuning, EveryGridShapeMatchesTheCpu) {
    DeviceExperts *by_id = device_experts(*vulkan_);
    ASSERT_NE(by_id, nullptr);
    const Experts q4(DType::Q4, 300, 256, 96, 11), bf16(DType::BF16, 301, 72, 40, 12);
    ASSERT_TRUE(by_id->make_experts_resident(q4.set()));
    ASSERT_TRUE(by_id->make_experts_resident(bf16.set()));
    // The sweep's grid, and LANES 4 and 128 beside it: below and above every subgroup size
    // the backend takes subgroupAdd with (8 to 128; lavapipe's is 8, an NVIDIA GPU's 32).
    std::vector<MatvecShape> grid = matvec_sweep::default_grid();
    grid.push_back({4, 4});
    grid.push_back({128, 2});
    // Several rows a lane beside the grid's: the most a lane takes, with 9 and 67 rows
    // leaving lanes whose rows run past the last; and lanes narrower than lavapipe's subgroup.
    grid.push_back({32, 2, 8});
    grid.push_back({4, 4, 3});
    int taken = 0;
    for (const MatvecShape &s : grid) {
        std::string why;
        if (!vulkan_->set_matvec_tuning(MatvecTuning::at(s), why)) {
            ADD_FAILURE() << s.name() << " refused on this device: " << why;
            continue;
        }
        ++taken;
        for (const bool q4_block : {true, false}) {
            vulkan_->set_q4_block(q4_block);
            const std::string what = s.name() + (q4_block ? " q4 block units" : " q4 quarter units");
            const uint64_t before = vulkan_->matvec_dispatches();
            for (const DType t : {DType::Q4, DType::Q8, DType::BF16}) {
                if (!q4_block && t != DType::Q4) continue;
                const double bound = t == DType::BF16 ? kFloatBound : kQuantBound;
                EXPECT_LT(dense_error(*vulkan_, cpu_, t, 67, 544, 40), bound) << what << " " << dtype_name(t);
                EXPECT_LT(dense_error(*vulkan_, cpu_, t, 9, 2048, 41), bound) << what << " " << dtype_name(t);
            }
            EXPECT_EQ(vulkan_->matvec_dispatches(), before + (q4_block ? 6u : 2u)) << what << ": took matvec.comp";
            for (const int32_t k : {3, 8}) {
                if (!q4_block && k != 8) continue;
                EXPECT_LT(experts_error(*vulkan_, cpu_, q4, k, 50 + uint32_t(k)), kQuantBound) << what << " k=" << k;
                if (q4_block) {
                    EXPECT_LT(experts_error(*vulkan_, cpu_, bf16, k, 60 + uint32_t(k)), kFloatBound)
                        << what << " bf16 k=" << k;
                }
            }
        }
    }
    EXPECT_EQ(taken, int(grid.size()));
}

// A shape the shaders' rules or the device refuse leaves the tuning as it was.
TEST_F(VulkanMatvecTuning, RefusedShapesKeepTheTuning) {
    std::string why;
    const MatvecTuning before = vulkan_->matvec_tuning();
    EXPECT_FALSE(vulkan_->set_matvec_tuning(MatvecTuning{{32, 4}, {24, 4}, {32, 4}}, why));
    EXPECT_NE(why.find("swiglu: LANES must be a power of two"), std::string::npos) << why;
    EXPECT_FALSE(vulkan_->set_matvec_tuning(MatvecTuning{{32, 4}, {32, 4}, {256, 8}}, why));
    EXPECT_NE(why.find("combine"), std::string::npos) << why;
    EXPECT_FALSE(vulkan_->set_matvec_tuning(MatvecTuning{{32, 4, 2}, {32, 4, 2}, {32, 4, 0}}, why));
    EXPECT_NE(why.find("combine: PER_LANE must be 1 to 8"), std::string::npos) << why;
    EXPECT_EQ(vulkan_->matvec_tuning(), before);
}

TEST_F(VulkanMatvecTuning, ByEnvironment) {
    {
        const ScopedEnv env("MST_VULKAN_MATVEC_TUNING", "swiglu=16x8,combine=8x16");
        VulkanBackend b(BackendOptions{}, false);
        EXPECT_EQ(b.matvec_tuning().dense, b.default_matvec_tuning().dense);
        EXPECT_EQ(b.matvec_tuning().swiglu, (MatvecShape{16, 8}));
        EXPECT_EQ(b.matvec_tuning().combine, (MatvecShape{8, 16}));
        EXPECT_LT(dense_error(b, cpu_, DType::Q4, 67, 544, 70), kQuantBound);
    }
    {
        const ScopedEnv env("MST_VULKAN_MATVEC_TUNING", "dense=32x4x4");
        VulkanBackend b(BackendOptions{}, false);
        EXPECT_EQ(b.matvec_tuning().dense, (MatvecShape{32, 4, 4}));
        EXPECT_EQ(b.matvec_tuning().swiglu, b.default_matvec_tuning().swiglu);
        EXPECT_LT(dense_error(b, cpu_, DType::BF16, 67, 544, 72), kFloatBound);
    }
    {
        const ScopedEnv env("MST_VULKAN_MATVEC_TUNING", "dense=32x4,swiglu=3x4");
        test::expect_error([] { VulkanBackend b(BackendOptions{}, false); }, MST_ERR_INVALID_ARGUMENT,
                           {"MST_VULKAN_MATVEC_TUNING", "'dense=32x4,swiglu=3x4'", "LANES must be a power of two"});
    }
    {
        const ScopedEnv env("MST_VULKAN_Q4_BLOCK", "1");
        VulkanBackend b(BackendOptions{}, false);
        EXPECT_TRUE(b.q4_block());
        EXPECT_LT(dense_error(b, cpu_, DType::Q4, 67, 544, 71), kQuantBound);
    }
    {
        const ScopedEnv env("MST_VULKAN_NORM_X_SHARED", "1");
        VulkanBackend b(BackendOptions{}, false);
        EXPECT_TRUE(b.norm_x_shared());
    }
    VulkanBackend b(BackendOptions{}, false);
    EXPECT_FALSE(b.norm_x_shared()) << "x normalised where each lane reads it by default";
    EXPECT_FALSE(b.q4_block()) << "quarter-block q4 units by default (faster on an H100)";
    EXPECT_EQ(b.matvec_tuning(), b.default_matvec_tuning());
}

TEST(MatvecSweep, ChargesEachProfileKeyToItsFamily) {
    EXPECT_EQ(matvec_sweep::family_of("matvec_norm_bf16_sg 1024x1x1"), matvec_sweep::kDense);
    EXPECT_EQ(matvec_sweep::family_of("matvec_add_bf16 512x1x1"), matvec_sweep::kDense);
    EXPECT_EQ(matvec_sweep::family_of("matvec_bf16_sg 37984x1x1"), matvec_sweep::kDense);
    EXPECT_EQ(matvec_sweep::family_of("norm_vec4_sg 1x1x1"), matvec_sweep::kDense);
    EXPECT_EQ(matvec_sweep::family_of("matmul_bf16_sg 65535x3x1"), matvec_sweep::kDense);
    EXPECT_EQ(matvec_sweep::family_of("matvec_id_swiglu_q4_sg 192x1x8"), matvec_sweep::kSwiglu);
    EXPECT_EQ(matvec_sweep::family_of("matvec_id_combine_q4_sg 512x1x1"), matvec_sweep::kCombine);
    EXPECT_EQ(matvec_sweep::family_of("matvec_id_q4_sg 512x1x8"), matvec_sweep::kCombine) << "the down products";
    EXPECT_EQ(matvec_sweep::family_of("combine_id 8x1x1"), matvec_sweep::kCombine);
    EXPECT_EQ(matvec_sweep::family_of("attention_sg 32x1x1"), -1);
    EXPECT_EQ(matvec_sweep::family_of("copy_table 1x1x1"), -1);
}

// bench_vulkan --matvec-sweep's checking, timing and choice (bench/matvec_sweep.h) at a small
// model's shapes: every shape of the grid runs right and is timed each round in every
// family; a shape whose results go wrong (here on purpose, as a broken kernel would) is
// reported wrong, not timed and never chosen; the best tuning it prints parses back and
// gives the default's results.
TEST(MatvecSweep, TimesEveryShapeAndRefusesOneThatGoesWrong) {
    const ScopedEnv profile("MST_VULKAN_PROFILE", "2");
    std::unique_ptr<VulkanBackend> b;
    try {
        b = std::make_unique<VulkanBackend>(BackendOptions{}, false);
    } catch (const Error &e) {
        GTEST_SKIP() << "no Vulkan device found: " << e.what();
    }
    matvec_sweep::ModelShape s;
    s.hidden = 256;
    s.q_rows = 256;
    s.kv_rows = 64;
    s.experts = 8;
    s.inter = 96;
    s.top_k = 3;
    s.vocab = 500;
    const matvec_sweep::Model m(*b, s, 2);
    matvec_sweep::Options opt;
    opt.layers = 2;
    opt.rounds = 2;
    opt.grid = {{8, 4}, {16, 2}, {4, 8}, {64, 1}};
    const MatvecShape broken{16, 2};
    opt.after_run = [&](VulkanBackend &gpu, std::vector<std::vector<float>> &out) {
        if (gpu.matvec_tuning().combine == broken) out[out.size() - 2][5] += 1.0f;  // as a kernel gone wrong would
    };
    const matvec_sweep::Report rep = matvec_sweep::run(*b, m, opt);
    ASSERT_GE(rep.rows.size(), opt.grid.size());
    EXPECT_EQ(rep.rows[0].shape, b->default_matvec_tuning().dense) << "the default first";
    for (const matvec_sweep::Row &r : rep.rows) {
        if (r.shape == broken) {
            EXPECT_EQ(r.status, "wrong");
            EXPECT_GT(r.max_error, opt.bound);
            for (const auto &us : r.us) EXPECT_TRUE(us.empty()) << "not timed";
            continue;
        }
        EXPECT_TRUE(r.ok()) << r.shape.name() << ": " << r.status;
        EXPECT_LE(r.max_error, opt.bound) << r.shape.name();
        for (int f = 0; f < matvec_sweep::kFamilies; ++f) {
            ASSERT_EQ(r.us[f].size(), size_t(opt.rounds)) << r.shape.name() << " " << matvec_sweep::family_name(f);
            for (const double us : r.us[f]) EXPECT_GT(us, 0.0) << r.shape.name() << " " << matvec_sweep::family_name(f);
        }
    }
    EXPECT_FALSE(rep.best.combine == broken);
    EXPECT_LE(rep.best_error, opt.bound);
    MatvecTuning back;
    std::string why;
    ASSERT_TRUE(parse_matvec_tuning(rep.best.name(), b->default_matvec_tuning(), back, why)) << why;
    EXPECT_EQ(back, rep.best);
    EXPECT_EQ(b->matvec_tuning(), b->default_matvec_tuning()) << "the default again after the sweep";
}

#else

TEST(MatvecTuning, NeedsTheVulkanBackend) { GTEST_SKIP() << "this build has no Vulkan backend"; }

#endif

}  // namespace
}  // namespace mst
