// The cooperative-matrix rate bench_vulkan_prefill prints as the GEMMs' roofline
// (backends/vulkan/vulkan_coopmat_rate.h): without cooperative matrices (lavapipe) it is not
// measured and says why; with them, each of its three rates is a positive, finite FLOP/s and
// loading the fragments from shared memory is no faster than keeping them in registers (the
// same products plus loads). Without a Vulkan device every test is skipped, saying so.
#include <gtest/gtest.h>

#include <cmath>

#include "vulkan_suite.h"

#ifdef MST_HAVE_VULKAN
#include "backends/vulkan/vulkan_coopmat_rate.h"
#endif

namespace mst {
namespace {

class VulkanCoopmatRateTest : public test::VulkanSuite {};

TEST_F(VulkanCoopmatRateTest, MeasuresTheProductsOrSaysWhyNot) {
#ifdef MST_HAVE_VULKAN
    const VulkanCoopmatRate r = vulkan_measure_coopmat_rate(*vulkan_);
    if (!vulkan_->context().cooperative_matrix()) {
        EXPECT_FALSE(r.measured);
        EXPECT_EQ(r.why_not, vulkan_->context().cooperative_matrix_why_not());
        EXPECT_FALSE(r.why_not.empty());
        EXPECT_EQ(r.flops, 0.0);
        return;
    }
    ASSERT_TRUE(r.measured);
    for (double f : {r.flops, r.shared_flops, r.f16_sum_flops}) {
        EXPECT_TRUE(std::isfinite(f));
        EXPECT_GT(f, 0.0);
    }
    // Timing noise allowed for: the loads cannot make the same products much faster.
    EXPECT_LE(r.shared_flops, r.flops * 1.25);
#endif
}

}  // namespace
}  // namespace mst
