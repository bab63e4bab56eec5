// Least recently used: a list in access order and an index into it.
#include <list>
#include <unordered_map>

#include "experts/eviction_policies.h"

namespace mst {

namespace {

class LruPolicy final : public EvictionPolicy {
public:
    const char *name() const override { return "lru"; }
    void on_hit(const ExpertKey &key) override { order_.splice(order_.begin(), order_, where_.at(key)); }
    void on_insert(const ExpertKey &key) override {
        order_.push_front(key);
        where_[key] = order_.begin();
    }
    ExpertKey victim(const ExpertKey &) override { return order_.back(); }
    void on_evict(const ExpertKey &key) override {
        order_.erase(where_.at(key));
        where_.erase(key);
    }

private:
    std::list<ExpertKey> order_;  // front = most recently used
    std::unordered_map<ExpertKey, std::list<ExpertKey>::iterator, ExpertKeyHash> where_;
};

}  // namespace

std::unique_ptr<EvictionPolicy> make_lru_policy() { return std::make_unique<LruPolicy>(); }

}  // namespace mst
