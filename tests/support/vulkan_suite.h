// A test suite whose tests share one Vulkan backend, made once for the suite; without a
// Vulkan device, or in a build without the Vulkan backend, every test of the suite is
// skipped, saying why.
#pragma once

#include <gtest/gtest.h>

#include <string>

#include "backends/backend.h"
#include "core/error.h"

#ifdef MST_HAVE_VULKAN
#include "backends/vulkan/vulkan_backend.h"
#endif

namespace mst::test {

class VulkanSuite : public ::testing::Test {
protected:
    static void SetUpTestSuite() { open_backend(BackendOptions{}); }
    // A suite that needs other options defines its own SetUpTestSuite calling this.
    static void open_backend(const BackendOptions &options) {
#ifdef MST_HAVE_VULKAN
        try {
            vulkan_ = new VulkanBackend(options, false);
        } catch (const Error &e) {
            why_ = e.what();
        }
#else
        (void)options;
        why_ = "this build has no Vulkan backend (MST_VULKAN=OFF or no Vulkan headers / glslangValidator)";
#endif
    }
    static void TearDownTestSuite() {
#ifdef MST_HAVE_VULKAN
        delete vulkan_;
        vulkan_ = nullptr;
#endif
    }
    // A derived SetUp calls this first and returns when IsSkipped().
    void SetUp() override {
#ifdef MST_HAVE_VULKAN
        if (!vulkan_) GTEST_SKIP() << "no Vulkan device found: " << why_;
#else
        GTEST_SKIP() << why_;
#endif
    }

#ifdef MST_HAVE_VULKAN
    static inline VulkanBackend *vulkan_ = nullptr;
#endif
    static inline std::string why_;
};

}  // namespace mst::test
