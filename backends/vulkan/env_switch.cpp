#include "backends/vulkan/env_switch.h"

#include <cstdlib>
#include <string_view>

#include "core/error.h"

namespace mst {

bool env_switch(const char *name, bool default_on, const char *on, const char *off) {
    const char *env = std::getenv(name);
    if (!env || !*env) return default_on;
    const std::string_view v = env;
    if (v == "1") return true;
    if (v == "0") return false;
    fail(MST_ERR_INVALID_ARGUMENT, "{}='{}': expected 1 ({}) or 0 ({})", name, v, on, off);
}

}  // namespace mst
