// parallel_for and parallel_for_dynamic (backends/cpu/parallel_for.h): every index runs
// exactly once, static ranges are one contiguous range per thread in thread order,
// exceptions reach the caller, nested calls and concurrent callers work, and regions
// separated by pauses longer than the workers' spin (so they sleep) all complete, and the
// profile charges an op the CPU time its region bodies took on every thread.
#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <chrono>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <vector>

#include "backends/cpu/parallel_for.h"
#include "core/op_profile.h"

namespace mst {
namespace {

// Runs parallel_for (grain 0) or parallel_for_dynamic and counts each index's visits.
std::vector<int> visits(int64_t n, int threads, int64_t grain) {
    std::vector<std::atomic<int>> count(static_cast<size_t>(n));
    auto body = [&](int64_t begin, int64_t end) {
        ASSERT_LE(0, begin);
        ASSERT_LT(begin, end);
        ASSERT_LE(end, n);
        for (int64_t i = begin; i < end; ++i) count[size_t(i)].fetch_add(1);
    };
    if (grain == 0) parallel_for(n, threads, body);
    else parallel_for_dynamic(n, threads, grain, body);
    std::vector<int> out;
    for (auto &c : count) out.push_back(c.load());
    return out;
}

TEST(ParallelFor, EveryIndexExactlyOnce) {
    for (int threads : {1, 2, 3, 8})
        for (int64_t n : {0, 1, 2, 3, 7, 64, 1001})
            for (int64_t grain : {0, 1, 5, 2000}) {
                const std::vector<int> v = visits(n, threads, grain);
                for (int64_t i = 0; i < n; ++i)
                    ASSERT_EQ(v[size_t(i)], 1) << "n " << n << " threads " << threads << " grain " << grain << " i " << i;
            }
}

TEST(ParallelFor, StaticRangesAreOnePerThreadInOrder) {
    for (int threads : {1, 2, 4}) {
        std::mutex m;
        std::vector<std::pair<int64_t, int64_t>> ranges;
        std::vector<std::thread::id> ids;
        parallel_for(100, threads, [&](int64_t begin, int64_t end) {
            std::lock_guard<std::mutex> lock(m);
            ranges.emplace_back(begin, end);
            ids.push_back(std::this_thread::get_id());
        });
        ASSERT_EQ(ranges.size(), size_t(threads));
        std::sort(ranges.begin(), ranges.end());
        for (int t = 0; t < threads; ++t) {
            EXPECT_EQ(ranges[size_t(t)].first, 100 * t / threads);
            EXPECT_EQ(ranges[size_t(t)].second, 100 * (t + 1) / threads);
        }
        std::sort(ids.begin(), ids.end());
        EXPECT_EQ(std::unique(ids.begin(), ids.end()), ids.end()) << "two ranges ran on one thread";
    }
}

TEST(ParallelFor, OneThreadRunsOnTheCaller) {
    const std::thread::id caller = std::this_thread::get_id();
    int calls = 0;
    parallel_for(50, 1, [&](int64_t begin, int64_t end) {
        EXPECT_EQ(std::this_thread::get_id(), caller);
        EXPECT_EQ(begin, 0);
        EXPECT_EQ(end, 50);
        ++calls;
    });
    EXPECT_EQ(calls, 1);
}

TEST(ParallelFor, ExceptionReachesTheCaller) {
    for (int64_t grain : {0, 1}) {
        // From a worker's range (the last), then from the caller's (the first).
        for (int64_t bad : {99, 0}) {
            auto body = [&](int64_t begin, int64_t end) {
                if (begin <= bad && bad < end) throw std::runtime_error("index " + std::to_string(bad));
            };
            try {
                if (grain == 0) parallel_for(100, 2, body);
                else parallel_for_dynamic(100, 2, grain, body);
                FAIL() << "no exception";
            } catch (const std::runtime_error &e) {
                EXPECT_EQ(std::string(e.what()), "index " + std::to_string(bad));
            }
        }
    }
    // The pool still works afterwards.
    const std::vector<int> v = visits(100, 2, 0);
    for (int c : v) EXPECT_EQ(c, 1);
}

TEST(ParallelFor, NestedCallsCoverTheirIndices) {
    std::vector<std::atomic<int>> count(20 * 30);
    parallel_for(20, 2, [&](int64_t begin, int64_t end) {
        for (int64_t i = begin; i < end; ++i)
            parallel_for_dynamic(30, 2, 4, [&](int64_t b, int64_t e) {
                for (int64_t j = b; j < e; ++j) count[size_t(i * 30 + j)].fetch_add(1);
            });
    });
    for (auto &c : count) EXPECT_EQ(c.load(), 1);
}

TEST(ParallelFor, ConcurrentCallersBothComplete) {
    constexpr int kRounds = 200;
    std::vector<std::atomic<int64_t>> sums(2);
    auto caller = [&](int who) {
        for (int r = 0; r < kRounds; ++r)
            parallel_for(1000, 2, [&](int64_t begin, int64_t end) {
                int64_t s = 0;
                for (int64_t i = begin; i < end; ++i) s += i;
                sums[size_t(who)].fetch_add(s);
            });
    };
    std::thread a(caller, 0), b(caller, 1);
    a.join();
    b.join();
    for (auto &s : sums) EXPECT_EQ(s.load(), int64_t(kRounds) * 999 * 1000 / 2);
}

TEST(ParallelFor, RegionsAfterTheWorkersSleep) {
    // Pauses longer than the spin send the workers to their futex; each region must still
    // find them (a lost wake-up would hang here, which ctest's timeout reports).
    const auto pause = std::chrono::microseconds(parallel_for_spin_micros() + 200);
    for (int r = 0; r < 50; ++r) {
        std::atomic<int64_t> covered{0};
        parallel_for(64, 2, [&](int64_t begin, int64_t end) { covered.fetch_add(end - begin); });
        ASSERT_EQ(covered.load(), 64);
        if (r % 2) std::this_thread::sleep_for(pause);
    }
    // And many regions back to back, as a decode step runs them.
    std::atomic<int64_t> total{0};
    for (int r = 0; r < 2000; ++r) parallel_for(2, 2, [&](int64_t begin, int64_t end) { total.fetch_add(end - begin); });
    EXPECT_EQ(total.load(), 4000);
}

// bench_decode --profile's CPU column: an op is charged its regions' bodies' CPU time on
// every thread (not only the calling thread's, which here runs the shorter share and then
// waits), so a shared machine's preemption and a thread's wait for the other stay out of it.
TEST(ParallelFor, ProfileChargesAnOpItsBodiesCpuTimeOnEveryThread) {
    auto burn = [](double seconds) {
        const double start = op_profile_thread_cpu_seconds();
        volatile double sink = 0.0;
        while (op_profile_thread_cpu_seconds() - start < seconds) sink = sink + 1.0;
    };
    op_profile_reset();
    op_profile_enable(true);
    {
        const OpTimer timer("burn", 0);
        // Index 0 (the calling thread's share) burns 20 ms, index 1 (a worker's) 40 ms.
        parallel_for(2, 2, [&](int64_t begin, int64_t end) {
            for (int64_t i = begin; i < end; ++i) burn(0.02 * double(i + 1));
        });
    }
    op_profile_enable(false);
    const OpProfileSnapshot p = op_profile_snapshot();
    op_profile_reset();
    ASSERT_EQ(p.regions.regions, 1u);
    EXPECT_GE(p.regions.busy_cpu_seconds, 0.060);
    EXPECT_LE(p.regions.busy_cpu_seconds, 0.075);
    const OpTotals &op = p.by_kind.at("burn");
    EXPECT_GE(op.cpu_seconds, 0.060);
    EXPECT_LE(op.cpu_seconds, 0.075);
}

TEST(ParallelFor, StealingCoversEveryIndexOnce) {
    for (int threads : {1, 2, 3, 5})
        for (int64_t n : {1, 7, 64, 1000, 4097})
            for (int64_t grain : {1, 3, 16, 5000}) {
                std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
                parallel_for_stealing(n, threads, grain, [&](int64_t begin, int64_t end) {
                    ASSERT_LT(begin, end);
                    for (int64_t i = begin; i < end; ++i) hits[size_t(i)].fetch_add(1);
                });
                for (int64_t i = 0; i < n; ++i)
                    ASSERT_EQ(hits[size_t(i)].load(), 1) << "index " << i << " of " << n << ", " << threads
                                                         << " threads, grain " << grain;
            }
}

// The point of the stealing split: a thread held up in its first piece (here the worker,
// for 100 ms) has the rest of its range done by the other thread, where the static split
// would make the caller wait for all of it.
TEST(ParallelFor, StealingTakesOverTheRangeOfAThreadHeldUp) {
    const std::thread::id caller = std::this_thread::get_id();
    constexpr int64_t kN = 1000;
    std::atomic<int64_t> by_caller{0};
    std::atomic<bool> held{false};
    parallel_for_stealing(kN, 2, 4, [&](int64_t begin, int64_t end) {
        const bool on_caller = std::this_thread::get_id() == caller;
        if (!on_caller && !held.exchange(true)) std::this_thread::sleep_for(std::chrono::milliseconds(100));
        if (on_caller) by_caller.fetch_add(end - begin);
    });
    // The worker's first piece is a quarter of its half (125 indices), so the caller runs
    // at least its half and the other 375 (all 1000 when it was done before the worker
    // woke); the static split would give it 500.
    EXPECT_GE(by_caller.load(), kN - 125);
}

// bench_decode --profile's thread-time split: a region's held thread time is exactly its
// bodies plus the hand-offs and the imbalance, the imbalance is the time from the first
// share's end to the last one's (measured here from inside the bodies, so that a loaded
// machine descheduling either thread moves both alike), and the op's time outside its
// regions is its serial part.
TEST(ParallelFor, ProfileSplitsHeldTimeIntoBusyHandOffsAndImbalance) {
    using SteadyClock = std::chrono::steady_clock;
    auto spin_for = [](double seconds) {
        const auto end = SteadyClock::now() + std::chrono::duration<double>(seconds);
        while (SteadyClock::now() < end) {
        }
    };
    SteadyClock::time_point share_end[2];
    op_profile_reset();
    op_profile_enable(true);
    {
        const OpTimer timer("uneven", 0);
        spin_for(0.005);  // serial, before the region
        // Index 0 (the caller's share) runs 2 ms, index 1 (the worker's) 20 ms.
        parallel_for(2, 2, [&](int64_t begin, int64_t end) {
            for (int64_t i = begin; i < end; ++i) {
                spin_for(i == 0 ? 0.002 : 0.020);
                share_end[i] = SteadyClock::now();
            }
        });
    }
    op_profile_enable(false);
    const OpProfileSnapshot p = op_profile_snapshot();
    op_profile_reset();
    const RegionTotals &r = p.regions;
    ASSERT_EQ(r.regions, 1u);
    EXPECT_NEAR(r.busy_seconds + r.start_wait_seconds + r.imbalance_seconds + r.finish_wait_seconds, r.thread_seconds,
                1e-6);
    const double gap = std::chrono::duration<double>(share_end[1] - share_end[0]).count();
    EXPECT_NEAR(r.imbalance_seconds, std::abs(gap), 0.001);
    const auto it = p.regions_by_kind.find("uneven");
    ASSERT_NE(it, p.regions_by_kind.end());
    EXPECT_EQ(it->second.regions, 1u);
    const OpTotals &op = p.by_kind.at("uneven");
    EXPECT_NEAR(op.region_seconds, r.wall_seconds, 1e-9);  // differences of running sums
    EXPECT_GE(op.seconds - op.region_seconds, 0.0049);
}

}  // namespace
}  // namespace mst
