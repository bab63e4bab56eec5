// The C boundary: every exported function runs its body through guard(), which turns
// mst::Error, std::bad_alloc and anything else into a status and a thread-local message.
#pragma once

#include <algorithm>
#include <cstring>
#include <new>
#include <string>
#include <utility>

#include "core/error.h"

namespace mst::api {

void set_last_error(const std::string &message);
void clear_last_error();

template <typename Body>
mst_status guard(Body &&body) noexcept {
    try {
        body();
        return MST_OK;
    } catch (const Error &e) {
        set_last_error(e.what());
        return e.code();
    } catch (const std::bad_alloc &) {
        set_last_error("out of memory");
        return MST_ERR_OUT_OF_MEMORY;
    } catch (const std::exception &e) {
        set_last_error(std::string("internal error: ") + e.what());
        return MST_ERR_INTERNAL;
    } catch (...) {
        set_last_error("internal error: unknown exception");
        return MST_ERR_INTERNAL;
    }
}

// Copy a caller's params struct over the defaults, honouring its struct_size so that a
// program built against an older, shorter struct keeps working.
template <typename Params>
Params read_params(const Params *given, const Params &defaults, const char *what) {
    Params out = defaults;
    if (!given) return out;
    if (given->struct_size < sizeof(uint32_t) || given->struct_size > sizeof(Params))
        fail(MST_ERR_INVALID_ARGUMENT, "{}.struct_size is {}, expected at most {} (fill it with the *_default_params function)",
             what, given->struct_size, sizeof(Params));
    std::memcpy(&out, given, given->struct_size);
    out.struct_size = sizeof(Params);
    return out;
}

// Fill a caller's result struct: `fill` writes the fields into a full-size copy, and only the
// caller's struct_size bytes go back, so a program built against an older, shorter struct
// gets the fields it knows and nothing is written past its end.
template <typename Out, typename Fill>
void write_result(Out *given, const Out &defaults, const char *what, Fill &&fill) {
    Out out = read_params(given, defaults, what);
    fill(out);
    std::memcpy(given, &out, given->struct_size);
}

template <typename Out, typename Fill>
void write_result(Out *given, const char *what, Fill &&fill) {
    Out zero{};
    zero.struct_size = sizeof(Out);
    write_result(given, zero, what, std::forward<Fill>(fill));
}

template <typename T>
void require_arg(const T *pointer, const char *name) {
    if (!pointer) fail(MST_ERR_INVALID_ARGUMENT, "argument '{}' must not be NULL", name);
}

// A pointer with a count: NULL is allowed only with a count of 0.
inline void require_span(const void *pointer, size_t count, const char *name, const char *count_name) {
    if (!pointer && count) fail(MST_ERR_INVALID_ARGUMENT, "{} is NULL but {} is {}", name, count_name, count);
}

// The text-out convention of mst_detokenize and the chat-template calls: report the size,
// copy what fits, NUL-terminate when there is room, BUFFER_TOO_SMALL when it does not fit.
// The caller has checked out with require_span(out, capacity, ...).
inline void write_text(const std::string &text, char *out, size_t capacity, size_t *n_bytes) {
    *n_bytes = text.size();
    // With out NULL and capacity 0 (a size query) there is nothing to copy, and memcpy must
    // not be given a NULL pointer even for 0 bytes.
    if (capacity) std::memcpy(out, text.data(), std::min(capacity, text.size()));
    if (text.size() < capacity) out[text.size()] = '\0';
    if (text.size() > capacity)
        fail(MST_ERR_BUFFER_TOO_SMALL, "the text is {} bytes, but the buffer holds {}", text.size(), capacity);
}

}  // namespace mst::api
