// The sessions `moestream serve` decodes with, and how requests wait for one.
//
// Scheduling: each running request owns one session (--parallel of them) and generates
// through the server's mst_batcher (serve_generation.h): at every step the running
// requests' next tokens (and a newly arrived prompt) are evaluated as one batch, so an
// expert read from disk serves every sequence routed to it. Requests beyond --parallel
// wait here for a session, up to --queue of them.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

#include "moestream.hpp"

namespace mst::cli {

class SessionPool {
public:
    SessionPool(const ModelHandle &model, const mst_session_params &params, const mst_expert_budget &budget,
                int n_sessions, int max_waiting);

    struct Slot {
        SessionHandle session;
        std::vector<int32_t> tokens;  // what its context holds, as far as the server knows
        bool busy = false;
    };

    // A session held by one request; given back when destroyed.
    class Lease {
    public:
        Lease(SessionPool &pool, Slot &slot) : pool_(&pool), slot_(&slot) {}
        Lease(Lease &&other) noexcept : pool_(other.pool_), slot_(other.slot_) { other.pool_ = nullptr; }
        Lease(const Lease &) = delete;
        Lease &operator=(const Lease &) = delete;
        ~Lease();
        Slot &slot() const { return *slot_; }

    private:
        SessionPool *pool_;
        Slot *slot_;
    };

    // A free session, the one whose context shares the longest prefix with `prompt`; waits
    // while all are busy. nullopt when max_waiting requests already wait (the server then
    // answers 503) or the pool was closed while waiting.
    std::optional<Lease> acquire(const std::vector<int32_t> &prompt);
    // Wake every waiter empty-handed; acquire fails from now on.
    void close();

    int size() const { return int(slots_.size()); }
    int busy() const;
    int waiting() const;

private:
    void release(Slot &slot);

    mutable std::mutex mutex_;
    std::condition_variable freed_;
    std::vector<std::unique_ptr<Slot>> slots_;
    int max_waiting_;
    int waiting_ = 0;
    bool closed_ = false;
};

}  // namespace mst::cli
