// Where one routed expert's three matrices live on disk. A model fills this table at load
// time from its checkpoint's tensor names; the expert store only ever sees byte ranges.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "core/dtype.h"

namespace mst {

struct ExpertMatrix {
    uint32_t file = 0;    // index into the storage tier's files
    uint64_t offset = 0;  // absolute byte offset of row 0
    DType dtype = DType::BF16;
    int64_t rows = 0;
    int64_t cols = 0;
    uint64_t nbytes() const { return uint64_t(rows) * uint64_t(cols) * dtype_size(dtype); }
};

// The stored pieces of one expert (matrices, biases), in an order the architecture
// defines: the store reads them without knowing what they mean.
struct ExpertLayout {
    std::vector<ExpertMatrix> parts;
    uint64_t nbytes() const {
        uint64_t n = 0;
        for (const ExpertMatrix &m : parts) n += m.nbytes();
        return n;
    }
};

// The part order of a SwiGLU expert, out = down(silu(gate x) * (up x)), with gate and
// up [I][H] and down [H][I] (Qwen3-MoE, Mixtral, DeepSeek-V3).
namespace swiglu_part {
constexpr size_t kGate = 0, kUp = 1, kDown = 2;
}

}  // namespace mst
