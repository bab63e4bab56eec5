#include "q4_expert_store.h"

#include "core/quant.h"
#include "cpu_op_fixture.h"

namespace mst::test {

Q4ExpertStore::Q4ExpertStore(int64_t groups, int64_t experts, int64_t hidden, int64_t inter, uint32_t seed,
                             KeyOf key_of) {
    if (!key_of) key_of = [](int64_t g, int64_t e, int64_t which) { return make_expert_key(g, e, which); };
    const size_t gate_bytes = size_t(inter * (hidden / 32)) * sizeof(BlockQ4);
    const size_t down_bytes = size_t(hidden * (inter / 32)) * sizeof(BlockQ4);
    expert_bytes = 2 * gate_bytes + down_bytes;
    store = AlignedBuffer(size_t(groups * experts) * expert_bytes, "test experts");
    uint8_t *at = store.data();
    auto part = [&](int64_t rows, int64_t cols, int64_t g, int64_t e, int64_t which) {
        const std::vector<float> f = random_floats(size_t(rows * cols), seed++, -0.3f, 0.3f);
        for (int64_t r = 0; r < rows; ++r)
            quantize_row_q4(f.data() + r * cols, cols, reinterpret_cast<BlockQ4 *>(at) + r * (cols / 32));
        WeightView w{DType::Q4, at, rows, cols};
        w.expert_key = key_of(g, e, which);
        at += size_t(rows * (cols / 32)) * sizeof(BlockQ4);
        return w;
    };
    gate.resize(size_t(groups));
    up.resize(size_t(groups));
    down.resize(size_t(groups));
    for (int64_t g = 0; g < groups; ++g)
        for (int64_t e = 0; e < experts; ++e) {
            gate[size_t(g)].push_back(part(inter, hidden, g, e, 0));
            up[size_t(g)].push_back(part(inter, hidden, g, e, 1));
            down[size_t(g)].push_back(part(hidden, inter, g, e, 2));
        }
}

}  // namespace mst::test
