// Memory read bandwidth probes for bench_decode: the rate its "% of the read bandwidth"
// divides by. One probe alone understates what the machine can read (a scalar-looking sum
// over 4 KiB pages measured 20.5 GB/s where llama.cpp's decode read its weights at ~25), so
// several run and the best is the ceiling:
//   sum:        each thread sums its contiguous share (the original probe);
//   4 streams:  each thread reads 4 far-apart parts of its share in step, 256-bit loads
//               and 4 accumulators, so that more hardware-prefetch streams and cache
//               misses are in flight at once;
//   4 streams, huge pages: the same over a buffer advised MADV_HUGEPAGE (fewer TLB misses).
#pragma once

#include <immintrin.h>
#include <sys/mman.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

namespace mst::bench {

struct ReadProbe {
    std::string name;
    double bytes_per_second = 0;  // best of the passes
    bool sum_ok = true;           // the sum came out right (the loads were not skipped)
};

namespace read_bandwidth_detail {

inline uint64_t sum_plain(const uint64_t *p, size_t n) {
    uint64_t s = 0;
    for (size_t i = 0; i < n; ++i) s += p[i];
    return s;
}

// n: elements of each of the 4 parts, a multiple of 16.
__attribute__((target("avx2"))) inline uint64_t sum_four_streams(const uint64_t *p, size_t n) {
    const uint64_t *a = p, *b = p + n, *c = p + 2 * n, *d = p + 3 * n;
    __m256i sa = _mm256_setzero_si256(), sb = sa, sc = sa, sd = sa;
    for (size_t i = 0; i < n; i += 8) {
        sa = _mm256_add_epi64(sa, _mm256_add_epi64(_mm256_loadu_si256(reinterpret_cast<const __m256i *>(a + i)),
                                                    _mm256_loadu_si256(reinterpret_cast<const __m256i *>(a + i + 4))));
        sb = _mm256_add_epi64(sb, _mm256_add_epi64(_mm256_loadu_si256(reinterpret_cast<const __m256i *>(b + i)),
                                                    _mm256_loadu_si256(reinterpret_cast<const __m256i *>(b + i + 4))));
        sc = _mm256_add_epi64(sc, _mm256_add_epi64(_mm256_loadu_si256(reinterpret_cast<const __m256i *>(c + i)),
                                                    _mm256_loadu_si256(reinterpret_cast<const __m256i *>(c + i + 4))));
        sd = _mm256_add_epi64(sd, _mm256_add_epi64(_mm256_loadu_si256(reinterpret_cast<const __m256i *>(d + i)),
                                                    _mm256_loadu_si256(reinterpret_cast<const __m256i *>(d + i + 4))));
    }
    const __m256i s = _mm256_add_epi64(_mm256_add_epi64(sa, sb), _mm256_add_epi64(sc, sd));
    alignas(32) uint64_t lanes[4];
    _mm256_store_si256(reinterpret_cast<__m256i *>(lanes), s);
    return lanes[0] + lanes[1] + lanes[2] + lanes[3];
}

// Best rate over `passes` of `threads` threads each summing its share with `sum`.
template <class Sum>
ReadProbe run(const char *name, const uint64_t *buf, size_t n, int threads, int passes, Sum sum) {
    using Clock = std::chrono::steady_clock;
    ReadProbe probe{name};
    for (int pass = 0; pass < passes; ++pass) {
        std::vector<uint64_t> sums(static_cast<size_t>(threads));
        std::vector<std::thread> pool;
        const auto t0 = Clock::now();
        for (int t = 0; t < threads; ++t)
            pool.emplace_back([&, t] {
                const size_t share = n / size_t(threads);
                sums[size_t(t)] = sum(buf + share * size_t(t), share);
            });
        for (std::thread &th : pool) th.join();
        const double s = std::chrono::duration<double>(Clock::now() - t0).count();
        uint64_t total = 0, want = 0;
        for (uint64_t v : sums) total += v;
        const size_t used = n / size_t(threads) * size_t(threads);
        want = uint64_t(used) * (used - 1) / 2;
        probe.sum_ok = probe.sum_ok && total == want;
        probe.bytes_per_second = std::max(probe.bytes_per_second, double(used * sizeof(uint64_t)) / s);
    }
    return probe;
}

}  // namespace read_bandwidth_detail

// The probes over `bytes` (rounded down to whole 2 MiB pages), `threads` threads, best of
// `passes` each. A probe whose sum is wrong is reported with sum_ok false.
inline std::vector<ReadProbe> measure_read_bandwidth(int threads, size_t bytes = size_t(1) << 30, int passes = 4) {
    namespace d = read_bandwidth_detail;
    constexpr size_t kHuge = size_t(2) << 20;
    bytes = std::max(kHuge, bytes / kHuge * kHuge);
    // Each thread's share is 4 parts of a multiple of 16 elements.
    const size_t n = bytes / sizeof(uint64_t) / (size_t(threads) * 64) * (size_t(threads) * 64);
    const auto four = [](const uint64_t *p, size_t share) { return d::sum_four_streams(p, share / 4); };
    std::vector<ReadProbe> probes;
    for (const bool huge : {false, true}) {
        auto *buf = static_cast<uint64_t *>(std::aligned_alloc(kHuge, bytes));
        if (!buf) break;
        ::madvise(buf, bytes, huge ? MADV_HUGEPAGE : MADV_NOHUGEPAGE);
        for (size_t i = 0; i < n; ++i) buf[i] = i;
        if (!huge) probes.push_back(d::run("sum", buf, n, threads, passes, d::sum_plain));
        if (__builtin_cpu_supports("avx2"))
            probes.push_back(d::run(huge ? "4 streams, huge pages" : "4 streams", buf, n, threads, passes, four));
        std::free(buf);
    }
    return probes;
}

}  // namespace mst::bench
