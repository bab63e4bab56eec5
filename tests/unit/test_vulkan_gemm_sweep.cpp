// The checking and timing of bench_vulkan_prefill --sweep (bench/gemm_sweep.h), on the float
// path of the tuned tiling (every Vulkan device; lavapipe in CI): main's kernel first, a
// tuning whose result strays reported wrong and not timed, one the device cannot hold
// reported not run, the others timed once a round from the per-command profile.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "bench/gemm_sweep.h"
#include "cpu_op_fixture.h"
#include "test_weight.h"

namespace mst {
namespace {

using test::random_floats;
using test::TestWeight;

TEST(GemmSweep, MaxErrorIsAgainstTheResultsScale) {
    EXPECT_EQ(sweep::max_error({1.0f, -2.0f}, {1.0f, -2.0f}), 0.0);
    EXPECT_DOUBLE_EQ(sweep::max_error({1.0f, 0.5f}, {1.0f, 0.0f}), 0.5);  // not 0.5 / 0: the scale is 1
    EXPECT_DOUBLE_EQ(sweep::max_error({-4.0f, 1.0f}, {-4.0f, 2.0f}), 0.25);
    EXPECT_TRUE(std::isinf(sweep::max_error({1.0f, NAN}, {1.0f, 1.0f})));
    EXPECT_TRUE(std::isinf(sweep::max_error({1.0f}, {1.0f, 1.0f})));
    EXPECT_DOUBLE_EQ(sweep::median({3, 1, 2}), 2.0);
    EXPECT_DOUBLE_EQ(sweep::median({4, 1, 2, 3}), 2.5);
}

#ifdef MST_HAVE_VULKAN
// A backend with the per-command profile the sweep reads (MST_VULKAN_PROFILE=2 at creation).
std::unique_ptr<VulkanBackend> profiled_backend(std::string &why) {
    ::setenv("MST_VULKAN_PROFILE", "2", 1);
    std::unique_ptr<VulkanBackend> b;
    try {
        b = std::make_unique<VulkanBackend>(BackendOptions{}, false);
    } catch (const Error &e) {
        why = e.what();
    }
    ::unsetenv("MST_VULKAN_PROFILE");
    return b;
}

bool is_dense_gemm(const std::string &key) { return key.rfind("gemm_", 0) == 0 && key.rfind("gemm_grouped", 0) != 0; }

TEST(GemmSweep, ChecksEveryTuningAgainstMainsAndTimesOnlyTheRightOnes) {
    std::string why;
    const std::unique_ptr<VulkanBackend> b = profiled_backend(why);
    if (!b) GTEST_SKIP() << "no Vulkan device found: " << why;
    // The float path on every device, so that the test means the same everywhere.
    ASSERT_TRUE(b->set_gemm(VulkanBackend::GemmKernel::portable, 1, why)) << why;
    const TestWeight w(DType::BF16, 130, 257, 5);
    const std::vector<float> x = random_floats(size_t(65 * 257), 6);
    // Tunings of 32 rows: they fit lavapipe's 32 KiB with the split staging (the default).
    const GemmTuning broken{1, 2, 1, 32};
    const sweep::Product p{"bf16 130x257, 65 tokens", 2.0 * 65 * 130 * 257, is_dense_gemm,
                           [&](std::vector<float> &out) {
                               out.assign(size_t(65 * 130), 0.0f);
                               b->matmul(w.view, x.data(), out.data(), 65);
                               if (b->gemm_tuning() == broken) out[77] += 1.0f;  // as a kernel gone wrong would
                           },
                           false, DType::BF16, false};
    // 2x1x1x128x32 on lavapipe's 32 KiB: q4's dense variant fits (26112 bytes), so the
    // backend takes the tuning, but bf16's (its activations split: 34816) does not, so this
    // product would run main's kernel: not run, not timed as the tuning's.
    const GemmTuning too_big_for_bf16{2, 1, 1, 128, 32};
    const bool lavapipe = b->device_name().find("llvmpipe") != std::string::npos;
    const std::vector<sweep::Row> rows =
        sweep::run(*b, p, {{2, 1, 1, 32}, broken, {8, 4, 1, 256}, too_big_for_bf16}, 3, 1e-2);
    ASSERT_EQ(rows.size(), 5u);
    if (lavapipe) {
        EXPECT_EQ(rows[4].status.rfind("not run: its BF16 variant", 0), 0u) << rows[4].status;
        EXPECT_TRUE(rows[4].seconds.empty());
    }
    EXPECT_FALSE(rows[0].tuning.tuned()) << "main's kernel first";
    EXPECT_TRUE(rows[0].ok());
    EXPECT_EQ(rows[0].max_error, 0.0);
    EXPECT_EQ(rows[1].tuning, (GemmTuning{2, 1, 1, 32}));
    EXPECT_TRUE(rows[1].ok()) << rows[1].status;
    EXPECT_GT(rows[1].max_error, 0.0) << "f16-staged (split) against main's float products";
    EXPECT_LT(rows[1].max_error, 1e-2);
    for (const size_t i : {size_t(0), size_t(1)}) {
        ASSERT_EQ(rows[i].seconds.size(), 3u) << "one timed run a round";
        for (const double s : rows[i].seconds) EXPECT_GT(s, 0.0);
    }
    EXPECT_EQ(rows[2].status, "wrong");
    EXPECT_GT(rows[2].max_error, 1e-2);
    EXPECT_TRUE(rows[2].seconds.empty()) << "a wrong tuning is not timed";
    EXPECT_EQ(rows[3].status.rfind("not run: ", 0), 0u) << rows[3].status;
    EXPECT_NE(rows[3].status.find("shared memory"), std::string::npos) << rows[3].status;
    EXPECT_TRUE(rows[3].seconds.empty());
    EXPECT_FALSE(b->gemm_tuning().tuned()) << "main's kernel again after the sweep";
}

// The grouped expert GEMMs are charged by their own dispatches (gate+up with SwiGLU apart
// from down), as the benchmark's expert products are.
TEST(GemmSweep, TimesTheGroupedExpertGemmsByTheirDispatches) {
    std::string why;
    const std::unique_ptr<VulkanBackend> b = profiled_backend(why);
    if (!b) GTEST_SKIP() << "no Vulkan device found: " << why;
    ASSERT_TRUE(b->set_gemm(VulkanBackend::GemmKernel::portable, 2, why)) << why;
    const int64_t n = 40, hidden = 64, inter = 48;
    std::vector<std::unique_ptr<TestWeight>> parts;
    std::vector<std::vector<int64_t>> tokens(3);
    std::vector<std::vector<float>> weights;
    std::vector<SwigluExpertUse> uses(3);
    for (int64_t t = 0; t < n; ++t) tokens[size_t(t % 3)].push_back(t);
    for (size_t e = 0; e < 3; ++e) {
        for (int p = 0; p < 3; ++p)
            parts.push_back(std::make_unique<TestWeight>(DType::Q4, p < 2 ? inter : hidden, p < 2 ? hidden : inter,
                                                         uint32_t(40 + 3 * e + size_t(p))));
        weights.push_back(random_floats(tokens[e].size(), uint32_t(50 + e), 0.1f, 1.0f));
        uses[e] = SwigluExpertUse{parts[3 * e]->view, parts[3 * e + 1]->view, parts[3 * e + 2]->view, tokens[e].data(),
                                  weights[e].data(), int64_t(tokens[e].size())};
    }
    const std::vector<float> h = random_floats(size_t(n * hidden), 60);
    auto run = [&](std::vector<float> &out) {
        out.assign(size_t(n * hidden), 0.0f);
        b->routed_swiglu(h.data(), out.data(), n, hidden, uses.data(), uses.size());
    };
    const sweep::Product gate_up{"gate+up", 1, [](const std::string &k) { return k.rfind("gemm_grouped_swiglu", 0) == 0; },
                                 run, true, DType::Q4, true};  // the tuning set for the grouped products
    const sweep::Product none{"nothing", 1, [](const std::string &) { return false; }, run};
    const std::vector<sweep::Row> rows = sweep::run(*b, gate_up, {{2, 1, 1, 32}}, 2, 1e-2);  // fits 32 KiB split
    ASSERT_EQ(rows.size(), 2u);
    for (const sweep::Row &r : rows) {
        EXPECT_TRUE(r.ok()) << r.tuning.name() << ": " << r.status;
        EXPECT_EQ(r.seconds.size(), 2u) << r.tuning.name();
    }
    std::vector<float> out;
    try {
        sweep::device_seconds(*b, none, out);
        ADD_FAILURE() << "a product with no dispatch charged to it was timed";
    } catch (const Error &e) {
        EXPECT_NE(std::string(e.what()).find("no profiled dispatch"), std::string::npos) << e.what();
    }
}
#endif

}  // namespace
}  // namespace mst
