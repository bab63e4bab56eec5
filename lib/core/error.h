// Internal error model: library code throws mst::Error carrying an mst_status and a
// message naming the file / tensor / expert involved. Every C entry point catches it
// (see lib/api/guard.h), so no exception ever crosses the C boundary.
#pragma once

#include <fmt/format.h>

#include <stdexcept>
#include <string>
#include <utility>

#include "core/printable.h"
#include "moestream.h"

namespace mst {

class Error : public std::runtime_error {
public:
    // Escaped here (core/printable.h), before what() turns the message into a C string
    // that a NUL from a file's name would cut short.
    Error(mst_status code, const std::string &message) : std::runtime_error(printable(message)), code_(code) {}
    mst_status code() const noexcept { return code_; }

private:
    mst_status code_;
};

template <typename... Args>
[[noreturn]] void fail(mst_status code, fmt::format_string<Args...> format, Args &&...args) {
    throw Error(code, fmt::format(format, std::forward<Args>(args)...));
}

}  // namespace mst
