// The arithmetic that `moestream bench` and `moestream demo` report: nearest-rank
// percentiles, rates, hit rate, the I/O ceiling and the roofline fraction, with the
// edge cases (nothing measured, nothing read, no compute ceiling).
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "session/bench_stats.h"

namespace mst {
namespace {

TEST(BenchStats, PercentileIsTheNearestRank) {
    const std::vector<double> v = {5, 1, 4, 2, 3};  // sorted: 1 2 3 4 5
    EXPECT_EQ(percentile(v, 0.0), 1);
    EXPECT_EQ(percentile(v, 0.5), 3);
    EXPECT_EQ(percentile(v, 1.0), 5);
    EXPECT_EQ(percentile(v, 0.9), 5);   // rank round(0.9 * 4) = 4
    EXPECT_EQ(percentile(v, 0.6), 3);   // rank round(0.6 * 4) = round(2.4) = 2
    EXPECT_EQ(percentile(v, 0.65), 4);  // rank round(2.6) = 3
}

TEST(BenchStats, PercentileEdgeCases) {
    EXPECT_EQ(percentile({}, 0.5), 0.0);
    EXPECT_EQ(percentile({7.5}, 0.99), 7.5);
    std::vector<double> hundred;
    for (int i = 100; i >= 1; --i) hundred.push_back(i);
    EXPECT_EQ(percentile(hundred, 0.5), 51);   // round(49.5) = 50 -> the 51st value
    EXPECT_EQ(percentile(hundred, 0.99), 99);  // round(98.01) = 98
    EXPECT_EQ(percentile(hundred, 2.0), 100);  // clamped
    EXPECT_EQ(percentile(hundred, -1.0), 1);
}

TEST(BenchStats, RatesAndHitRate) {
    EXPECT_DOUBLE_EQ(per_second(1e9, 2.0), 5e8);
    EXPECT_EQ(per_second(1e9, 0.0), 0.0);
    EXPECT_EQ(per_second(1e9, -1.0), 0.0);
    EXPECT_DOUBLE_EQ(hit_rate(3, 1), 0.75);
    EXPECT_EQ(hit_rate(0, 0), 0.0);
    EXPECT_EQ(hit_rate(0, 9), 0.0);
    EXPECT_EQ(hit_rate(9, 0), 1.0);
}

TEST(BenchStats, IoCeilingIsBandwidthOverBytesPerToken) {
    // 2 GB/s and 100 MB per token: 20 tok/s.
    EXPECT_DOUBLE_EQ(io_ceiling_tps(2e9, 1e8), 20.0);
    EXPECT_TRUE(std::isinf(io_ceiling_tps(2e9, 0.0)));  // nothing read: no I/O limit
}

TEST(BenchStats, RooflineUsesTheLowerCeiling) {
    // io 20 tok/s, compute 10 tok/s: 5 tok/s is half of the compute ceiling.
    EXPECT_DOUBLE_EQ(roofline_fraction(5.0, 20.0, 10.0), 0.5);
    // compute 40: the I/O ceiling (20) binds.
    EXPECT_DOUBLE_EQ(roofline_fraction(5.0, 20.0, 40.0), 0.25);
    // No compute ceiling measured: I/O alone.
    EXPECT_DOUBLE_EQ(roofline_fraction(5.0, 20.0, 0.0), 0.25);
    // Nothing read and no compute ceiling: nothing to judge by.
    EXPECT_EQ(roofline_fraction(5.0, std::numeric_limits<double>::infinity(), 0.0), 0.0);
    // Nothing read, compute measured: compute binds.
    EXPECT_DOUBLE_EQ(roofline_fraction(5.0, std::numeric_limits<double>::infinity(), 10.0), 0.5);
    EXPECT_EQ(roofline_fraction(5.0, 0.0, 0.0), 0.0);
}

}  // namespace
}  // namespace mst
