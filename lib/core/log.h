// Library logging: one process-wide sink, set through mst_log_set(). Default: warnings
// and errors to stderr, so an embedding program is never spammed.
#pragma once

#include <fmt/format.h>

#include <string_view>

#include "moestream.h"

namespace mst {

void log_set(mst_log_callback callback, mst_log_level max_level, void *user_data);
bool log_enabled(mst_log_level level);
void log_write(mst_log_level level, std::string_view message);

template <typename... Args>
void log(mst_log_level level, fmt::format_string<Args...> format, Args &&...args) {
    if (log_enabled(level)) log_write(level, fmt::format(format, std::forward<Args>(args)...));
}

}  // namespace mst
