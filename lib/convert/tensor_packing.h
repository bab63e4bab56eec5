// Turning source tensors into the bytes a packed file stores: dense tensors, quantized
// row by row or copied, and experts, whose parts become one blob, optionally zstd-
// compressed, with its xxHash64.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "experts/expert_layout.h"
#include "format/checkpoint.h"
#include "model/block_fp8.h"

namespace mst {

// `source`'s bytes as `dtype` (its own, or a quantized type for a float or block-quantized
// source): rows of the last dimension are converted to float32 and quantized. Throws naming `name` and the
// row when a row cannot be quantized (a non-finite value, a value beyond f16's range).
std::vector<uint8_t> convert_tensor(const std::vector<uint8_t> &source, DType source_dtype, DType dtype,
                                    int64_t rows, int64_t cols, const std::string &name);

struct PackedBlobBytes {
    std::vector<uint8_t> stored;  // what goes to disk
    uint64_t raw_bytes = 0;
    BlobCodec codec = BlobCodec::None;
    uint64_t xxh64 = 0;           // of `stored`
};

// One expert's blob: each source part read from the checkpoint and converted to its
// packed part's dtype at its packed offset (an F8_E4M3 part packed as Q8 / Q4 is
// dequantized with the next source part, its block scales in `fp8_block` blocks, which
// the packed layout leaves out); compressed when zstd_level > 0 and that makes it
// smaller. Errors name the layer, expert and part.
PackedBlobBytes pack_expert(const Checkpoint &source, const ExpertLayout &source_layout, const ExpertLayout &packed,
                            Fp8BlockSize fp8_block, int zstd_level, int layer, int expert);

}  // namespace mst
