#include "session/step_batcher.h"

#include <algorithm>
#include <bit>

namespace mst {

void StepBatcher::join() {
    const std::lock_guard<std::mutex> lock(mutex_);
    ++members_;
}

void StepBatcher::leave() {
    {
        const std::lock_guard<std::mutex> lock(mutex_);
        --members_;
    }
    changed_.notify_all();  // the others may be all that is left to wait for
}

void StepBatcher::eval(Session &session, std::span<const int32_t> tokens, EvalKind kind) {
    Item item{&session, tokens, kind, false, nullptr};
    std::unique_lock<std::mutex> lock(mutex_);
    if (pending_.empty()) first_pending_ = std::chrono::steady_clock::now();
    pending_.push_back(&item);
    changed_.notify_all();
    while (!item.done) {
        const auto due = first_pending_ + gather_wait_;
        const bool all_in = int(pending_.size()) >= members_;
        if (!stepping_ && !pending_.empty() && (all_in || std::chrono::steady_clock::now() >= due)) {
            std::vector<Item *> items;
            items.swap(pending_);
            stepping_ = true;
            lock.unlock();
            run_step(items);
            lock.lock();
            stepping_ = false;
            count_step(items);
            for (Item *i : items) i->done = true;
            // Those handed in during the step wait from now on.
            if (!pending_.empty()) first_pending_ = std::chrono::steady_clock::now();
            changed_.notify_all();
        } else if (stepping_ || pending_.empty()) {
            changed_.wait(lock);
        } else {
            changed_.wait_until(lock, due);
        }
    }
    if (item.error) std::rethrow_exception(item.error);
}

void StepBatcher::run_step(std::vector<Item *> &items) {
    std::vector<Session *> sessions;
    std::vector<std::span<const int32_t>> tokens;
    std::vector<EvalKind> kinds;
    for (const Item *i : items) {
        sessions.push_back(i->session);
        tokens.push_back(i->tokens);
        kinds.push_back(i->kind);
    }
    try {
        Session::eval_batch(sessions, tokens, kinds);
        return;
    } catch (...) {
        if (items.size() == 1) {
            items[0]->error = std::current_exception();
            return;
        }
    }
    // A batch fails as a whole, leaving every session as it was: each alone gets its own
    // result or error.
    for (Item *i : items) {
        try {
            i->session->eval(i->tokens, i->kind);
        } catch (...) {
            i->error = std::current_exception();
        }
    }
}

void StepBatcher::count_step(const std::vector<Item *> &items) {
    const uint64_t n = items.size();
    ++stats_.steps;
    stats_.sequences += n;
    for (const Item *i : items) stats_.tokens += i->tokens.size();
    stats_.max_sequences = std::max(stats_.max_sequences, n);
    // 1 -> 0, 2 -> 1, 3-4 -> 2, 5-8 -> 3, ...
    const size_t bucket = size_t(std::bit_width(n - 1));
    ++stats_.steps_by_size[std::min(bucket, std::size(stats_.steps_by_size) - 1)];
}

StepBatcherStats StepBatcher::stats() const {
    const std::lock_guard<std::mutex> lock(mutex_);
    return stats_;
}

}  // namespace mst
