// The identity of one routed expert: (layer, expert index).
#pragma once

#include <cstddef>
#include <cstdint>

namespace mst {

struct ExpertKey {
    int32_t layer = 0;
    int32_t expert = 0;
    bool operator==(const ExpertKey &) const = default;
    auto operator<=>(const ExpertKey &) const = default;
};

struct ExpertKeyHash {
    size_t operator()(const ExpertKey &k) const { return (size_t(uint32_t(k.layer)) << 32) ^ size_t(uint32_t(k.expert)); }
};

}  // namespace mst
