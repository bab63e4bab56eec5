// A test suite run twice over Vulkan backends shared by its tests: with the memory the
// device has (lavapipe: unified) and with a discrete GPU's memory path
// (MST_VULKAN_SEPARATE_MEMORY=1: results computed in device memory and copied to host
// memory), so both paths run in CI. Without a Vulkan device every test is skipped, saying
// why. Include only in a build with the Vulkan backend (MST_HAVE_VULKAN).
#pragma once

#include <gtest/gtest.h>

#include <cstdlib>
#include <memory>
#include <string>

#include "backends/cpu/cpu_backend.h"
#include "backends/vulkan/vulkan_backend.h"
#include "core/error.h"
#include "scoped_env.h"

namespace mst::test {

class VulkanMemorySuite : public ::testing::TestWithParam<bool> {
protected:
    static void SetUpTestSuite() {
        for (bool separate : {false, true}) {
            if (separate) setenv("MST_VULKAN_SEPARATE_MEMORY", "1", 1);
            try {
                gpus_[separate] = new VulkanBackend(BackendOptions{}, false);
            } catch (const Error &e) {
                why_ = e.what();
            }
            unsetenv("MST_VULKAN_SEPARATE_MEMORY");
        }
    }
    static void TearDownTestSuite() {
        for (VulkanBackend *&g : gpus_) {
            delete g;
            g = nullptr;
        }
    }
    void SetUp() override {
        if (!gpus_[GetParam()]) GTEST_SKIP() << "no Vulkan device found: " << why_;
    }
    VulkanBackend &gpu() { return *gpus_[GetParam()]; }
    static inline VulkanBackend *gpus_[2] = {nullptr, nullptr};
    static inline std::string why_;
    CpuBackend cpu_{2, cpu_isa_best()};
};

// A Vulkan backend of its own made with MST_VULKAN_NO_SUBGROUP=1, so that the shaders take
// their shared-memory reductions (devices without subgroup arithmetic); null without a
// device, the reason in *why.
inline std::unique_ptr<VulkanBackend> vulkan_backend_without_subgroups(std::string *why) {
    const ScopedEnv no_subgroup("MST_VULKAN_NO_SUBGROUP", "1");
    try {
        return std::make_unique<VulkanBackend>(BackendOptions{}, false);
    } catch (const Error &e) {
        *why = e.what();
        return nullptr;
    }
}

// The parameter's name in test names.
inline std::string memory_kind_name(const ::testing::TestParamInfo<bool> &i) { return i.param ? "Discrete" : "Unified"; }

}  // namespace mst::test
