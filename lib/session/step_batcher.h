// Generations on several threads, one session each, whose evaluations run together: a
// generation hands each evaluation (its prompt, then every sampled token) to the batcher
// and waits; a step gathers what every generation has handed in and runs it as one
// Session::eval_batch, so that an expert read from storage serves every sequence routed
// to it. The thread that finds a step due runs it (no thread of its own).
//
// When a step is due: once every generation that joined has handed in its evaluation, or
// gather_wait after the first one did, whichever is first, so that a generation busy
// elsewhere (writing to a slow client) delays the others by at most that much; it joins
// the next step.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <mutex>
#include <span>
#include <vector>

#include "session/session.h"

namespace mst {

struct StepBatcherStats {
    uint64_t steps = 0;       // batched evaluations run
    uint64_t sequences = 0;   // sessions over all steps (mean batch size = sequences / steps)
    uint64_t tokens = 0;      // tokens over all steps
    uint64_t max_sequences = 0;
    // Steps by their number of sessions: 1, 2, 3-4, 5-8, 9-16, 17-32, more.
    uint64_t steps_by_size[7] = {};
};

class StepBatcher {
public:
    StepBatcher(const LoadedModel &model, std::chrono::microseconds gather_wait)
        : model_(model), gather_wait_(gather_wait) {}
    StepBatcher(const StepBatcher &) = delete;
    StepBatcher &operator=(const StepBatcher &) = delete;

    const LoadedModel &model() const { return model_; }

    // A generation is a member while it runs: the steps wait for members only.
    void join();
    void leave();

    // Append tokens to session in the next step; returns when it has run. Throws what
    // session.eval(tokens) would have thrown (the step is retried session by session
    // when the batch as a whole fails, so that each gets its own error).
    void eval(Session &session, std::span<const int32_t> tokens, EvalKind kind);

    StepBatcherStats stats() const;

private:
    struct Item {
        Session *session;
        std::span<const int32_t> tokens;
        EvalKind kind;
        bool done = false;
        std::exception_ptr error;
    };
    // Run the items (outside the lock): together, else one by one.
    void run_step(std::vector<Item *> &items);
    void count_step(const std::vector<Item *> &items);

    const LoadedModel &model_;
    const std::chrono::microseconds gather_wait_;
    mutable std::mutex mutex_;
    std::condition_variable changed_;
    std::vector<Item *> pending_;
    std::chrono::steady_clock::time_point first_pending_;
    int members_ = 0;
    bool stepping_ = false;
    StepBatcherStats stats_;
};

// Leaves on destruction; joins on construction when given a batcher.
class StepBatcherMembership {
public:
    explicit StepBatcherMembership(StepBatcher *b) : b_(b) {
        if (b_) b_->join();
    }
    ~StepBatcherMembership() {
        if (b_) b_->leave();
    }
    StepBatcherMembership(const StepBatcherMembership &) = delete;
    StepBatcherMembership &operator=(const StepBatcherMembership &) = delete;

private:
    StepBatcher *b_;
};

}  // namespace mst
