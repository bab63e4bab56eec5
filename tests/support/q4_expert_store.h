// Q4 SwiGLU experts for the streamed-expert tests (GPU expert cache, host import, guesses
// copied ahead, the transfer lane): every part of every expert in one page-aligned block,
// as the host expert store holds them (so a backend can import it), each part a keyed
// WeightView. Parts are laid out gate, up, down per expert, experts in order, groups in
// order; each part is random values in [-0.3, 0.3] quantized, from consecutive seeds.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "backends/backend.h"
#include "core/aligned_buffer.h"

namespace mst::test {

struct Q4ExpertStore {
    // The key of part `which` (0 gate, 1 up, 2 down) of expert `e` of group `g`.
    using KeyOf = std::function<uint64_t(int64_t g, int64_t e, int64_t which)>;
    // `groups` groups (usually layers) of `experts` experts each, gate and up
    // [inter][hidden], down [hidden][inter]; the first part's values from `seed`. By default
    // group g's expert e is layer g's expert e.
    Q4ExpertStore(int64_t groups, int64_t experts, int64_t hidden, int64_t inter, uint32_t seed, KeyOf key_of = {});

    AlignedBuffer store;
    std::vector<std::vector<WeightView>> gate, up, down;  // [group][expert]
    uint64_t expert_bytes = 0;                           // one expert's three parts
};

}  // namespace mst::test
