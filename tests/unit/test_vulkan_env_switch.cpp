// The Vulkan backend's on/off environment switches (backends/vulkan/env_switch.h): the
// reader itself (unset and empty keep the default, 1 and 0 set it, any other value is an
// error naming the variable, the value and what 1 and 0 do), and every switch the backend
// reads through it: 0 and 1 are taken, and a bad value fails the backend's creation with an
// error naming that switch, where before some switches (MST_VULKAN_REPLAY,
// MST_VULKAN_HOST_IMPORT, the "set" flags) took any value as one of the two.
#include <gtest/gtest.h>

#include <string>

#include "core/error.h"
#include "expect_error.h"
#include "scoped_env.h"
#include "vulkan_suite.h"

#ifdef MST_HAVE_VULKAN
#include "backends/vulkan/env_switch.h"
#endif

namespace mst {
namespace {

#ifdef MST_HAVE_VULKAN

using test::ScopedEnv;

// A name no part of the backend reads.
constexpr const char *kName = "MST_VULKAN_TEST_ONLY_SWITCH";

bool read_switch(bool default_on) { return env_switch(kName, default_on, "the one way", "the other way"); }

TEST(VulkanEnvSwitch, UnsetOrEmptyKeepsTheDefault) {
    unsetenv(kName);
    EXPECT_TRUE(read_switch(true));
    EXPECT_FALSE(read_switch(false));
    const ScopedEnv empty(kName, "");
    EXPECT_TRUE(read_switch(true));
    EXPECT_FALSE(read_switch(false));
}

TEST(VulkanEnvSwitch, OneIsOnAndZeroIsOffWhateverTheDefault) {
    {
        const ScopedEnv on(kName, "1");
        EXPECT_TRUE(read_switch(true));
        EXPECT_TRUE(read_switch(false));
    }
    const ScopedEnv off(kName, "0");
    EXPECT_FALSE(read_switch(true));
    EXPECT_FALSE(read_switch(false));
}

// `=no` meant on for the switches read as "not 0", `=2` for those read as "set and not 0".
TEST(VulkanEnvSwitch, AnyOtherValueIsAnErrorNamingTheVariableAndTheValuesAllowed) {
    for (const char *bad : {"no", "yes", "true", "on", "2", "-1", "00", "01", " 1", "1 ", "0x"}) {
        const ScopedEnv env(kName, bad);
        for (const bool default_on : {false, true})
            test::expect_error([&] { read_switch(default_on); }, MST_ERR_INVALID_ARGUMENT,
                               {std::string(kName) + "='" + bad + "'", "expected 1 (the one way) or 0 (the other way)"});
    }
}

// Every on/off switch the backend reads, wherever it is read (context, command stream,
// host imports, the ops' configuration).
const char *const kBackendSwitches[] = {
    "MST_VULKAN_NO_SUBGROUP",     "MST_VULKAN_SEPARATE_MEMORY", "MST_VULKAN_NO_PUSH_DESCRIPTOR",
    "MST_VULKAN_NO_COOPMAT",      "MST_VULKAN_NO_KICK",         "MST_VULKAN_DELIVER_ALL",
    "MST_VULKAN_REPLAY",          "MST_VULKAN_HOST_IMPORT",     "MST_VULKAN_MATVEC",
    "MST_VULKAN_NORM_VEC4",       "MST_VULKAN_SPLIT_ROWS",      "MST_VULKAN_GEMM_PREFETCH",
    "MST_VULKAN_EXPERTS_BY_ID",   "MST_VULKAN_GROUPED_EXPERTS", "MST_VULKAN_FUSED_SWIGLU",
    "MST_VULKAN_DEVICE_GROUPING", "MST_VULKAN_DECODE_FUSION", "MST_VULKAN_EXPERT_PREFETCH",
    "MST_VULKAN_ATTENTION_FUSION",
    "MST_VULKAN_MOE_FUSION",
    "MST_VULKAN_COMBINE_IN_DOWN",
    "MST_VULKAN_KV_APPEND_FUSION",
    "MST_VULKAN_ROUTER_TOPK_FUSION",
    "MST_VULKAN_ROUTER_AHEAD",
    "MST_VULKAN_QKV_FUSION",
    "MST_VULKAN_ATTENTION_COMBINE_FUSION",
    "MST_VULKAN_TRANSFER_QUEUE",
    "MST_VULKAN_STREAM_OVERLAP",
    "MST_VULKAN_Q4_BLOCK",
    "MST_VULKAN_PREFILL_HOST",
};

// The suite's own backend, made with no switch set, tells whether there is a device at all.
class VulkanBackendSwitch : public test::VulkanSuite, public ::testing::WithParamInterface<const char *> {};

TEST_P(VulkanBackendSwitch, ZeroAndOneAreTaken) {
    for (const char *value : {"0", "1"}) {
        const ScopedEnv env(GetParam(), value);
        try {
            VulkanBackend b(BackendOptions{}, false);
        } catch (const Error &e) {
            ADD_FAILURE() << GetParam() << "=" << value << " was refused: " << e.what();
        }
    }
}

TEST_P(VulkanBackendSwitch, ABadValueFailsTheBackendNamingTheSwitch) {
    const ScopedEnv env(GetParam(), "no");
    test::expect_error([] { VulkanBackend b(BackendOptions{}, false); }, MST_ERR_INVALID_ARGUMENT,
                       {std::string(GetParam()) + "='no'", "expected 1 ("});
}

INSTANTIATE_TEST_SUITE_P(Each, VulkanBackendSwitch, ::testing::ValuesIn(kBackendSwitches),
                         [](const ::testing::TestParamInfo<const char *> &p) {
                             return std::string(p.param).substr(std::string("MST_VULKAN_").size());
                         });

#else

TEST(VulkanEnvSwitch, NeedsTheVulkanBackend) { GTEST_SKIP() << "this build has no Vulkan backend"; }

#endif

}  // namespace
}  // namespace mst
