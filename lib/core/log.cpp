#include "core/log.h"

#include <atomic>
#include <cstdio>
#include <mutex>
#include <string>

#include "core/printable.h"

namespace mst {
namespace {

struct LogSink {
    std::mutex mutex;
    mst_log_callback callback = nullptr;
    void *user_data = nullptr;
    std::atomic<int> max_level{MST_LOG_WARN};
};

LogSink &sink() {
    static LogSink instance;
    return instance;
}

const char *level_name(mst_log_level level) {
    switch (level) {
        case MST_LOG_ERROR: return "error";
        case MST_LOG_WARN: return "warning";
        case MST_LOG_INFO: return "info";
        case MST_LOG_DEBUG: return "debug";
    }
    return "log";
}

}  // namespace

void log_set(mst_log_callback callback, mst_log_level max_level, void *user_data) {
    LogSink &s = sink();
    std::lock_guard lock(s.mutex);
    s.callback = callback;
    s.user_data = user_data;
    s.max_level = callback ? max_level : MST_LOG_WARN;
}

bool log_enabled(mst_log_level level) { return int(level) <= sink().max_level.load(std::memory_order_relaxed); }

void log_write(mst_log_level level, std::string_view message) {
    LogSink &s = sink();
    std::lock_guard lock(s.mutex);
    const std::string text = printable(message);
    if (s.callback) s.callback(level, text.c_str(), s.user_data);
    else std::fprintf(stderr, "moestream %s: %s\n", level_name(level), text.c_str());
}

}  // namespace mst
