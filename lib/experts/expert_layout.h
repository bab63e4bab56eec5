// Where one routed expert's three matrices live on disk. A model fills this table at load
// time from its checkpoint's tensor names; the expert store only ever sees byte ranges.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

#include "core/dtype.h"

namespace mst {

struct ExpertMatrix {
    uint32_t file = 0;    // index into the storage tier's files
    uint64_t offset = 0;  // absolute byte offset of row 0 (in a blob: offset in its raw bytes)
    DType dtype = DType::BF16;
    int64_t rows = 0;
    int64_t cols = 0;
    // A row-major [rows][cols] matrix that the expert function only multiplies through
    // Backend::matmul, so the converter may store it block-quantized. An architecture
    // sets false for parts used otherwise (transposed, biases read as floats, scales).
    bool quantizable = true;
    uint64_t nbytes() const { return uint64_t(rows) * dtype_row_bytes(dtype, cols); }
};

enum class BlobCodec : uint8_t { None = 0, Zstd = 1 };

// A packed file stores each expert as one blob: its parts back to back, 4 KiB aligned on
// disk, optionally zstd-compressed, with an xxHash64 of the stored bytes. The store reads
// it in one request, checks it and decodes it into the expert's buffer.
struct ExpertBlob {
    uint32_t file = 0;
    uint64_t offset = 0;        // absolute, in the file
    uint64_t stored_bytes = 0;  // on disk (compressed size for zstd)
    uint64_t raw_bytes = 0;     // decoded; every part lies inside [0, raw_bytes)
    BlobCodec codec = BlobCodec::None;
    uint64_t xxh64 = 0;         // of the stored bytes, seed 0
};

// The stored pieces of one expert (matrices, biases), in an order the architecture
// defines: the store reads them without knowing what they mean. With a blob, the parts'
// offsets are relative to the blob's raw bytes and their `file` is unused.
struct ExpertLayout {
    std::vector<ExpertMatrix> parts;
    std::optional<ExpertBlob> blob;
    // The bytes the expert occupies in memory.
    uint64_t nbytes() const {
        if (blob) return blob->raw_bytes;
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
