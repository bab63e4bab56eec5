#include "session/bench_stats.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace mst {

double percentile(std::vector<double> values, double q) {
    if (values.empty()) return 0.0;
    std::sort(values.begin(), values.end());
    q = std::clamp(q, 0.0, 1.0);
    return values[std::min(values.size() - 1, size_t(q * double(values.size() - 1) + 0.5))];
}

double per_second(double amount, double seconds) { return seconds > 0 ? amount / seconds : 0.0; }

double hit_rate(uint64_t hits, uint64_t misses) {
    const uint64_t lookups = hits + misses;
    return lookups ? double(hits) / double(lookups) : 0.0;
}

double io_ceiling_tps(double sequential_bytes_per_second, double expert_bytes_per_token) {
    if (expert_bytes_per_token <= 0) return std::numeric_limits<double>::infinity();
    return sequential_bytes_per_second / expert_bytes_per_token;
}

double roofline_fraction(double decode_tps, double io_ceiling, double compute_ceiling) {
    const double ceiling = compute_ceiling > 0 ? std::min(io_ceiling, compute_ceiling) : io_ceiling;
    if (!(ceiling > 0) || !std::isfinite(ceiling)) return 0.0;
    return decode_tps / ceiling;
}

}  // namespace mst
