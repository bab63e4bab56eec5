// Human-readable sizes for the CLI's reports.
#pragma once

#include <cstdint>
#include <string>

#include <fmt/format.h>

namespace mst::cli {

inline std::string bytes_str(uint64_t bytes) {
    static const char *units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double v = double(bytes);
    int u = 0;
    while (v >= 1024.0 && u < 4) {
        v /= 1024.0;
        ++u;
    }
    return u == 0 ? fmt::format("{} B", bytes) : fmt::format("{:.2f} {}", v, units[u]);
}

inline std::string count_str(uint64_t n) {
    if (n >= 1000000000ull) return fmt::format("{:.2f} B", double(n) / 1e9);
    if (n >= 1000000ull) return fmt::format("{:.2f} M", double(n) / 1e6);
    if (n >= 1000ull) return fmt::format("{:.2f} K", double(n) / 1e3);
    return fmt::format("{}", n);
}

}  // namespace mst::cli
