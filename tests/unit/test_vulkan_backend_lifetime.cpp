// Vulkan backends and models made and destroyed many times in one process leave nothing
// behind and keep working. On an H100 the NVIDIA driver refused vkCreateInstance
// (VK_ERROR_INCOMPATIBLE_DRIVER) once a golden test program had made a backend per test
// (bench/README.md, the golden suites of 2026-12-07): each backend then created and
// destroyed an instance of its own, a cycle that driver does not survive many times. So:
//   - however many backends a process makes, it creates one VkInstance
//     (backends/vulkan/vulkan_instance.h);
//   - after 64 backends (each recording, running and replaying a batch, half of them on a
//     discrete GPU's memory path) and after 12 models (each evaluating a prompt), the
//     process's open file descriptors and threads are where they were, its mapped memory
//     within a bound far below one leaked region or staging ring per cycle, and the Vulkan
//     devices and memory allocations alive (backends/vulkan/object_counts.h) back to the
//     count before;
//   - every cycle computes the same bits as the first.
// The first backend or model is made before the counts are taken: it loads the driver and
// creates what lives as long as the process. Without a Vulkan device every test is skipped.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "backends/backend.h"
#include "core/error.h"
#include "moestream.hpp"
#include "process_resources.h"
#include "sanitizer.h"
#include "scoped_env.h"
#include "stable_weight.h"

#ifdef MST_HAVE_VULKAN
#include "backends/vulkan/object_counts.h"
#include "backends/vulkan/vulkan_backend.h"
#endif

