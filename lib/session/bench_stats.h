// The arithmetic of `moestream bench` and `moestream demo`, kept apart from the CLI so
// that tests can check it: latency percentiles, rates, hit rate, and the ceilings that
// decode speed is judged against.
#pragma once

#include <cstdint>
#include <vector>

namespace mst {

// The q-quantile (q in [0, 1]) of `values` by the nearest rank: the sorted value at
// index round(q * (n - 1)). 0 for no values; q = 0 is the minimum, q = 1 the maximum.
double percentile(std::vector<double> values, double q);

// amount / seconds, 0 when seconds is not positive.
double per_second(double amount, double seconds);

// hits / (hits + misses), 0 when there were no lookups.
double hit_rate(uint64_t hits, uint64_t misses);

// Tokens per second the device allows when every token reads `expert_bytes_per_token`
// at its sequential bandwidth; +infinity when a token reads nothing (all cache hits).
double io_ceiling_tps(double sequential_bytes_per_second, double expert_bytes_per_token);

// decode_tps / min(io_ceiling, compute_ceiling), where a compute ceiling of 0 or less
// means not measured (only the I/O ceiling counts). 0 when the ceiling is not a
// positive finite number (nothing read and no compute ceiling: nothing to judge by).
double roofline_fraction(double decode_tps, double io_ceiling, double compute_ceiling);

}  // namespace mst
