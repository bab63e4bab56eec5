// ARC (Megiddo & Modha, FAST 2003): resident experts split into T1 (seen once recently)
// and T2 (seen again), with ghost lists B1 / B2 remembering what each recently evicted.
// A miss that hits a ghost list moves the target size p of T1 toward the side that
// would have kept it, so the cache adapts between recency (a conversation's current
// topic) and frequency (experts every token uses). Capacity is counted in experts:
// experts of one model have one size per layer type, so bytes and counts agree.
#include <algorithm>
#include <list>
#include <unordered_map>

#include "experts/eviction_policies.h"

namespace mst {

namespace {

class ArcPolicy final : public EvictionPolicy {
public:
    const char *name() const override { return "arc"; }
    void set_capacity(size_t experts) override { capacity_ = std::max<size_t>(experts, 1); }

    void on_hit(const ExpertKey &key) override { move_to(key, kT2); }

    void on_miss(const ExpertKey &key) override {
        auto it = where_.find(key);
        if (it == where_.end()) return;
        const size_t b1 = lists_[kB1].size(), b2 = lists_[kB2].size();
        if (it->second.list == kB1) {
            target_ = std::min<double>(double(capacity_), target_ + std::max(double(b2) / double(b1), 1.0));
        } else if (it->second.list == kB2) {
            target_ = std::max(0.0, target_ - std::max(double(b1) / double(b2), 1.0));
        }
    }

    void on_insert(const ExpertKey &key) override {
        auto it = where_.find(key);
        const bool ghost = it != where_.end() && (it->second.list == kB1 || it->second.list == kB2);
        move_to(key, ghost ? kT2 : kT1);
        // Ghost bookkeeping: |T1| + |B1| <= c and the four lists <= 2c.
        if (lists_[kT1].size() + lists_[kB1].size() > capacity_ && !lists_[kB1].empty()) drop_lru(kB1);
        while (total() > 2 * capacity_ && !lists_[kB2].empty()) drop_lru(kB2);
    }

    ExpertKey victim(const ExpertKey &incoming) override {
        const size_t t1 = lists_[kT1].size();
        auto it = where_.find(incoming);
        const bool in_b2 = it != where_.end() && it->second.list == kB2;
        const bool from_t1 = t1 >= 1 && (double(t1) > target_ || (in_b2 && double(t1) == target_));
        if (from_t1 || lists_[kT2].empty()) return lists_[kT1].back();
        return lists_[kT2].back();
    }

    void on_evict(const ExpertKey &key) override { move_to(key, where_.at(key).list == kT1 ? kB1 : kB2); }

private:
    enum List { kT1 = 0, kT2 = 1, kB1 = 2, kB2 = 3 };
    struct Place {
        List list;
        std::list<ExpertKey>::iterator it;
    };

    size_t total() const { return lists_[0].size() + lists_[1].size() + lists_[2].size() + lists_[3].size(); }

    void move_to(const ExpertKey &key, List list) {
        auto it = where_.find(key);
        if (it != where_.end()) lists_[it->second.list].erase(it->second.it);
        lists_[list].push_front(key);
        where_[key] = Place{list, lists_[list].begin()};
    }

    void drop_lru(List list) {
        where_.erase(lists_[list].back());
        lists_[list].pop_back();
    }

    std::list<ExpertKey> lists_[4];  // front = most recent
    std::unordered_map<ExpertKey, Place, ExpertKeyHash> where_;
    size_t capacity_ = 1;
    double target_ = 0.0;  // p: the target size of T1
};

}  // namespace

std::unique_ptr<EvictionPolicy> make_arc_policy() { return std::make_unique<ArcPolicy>(); }

}  // namespace mst