namespace mst {
namespace {

#ifdef MST_HAVE_VULKAN

using test::ProcessResources;
using test::process_resources;

// A leaked region per cycle, or one staging ring (128 MiB on a discrete GPU) in all, would
// exceed these; the allocator's own arenas and the driver's caches growing a little do not
// (NVIDIA's 580 driver on an H100: 2 regions and 64 MiB over the 12 models).
constexpr int64_t kRegionSlack = 8;
constexpr int64_t kBytesSlack = int64_t(96) << 20;

// What the process holds now: the operating system's resources and the Vulkan objects.
struct Held {
    ProcessResources os;
    VulkanObjectCounts vk;
};

Held held() { return Held{process_resources(), vulkan_object_counts()}; }

// `after` holds what `before` did (after `cycles` cycles of `what`).
void expect_nothing_left(const Held &before, const Held &after, int cycles, const std::string &what) {
    const std::string at = "after " + std::to_string(cycles) + " " + what;
    std::printf("%s: instances created %llu -> %llu; devices alive %lld -> %lld, memory allocations %lld -> %lld; %s -> %s\n",
                at.c_str(), (unsigned long long)before.vk.instances_created, (unsigned long long)after.vk.instances_created,
                (long long)before.vk.devices, (long long)after.vk.devices, (long long)before.vk.memory_allocations,
                (long long)after.vk.memory_allocations, to_string(before.os).c_str(), to_string(after.os).c_str());
    EXPECT_EQ(after.vk.instances_created, before.vk.instances_created)
        << at << ": each made a VkInstance of its own (the NVIDIA driver refuses them after many cycles)";
    EXPECT_EQ(after.vk.instances, before.vk.instances) << at << ": VkInstances alive";
    EXPECT_EQ(after.vk.devices, before.vk.devices) << at << ": VkDevices alive";
    EXPECT_EQ(after.vk.memory_allocations, before.vk.memory_allocations) << at << ": VkDeviceMemory alive";
    EXPECT_EQ(after.os.fds, before.os.fds) << at << ": open file descriptors (" << before.os << " -> " << after.os << ")";
    EXPECT_EQ(after.os.threads, before.os.threads) << at << ": threads (" << before.os << " -> " << after.os << ")";
    // AddressSanitizer's allocator maps regions of its own as the heap's shape changes
    // (17-19 over these cycles, scripts/test_sanitized.sh): there the mapped memory is no
    // measure of ours, and the release build's run checks it; LeakSanitizer checks the heap.
    if (test::kUnderAddressSanitizer) {
        std::printf("%s: mapped memory not checked under AddressSanitizer\n", at.c_str());
        return;
    }
    EXPECT_LE(after.os.mapped_regions, before.os.mapped_regions + kRegionSlack)
        << at << ": mapped regions (" << before.os << " -> " << after.os << ")";
    EXPECT_LE(after.os.mapped_bytes, before.os.mapped_bytes + kBytesSlack)
        << at << ": mapped bytes (" << before.os << " -> " << after.os << ")";
}

// A decode layer's routing in one batch, run twice (the second replays what the first
// recorded): a residual add, the norm, the router product and its top-k, an expert-sized
// product. Returns the logits, ids, weights and product of the second run.
std::vector<float> route_twice(VulkanBackend &b) {
    constexpr int64_t cols = 256;
    constexpr int32_t experts = 64, k = 4;
    static const WeightView router = test::stable_weight(DType::BF16, experts, cols, 1);
    static const WeightView gate = test::stable_weight(DType::Q8, 96, cols, 2);
    static const WeightView norm = test::norm_weight(cols, 3);
    std::vector<float> out;
    for (int run = 0; run < 2; ++run) {
        std::vector<float> x = test::random_floats(size_t(cols), 4, -2.0f, 2.0f), h(static_cast<size_t>(cols));
        const std::vector<float> d = test::random_floats(size_t(cols), 5);
        std::vector<float> logits(experts), weights(k), g(96);
        std::vector<int32_t> ids(k);
        {
            BackendBatch batch(b);
            b.add(x.data(), d.data(), cols);
            b.rms_norm(x.data(), norm, 0.0f, 1e-6f, h.data(), 1, cols);
            b.matmul(router, h.data(), logits.data(), 1);
            b.softmax_topk(logits.data(), 1, experts, k, true, ids.data(), weights.data());
            b.matmul(gate, h.data(), g.data(), 1);
        }
        out = logits;
        for (const int32_t id : ids) out.push_back(float(id));
        out.insert(out.end(), weights.begin(), weights.end());
        out.insert(out.end(), g.begin(), g.end());
    }
    return out;
}

// A backend of its own, on a discrete GPU's memory path with `separate` (as
// test::VulkanMemorySuite makes them); null without a device, the reason in *why.
std::unique_ptr<VulkanBackend> make_backend(bool separate, std::string *why) {
    const test::ScopedEnv memory("MST_VULKAN_SEPARATE_MEMORY", separate ? "1" : "0");
    try {
        return std::make_unique<VulkanBackend>(BackendOptions{}, false);
    } catch (const Error &e) {
        *why = e.what();
        return nullptr;
    }
}

TEST(VulkanBackendLifetime, SixtyFourBackendsLeaveNothingBehindAndComputeTheSameBits) {
    std::string why;
    std::vector<float> first[2];
    for (const bool separate : {false, true}) {
        const std::unique_ptr<VulkanBackend> b = make_backend(separate, &why);
        if (!b) GTEST_SKIP() << "no Vulkan device found: " << why;
        first[separate] = route_twice(*b);
    }
    const Held before = held();
    constexpr int kCycles = 64;
    for (int i = 0; i < kCycles; ++i) {
        const bool separate = i % 2 == 1;
        const std::unique_ptr<VulkanBackend> b = make_backend(separate, &why);
        ASSERT_NE(b, nullptr) << "backend " << i + 1 << " of " << kCycles << ": " << why;
        const std::vector<float> got = route_twice(*b);
        ASSERT_EQ(test::float_bits(got), test::float_bits(first[separate]))
            << "backend " << i + 1 << (separate ? " (separate memory)" : " (the device's memory)");
    }
    expect_nothing_left(before, held(), kCycles, "backends");
}

// The golden tests' pattern: a model on the Vulkan backend per test, through the C API.
std::vector<float> prompt_logits() {
    mst_model_params p = model_params();
    p.backend = "vulkan";
    const ModelHandle model(std::string(MST_TEST_DATA_DIR) + "/qwen3_moe_tiny", p);
    SessionHandle session(model);
    session.eval({1, 2, 3, 4, 5});
    session.eval({6});  // one decode step after the prefill
    return session.logits();
}

TEST(VulkanBackendLifetime, TwelveModelsLeaveNothingBehindAndComputeTheSameLogits) {
    std::vector<float> first;
    try {
        first = prompt_logits();
    } catch (const Exception &e) {
        if (e.status() == MST_ERR_BACKEND) GTEST_SKIP() << "no Vulkan device found: " << e.what();
        throw;
    }
    const Held before = held();
    constexpr int kCycles = 12;
    for (int i = 0; i < kCycles; ++i)
        ASSERT_EQ(test::float_bits(prompt_logits()), test::float_bits(first)) << "model " << i + 1 << " of " << kCycles;
    expect_nothing_left(before, held(), kCycles, "models");
}

#else

TEST(VulkanBackendLifetime, NeedsTheVulkanBackend) { GTEST_SKIP() << "this build has no Vulkan backend"; }

#endif

}  // namespace
}  // namespace mst
