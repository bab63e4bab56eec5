// The Vulkan backend's on/off environment switches (MST_VULKAN_MATVEC, MST_VULKAN_REPLAY,
// MST_VULKAN_NO_KICK, ...), read one way so that each is strict: unset or empty keeps the
// default, "1" is on, "0" is off, and any other value is an error naming the variable, the
// value and what 1 and 0 do. A typo such as `=no` or `=true` must not silently pick a path
// that a comparison then measures by mistake.
#pragma once

namespace mst {

// The switch `name` (e.g. "MST_VULKAN_MATVEC"), or `default_on` when it is unset or empty.
// `on` and `off` say what 1 and 0 do, for the error text. Throws mst::Error
// (MST_ERR_INVALID_ARGUMENT) for any value other than 0 and 1.
bool env_switch(const char *name, bool default_on, const char *on, const char *off);

}  // namespace mst
