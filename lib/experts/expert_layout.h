// Where one routed expert's three matrices live on disk. A model fills this table at load
// time from its checkpoint's tensor names; the expert store only ever sees byte ranges.
#pragma once

#include <cstdint>

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

// SwiGLU expert: out = down( silu(gate x) * (up x) ); gate, up: [I][H], down: [H][I].
struct ExpertLayout {
    ExpertMatrix gate, up, down;
    uint64_t nbytes() const { return gate.nbytes() + up.nbytes() + down.nbytes(); }
};

}  // namespace mst
