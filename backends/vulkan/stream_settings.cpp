#include "backends/vulkan/stream_settings.h"

#include <charconv>
#include <cstdlib>
#include <string_view>

#include "backends/vulkan/env_switch.h"
#include "core/error.h"

namespace mst {
namespace {

// The variable's value, or an empty view when it is unset.
std::string_view env_value(const char *name) {
    const char *env = std::getenv(name);
    return env ? std::string_view(env) : std::string_view();
}

}  // namespace

CommandStream::Profile profile_from_env() {
    const std::string_view v = env_value("MST_VULKAN_PROFILE");
    if (v.empty() || v == "0") return CommandStream::Profile::off;
    if (v == "1") return CommandStream::Profile::submissions;
    if (v == "2") return CommandStream::Profile::commands;
    if (v == "levels") return CommandStream::Profile::levels;
    fail(MST_ERR_INVALID_ARGUMENT,
         "MST_VULKAN_PROFILE='{}': expected 0 (no timestamps), 1 (each submission's device time), 2 (each "
         "command's, serialized) or levels (each level's, where a barrier already is)",
         v);
}

uint32_t kick_every_from_env() {
    const bool no_kick = env_switch("MST_VULKAN_NO_KICK", false, "a batch submitted only at its waits",
                                    "recorded work handed to the device early");
    const std::string_view v = env_value("MST_VULKAN_KICK_EVERY");
    if (v.empty()) return no_kick ? 0 : 1;
    uint32_t n = 0;
    const auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
    if (ec != std::errc() || end != v.data() + v.size())
        fail(MST_ERR_INVALID_ARGUMENT,
             "MST_VULKAN_KICK_EVERY='{}': expected a count N >= 0 (every N-th kick since a wait submits; 0: none)", v);
    if (no_kick && n != 0)
        fail(MST_ERR_INVALID_ARGUMENT,
             "MST_VULKAN_KICK_EVERY='{}' contradicts MST_VULKAN_NO_KICK=1 (no kicks); set one of them", v);
    return n;
}

CommandStream::BarrierScope barrier_scope_from_env() {
    const std::string_view v = env_value("MST_VULKAN_BARRIERS");
    if (v.empty() || v == "wide") return CommandStream::BarrierScope::wide;
    if (v == "stages") return CommandStream::BarrierScope::stages;
    if (v == "ranges") return CommandStream::BarrierScope::ranges;
    fail(MST_ERR_INVALID_ARGUMENT,
         "MST_VULKAN_BARRIERS='{}': expected wide (compute and transfer stages, all memory), stages (the exact "
         "stages and accesses of the levels on either side) or ranges (buffer barriers on the written ranges)",
         v);
}

}  // namespace mst
