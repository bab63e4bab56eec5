// The sessions `moestream serve` decodes with, how requests wait for one, and the order in
// which running requests take their decode steps.
//
// Scheduling: each running request owns one session (--parallel of them). Their forward
// passes take turns through DecodeTurns, first come first served at every token, so N
// streams advance round-robin one decode step each (a prompt's prefill is one turn).
// A batched multi-sequence step would replace DecodeTurns: the sequences that hold a turn
// now would be stepped together; the pool, the queue and the handlers stay as they are.
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

// First come, first served turns at the model: a holder leaves after each decode step and
// queues again behind the others.
class DecodeTurns {
public:
    void enter();
    void leave();

private:
    std::mutex mutex_;
    std::condition_variable changed_;
    uint64_t next_ticket_ = 0, serving_ = 0;
};

// Holds a turn for a scope; between steps, the others step while `work` (writing to the
// client) runs without the turn.
class DecodeTurn {
public:
    explicit DecodeTurn(DecodeTurns &turns) : turns_(turns) { turns_.enter(); }
    ~DecodeTurn() { turns_.leave(); }
    DecodeTurn(const DecodeTurn &) = delete;
    DecodeTurn &operator=(const DecodeTurn &) = delete;
    template <typename Work>
    void step_others_during(Work work) {
        turns_.leave();
        try {
            work();
        } catch (...) {
            turns_.enter();
            throw;
        }
        turns_.enter();
    }

private:
    DecodeTurns &turns_;
};

}  // namespace mst::cli
