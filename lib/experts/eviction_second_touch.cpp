// Second-touch admission around another policy: a missed expert is cached only when it
// was also missed within the last `window` misses (a ghost list of keys, no bytes), so an
// expert used once and not again soon never takes a resident's place. On the trained
// models' routing most cached experts are evicted before a single hit (bench_routing gap:
// 62-94 % at 25 % cached), which is the pollution this filter is for. The window is the
// cache's capacity in experts: an expert that comes back sooner than the cache turns over.
#include <algorithm>
#include <deque>
#include <string>
#include <unordered_map>

#include "experts/eviction_policies.h"

namespace mst {

namespace {

class SecondTouchPolicy final : public EvictionPolicy {
public:
    SecondTouchPolicy(std::unique_ptr<EvictionPolicy> base, std::string name)
        : base_(std::move(base)), name_(std::move(name)) {}
    const char *name() const override { return name_.c_str(); }
    void set_capacity(size_t experts) override {
        window_ = std::max<size_t>(experts, 1);
        base_->set_capacity(experts);
    }
    void on_hit(const ExpertKey &key) override { base_->on_hit(key); }
    void on_miss(const ExpertKey &key) override {
        base_->on_miss(key);
        ++ghost_[key];
        order_.push_back(key);
        while (order_.size() > window_ + 1) {  // this miss and the `window_` before it
            auto it = ghost_.find(order_.front());
            if (--it->second == 0) ghost_.erase(it);
            order_.pop_front();
        }
    }
    void on_insert(const ExpertKey &key) override { base_->on_insert(key); }
    ExpertKey victim(const ExpertKey &incoming) override { return base_->victim(incoming); }
    void on_evict(const ExpertKey &key) override { base_->on_evict(key); }
    // The incoming expert's own miss is in the window: a second touch means two of them.
    bool admit(const ExpertKey &incoming, const ExpertKey &victim) override {
        auto it = ghost_.find(incoming);
        return it != ghost_.end() && it->second >= 2 && base_->admit(incoming, victim);
    }

private:
    std::unique_ptr<EvictionPolicy> base_;
    std::string name_;
    size_t window_ = 64;
    std::unordered_map<ExpertKey, uint32_t, ExpertKeyHash> ghost_;  // misses of each key in the window
    std::deque<ExpertKey> order_;
};

}  // namespace

std::unique_ptr<EvictionPolicy> make_second_touch_policy(std::unique_ptr<EvictionPolicy> base, std::string name) {
    return std::make_unique<SecondTouchPolicy>(std::move(base), std::move(name));
}

}  // namespace mst
