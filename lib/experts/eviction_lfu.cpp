// Least frequently used, with aging: every access counts, the least-counted resident
// expert goes first (the least recent among equals), and all counts halve every
// `period` accesses so that experts popular long ago do not stay forever.
#include <set>
#include <tuple>
#include <unordered_map>

#include "experts/eviction_policies.h"

namespace mst {

namespace {

class LfuPolicy final : public EvictionPolicy {
public:
    const char *name() const override { return "lfu"; }
    void set_capacity(size_t experts) override { period_ = std::max<size_t>(64, 8 * experts); }

    void on_hit(const ExpertKey &key) override { touch(key); }
    void on_miss(const ExpertKey &key) override { touch(key); }  // counts survive eviction
    void on_insert(const ExpertKey &key) override {
        Count &c = counts_[key];
        resident_.insert(Rank{c.count, c.last, key});
        c.resident = true;
    }
    ExpertKey victim(const ExpertKey &) override { return std::get<2>(*resident_.begin()); }
    void on_evict(const ExpertKey &key) override {
        Count &c = counts_.at(key);
        resident_.erase(Rank{c.count, c.last, key});
        c.resident = false;
    }

private:
    using Rank = std::tuple<uint64_t, uint64_t, ExpertKey>;  // (count, last access, key)
    struct Count {
        uint64_t count = 0;
        uint64_t last = 0;
        bool resident = false;
    };

    void touch(const ExpertKey &key) {
        Count &c = counts_[key];
        if (c.resident) resident_.erase(Rank{c.count, c.last, key});
        ++c.count;
        c.last = ++tick_;
        if (c.resident) resident_.insert(Rank{c.count, c.last, key});
        if (tick_ % period_ == 0) age();
    }

    void age() {
        resident_.clear();
        for (auto &[key, c] : counts_) {
            c.count /= 2;
            if (c.resident) resident_.insert(Rank{c.count, c.last, key});
        }
    }

    std::unordered_map<ExpertKey, Count, ExpertKeyHash> counts_;
    std::set<Rank> resident_;
    uint64_t tick_ = 0;
    size_t period_ = 1024;
};

}  // namespace

std::unique_ptr<EvictionPolicy> make_lfu_policy() { return std::make_unique<LfuPolicy>(); }

}  // namespace mst
