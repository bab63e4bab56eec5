// The router's softmax top-k on the Vulkan backend (backends/device_routing.h,
// shaders/softmax_topk.comp) against route_softmax_topk on the host: the same ids, ties
// included, and weights within float rounding of the exponentials, for k = 1, k = E, odd
// expert counts, renormalised or not, alone and fed by a pending router product inside a
// batch. Without a Vulkan device every test is skipped, saying so.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "backends/backend.h"
#include "backends/cpu/cpu_backend.h"
#include "backends/device_routing.h"
#include "core/error.h"
#include "cpu_op_fixture.h"
#include "router/softmax_topk.h"
#include "vulkan_suite.h"

namespace mst {
namespace {

using test::random_floats;

class VulkanSoftmaxTopk : public test::VulkanSuite {
protected:
    void SetUp() override {
        VulkanSuite::SetUp();
        if (IsSkipped()) return;
#ifdef MST_HAVE_VULKAN
        device_ = device_routing(*vulkan_);
        ASSERT_NE(device_, nullptr) << "the Vulkan backend must offer DeviceRouting";
#endif
    }

    // The device's and the host's routing of `logits` [n][E] agree.
    void expect_same_routing(const std::vector<float> &logits, int64_t n, int32_t E, int32_t k, bool renormalize) {
        std::vector<int32_t> want_ids(size_t(n * k)), ids(size_t(n * k), -7);
        std::vector<float> want_w(size_t(n * k)), w(size_t(n * k), NAN);
        route_softmax_topk(logits.data(), n, E, k, renormalize, want_ids.data(), want_w.data());
        device_->softmax_topk(logits.data(), n, E, k, renormalize, ids.data(), w.data());
        const std::string what = "E=" + std::to_string(E) + " k=" + std::to_string(k) +
                                 " renormalize=" + std::to_string(renormalize);
        EXPECT_EQ(ids, want_ids) << what;
        for (size_t i = 0; i < w.size(); ++i) EXPECT_NEAR(w[i], want_w[i], 2e-6f * std::max(1.0f, want_w[i])) << what;
    }

    CpuBackend cpu_{2, cpu_isa_best()};
    DeviceRouting *device_ = nullptr;
};

TEST_F(VulkanSoftmaxTopk, MatchesTheHostForEveryKAndOddExpertCounts) {
    for (int32_t E : {1, 7, 64, 129, 512}) {  // 512: Qwen3-Next; several experts per lane
        const int64_t n = 70;  // more tokens than one workgroup
        const std::vector<float> logits = random_floats(size_t(n * E), uint32_t(E), -4.0f, 4.0f);
        for (int32_t k : {1, 2, E / 2 + 1, E})
            for (bool renormalize : {false, true}) expect_same_routing(logits, n, E, std::min(k, E), renormalize);
    }
}

TEST_F(VulkanSoftmaxTopk, TiesGoToTheLowerIdAsOnTheHost) {
    // Equal logits give bit-equal probabilities on both sides; only the id may break the tie.
    const int32_t E = 9;
    std::vector<float> logits = {0.5f, 1.0f, 0.5f, 1.0f, -2.0f, 1.0f, 0.5f, 0.0f, 0.0f,  // three-way ties
                                 0, 0, 0, 0, 0, 0, 0, 0, 0};                           // all tied
    for (int32_t k : {1, 3, 4, 9})
        for (bool renormalize : {false, true}) expect_same_routing(logits, 2, E, k, renormalize);
    std::vector<int32_t> ids(9);
    std::vector<float> w(9);
    device_->softmax_topk(logits.data() + E, 1, E, E, false, ids.data(), w.data());
    for (int32_t j = 0; j < E; ++j) EXPECT_EQ(ids[size_t(j)], j) << "all tied: ids in ascending order";
}

TEST_F(VulkanSoftmaxTopk, ReadsAPendingRouterProductInABatch) {
    // The decode step's shape: the router product's result never reaches the host before
    // the top-k reads it; the host reads only the ids and weights, at sync.
    const int32_t E = 33, H = 40, k = 4;
    std::vector<float> wdata = random_floats(size_t(E * H), 31), h = random_floats(size_t(2 * H), 32);
    const WeightView router{DType::F32, wdata.data(), E, H};
    std::vector<float> want_logits(size_t(2 * E)), logits(size_t(2 * E));
    cpu_.matmul(router, h.data(), want_logits.data(), 2);
    std::vector<int32_t> want_ids(size_t(2 * k)), ids(size_t(2 * k), -1);
    std::vector<float> want_w(size_t(2 * k)), w(size_t(2 * k));
    route_softmax_topk(want_logits.data(), 2, E, k, true, want_ids.data(), want_w.data());
#ifdef MST_HAVE_VULKAN
    {
        BackendBatch batch(*vulkan_);
        vulkan_->matmul(router, h.data(), logits.data(), 2);
        device_->softmax_topk(logits.data(), 2, E, k, true, ids.data(), w.data());
        vulkan_->sync();
        EXPECT_EQ(ids, want_ids);
        for (size_t i = 0; i < w.size(); ++i) EXPECT_NEAR(w[i], want_w[i], 1e-5f);
    }
#endif
}

TEST_F(VulkanSoftmaxTopk, BadArgumentsAreErrors) {
    std::vector<float> logits(8), w(8);
    std::vector<int32_t> ids(8);
    EXPECT_THROW(device_->softmax_topk(logits.data(), 1, 8, 0, false, ids.data(), w.data()), Error);
    EXPECT_THROW(device_->softmax_topk(logits.data(), 1, 8, 9, false, ids.data(), w.data()), Error);
    EXPECT_THROW(device_->softmax_topk(nullptr, 1, 8, 2, false, ids.data(), w.data()), Error);
    EXPECT_THROW(device_->softmax_topk(logits.data(), 1, 0, 1, false, ids.data(), w.data()), Error);
}

TEST(DeviceRouting, TheCpuBackendRoutesOnTheHost) {
    // The CPU backend keeps the host routine (its speed): it offers no device routing.
    CpuBackend cpu{1, cpu_isa_best()};
    EXPECT_EQ(device_routing(cpu), nullptr);
}

}  // namespace
}  // namespace mst
