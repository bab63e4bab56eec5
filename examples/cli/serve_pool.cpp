#include "serve_pool.h"

#include <algorithm>

namespace mst::cli {

SessionPool::SessionPool(const ModelHandle &model, const mst_session_params &params, const mst_expert_budget &budget,
                         int n_sessions, int max_waiting)
    : max_waiting_(max_waiting) {
    for (int i = 0; i < n_sessions; ++i) {
        slots_.push_back(std::make_unique<Slot>(Slot{SessionHandle(model, params), {}, false}));
        check(mst_session_set_expert_budget(slots_.back()->session.get(), &budget));
    }
}

SessionPool::Lease::~Lease() {
    if (pool_) pool_->release(*slot_);
}

std::optional<SessionPool::Lease> SessionPool::acquire(const std::vector<int32_t> &prompt) {
    std::unique_lock<std::mutex> lock(mutex_);
    const auto any_free = [&] {
        return std::any_of(slots_.begin(), slots_.end(), [](const auto &s) { return !s->busy; });
    };
    if (closed_ || (!any_free() && waiting_ >= max_waiting_)) return std::nullopt;
    ++waiting_;
    freed_.wait(lock, [&] { return closed_ || any_free(); });
    --waiting_;
    if (closed_) return std::nullopt;
    Slot *best = nullptr;
    size_t best_common = 0;
    for (const auto &s : slots_) {
        if (s->busy) continue;
        const auto end = std::mismatch(s->tokens.begin(), s->tokens.end(), prompt.begin(), prompt.end());
        const size_t common = size_t(end.first - s->tokens.begin());
        if (!best || common > best_common) {
            best = s.get();
            best_common = common;
        }
    }
    best->busy = true;
    return Lease(*this, *best);
}

void SessionPool::release(Slot &slot) {
    {
        const std::lock_guard<std::mutex> lock(mutex_);
        slot.busy = false;
    }
    freed_.notify_one();
}

void SessionPool::close() {
    {
        const std::lock_guard<std::mutex> lock(mutex_);
        closed_ = true;
    }
    freed_.notify_all();
}

int SessionPool::busy() const {
    const std::lock_guard<std::mutex> lock(mutex_);
    return int(std::count_if(slots_.begin(), slots_.end(), [](const auto &s) { return s->busy; }));
}

int SessionPool::waiting() const {
    const std::lock_guard<std::mutex> lock(mutex_);
    return waiting_;
}

}  // namespace mst::cli
