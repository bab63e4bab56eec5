// The one way CPU ops run in parallel: a persistent pool of worker threads behind
// parallel_for. A decode token runs a few hundred short ops; an OpenMP region per op with
// OMP_WAIT_POLICY=passive (which the expert-read threads need on few cores) paid a futex
// wake-up and a sleep per op. Here a worker spins for a short while after each region
// (MST_CPU_SPIN_US, default kDefaultSpinMicros, measured in bench/README.md "Decode
// profile") so the next op finds it awake, then sleeps on a futex so that I/O threads get
// the core while the caller waits for expert reads.
//
// Converting an OpenMP loop:
//
//   #pragma omp parallel for num_threads(t) schedule(static)
//   for (int64_t i = 0; i < n; ++i) work(i);
//
// becomes
//
//   parallel_for(n, t, [&](int64_t begin, int64_t end) {
//       for (int64_t i = begin; i < end; ++i) work(i);
//   });
//
// and schedule(dynamic, g) becomes parallel_for_dynamic(n, t, g, body). Per-thread
// scratch goes at the top of the body: with parallel_for each thread runs the body once.
#pragma once

#include <cstdint>
#include <type_traits>
#include <utility>

namespace mst {

// Worker spin before sleeping, when MST_CPU_SPIN_US is unset.
constexpr int kDefaultSpinMicros = 300;

namespace parallel_for_detail {
using RangeFn = void (*)(void *body, int64_t begin, int64_t end);
enum class Split { Static, Dynamic, Stealing };
void run(int64_t n, int max_threads, int64_t grain, Split split, RangeFn fn, void *body);

template <typename Body>
void call(void *body, int64_t begin, int64_t end) {
    (*static_cast<Body *>(body))(begin, end);
}
}  // namespace parallel_for_detail

// Calls body(begin, end) on contiguous ranges that cover [0, n) exactly once, one range
// per thread, on up to max_threads threads (the calling thread is one of them; ranges
// are as even as can be, in order of thread). Returns when every range is done. An
// exception thrown by the body is rethrown here (the first one, once all threads
// stopped). Runs on the calling thread alone when max_threads <= 1 or n <= 1, when
// called from inside another parallel_for body (nested), or when another thread's
// parallel_for is running (the pool serves one caller at a time).
template <typename Body>
void parallel_for(int64_t n, int max_threads, Body &&body) {
    using B = std::remove_reference_t<Body>;
    parallel_for_detail::run(n, max_threads, 0, parallel_for_detail::Split::Static, &parallel_for_detail::call<B>,
                             const_cast<void *>(static_cast<const void *>(&body)));
}

// As parallel_for, but the ranges are chunks of `grain` (>= 1) indices handed out one by
// one as threads finish, for bodies whose cost varies by index; a thread may run the body
// several times.
template <typename Body>
void parallel_for_dynamic(int64_t n, int max_threads, int64_t grain, Body &&body) {
    using B = std::remove_reference_t<Body>;
    parallel_for_detail::run(n, max_threads, grain < 1 ? 1 : grain, parallel_for_detail::Split::Dynamic,
                             &parallel_for_detail::call<B>, const_cast<void *>(static_cast<const void *>(&body)));
}

// As parallel_for's even contiguous ranges, one per thread, but a thread takes its range in
// shrinking pieces from the front (a quarter of what is left, at least `grain` indices) and,
// once its own is done, takes `grain` indices at a time from the back of the others' ranges.
// For long streaming loops (the one-token products): a thread runs mostly one contiguous
// range, in a few calls, so what the body prefetches ahead stays useful, and a thread that
// falls behind (descheduled, slower memory) is helped at the end instead of waited for.
template <typename Body>
void parallel_for_stealing(int64_t n, int max_threads, int64_t grain, Body &&body) {
    using B = std::remove_reference_t<Body>;
    parallel_for_detail::run(n, max_threads, grain < 1 ? 1 : grain, parallel_for_detail::Split::Stealing,
                             &parallel_for_detail::call<B>, const_cast<void *>(static_cast<const void *>(&body)));
}

// The spin in effect (MST_CPU_SPIN_US when set to 0..1000000, else kDefaultSpinMicros).
int parallel_for_spin_micros();

}  // namespace mst
