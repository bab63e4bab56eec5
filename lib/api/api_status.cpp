// Version, status names, the thread-local last error and logging.
#include <string>

#include "api/guard.h"
#include "core/log.h"
#include "moestream.h"

namespace mst::api {
namespace {
thread_local std::string last_error;
}
void set_last_error(const std::string &message) { last_error = message; }
void clear_last_error() { last_error.clear(); }
}  // namespace mst::api

extern "C" {

uint32_t mst_version_number(void) { return MST_VERSION_NUMBER; }

const char *mst_version_string(void) {
#define MST_STR2(x) #x
#define MST_STR(x) MST_STR2(x)
    return MST_STR(MST_VERSION_MAJOR) "." MST_STR(MST_VERSION_MINOR) "." MST_STR(MST_VERSION_PATCH);
#undef MST_STR
#undef MST_STR2
}

const char *mst_status_string(mst_status status) {
    switch (status) {
        case MST_OK: return "ok";
        case MST_ERR_INVALID_ARGUMENT: return "invalid argument";
        case MST_ERR_IO: return "I/O error";
        case MST_ERR_BAD_FORMAT: return "bad format";
        case MST_ERR_UNSUPPORTED: return "unsupported";
        case MST_ERR_OUT_OF_MEMORY: return "out of memory";
        case MST_ERR_CHECKSUM: return "checksum mismatch";
        case MST_ERR_BACKEND: return "backend error";
        case MST_ERR_BUFFER_TOO_SMALL: return "buffer too small";
        case MST_ERR_CONTEXT_FULL: return "context full";
        case MST_ERR_CANCELLED: return "cancelled";
        case MST_ERR_INTERNAL: return "internal error";
        case MST_ERR_BUSY: return "busy";
    }
    return "unknown status";
}

const char *mst_last_error(void) { return mst::api::last_error.c_str(); }

void mst_log_set(mst_log_callback callback, mst_log_level max_level, void *user_data) {
    mst::log_set(callback, max_level, user_data);
}

}  // extern "C"
