// The command stream's valued environment settings (docs/gpu_decode_kernels.md, "Where a
// real run's overlap goes"): MST_VULKAN_PROFILE, MST_VULKAN_KICK_EVERY and
// MST_VULKAN_BARRIERS. Each is strict, as the on/off switches are (env_switch.h): unset or
// empty keeps the default, and a value that is not one of those listed is an error naming
// the variable, the value and what is allowed, so that a typo cannot measure the default.
#pragma once

#include <cstdint>

#include "backends/vulkan/command_stream.h"

namespace mst {

// MST_VULKAN_PROFILE: "0" off, "1" submissions, "2" commands, "levels"; default off.
CommandStream::Profile profile_from_env();
// MST_VULKAN_KICK_EVERY=N (N >= 0), together with MST_VULKAN_NO_KICK=1 (which means 0 and
// contradicts any other N); default 1.
uint32_t kick_every_from_env();
// MST_VULKAN_BARRIERS: "wide", "stages" or "ranges"; default wide.
CommandStream::BarrierScope barrier_scope_from_env();

}  // namespace mst
