// What a conversion will write, decided before any byte is: the architecture is built
// over the source directory through the model registry, which tells the converter,
// without it knowing any architecture, each layer's experts and their parts (the
// ExpertStoreFactory receives them), how each dense weight is used (WeightUse) and
// which tensors the architecture looks at (the checkpoint's lookup observer).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "convert/convert_options.h"
#include "experts/expert_layout.h"
#include "format/checkpoint.h"
#include "format/model_config.h"
#include "model/block_fp8.h"

namespace mst {

struct ResidentPlan {
    TensorInfo source;
    DType dtype;      // as written
    uint64_t nbytes;  // as written
    // An F8_E4M3 source written as Q8: its block scales, read to dequantize it (and not
    // written themselves).
    std::optional<TensorInfo> fp8_scale;
};

struct ConvertPlan {
    std::vector<ResidentPlan> resident;                     // sorted by name
    std::vector<TensorInfo> dropped;                        // never looked at by the architecture
    std::vector<std::vector<ExpertLayout>> source_experts;  // [layer][expert], as located in the source
    // The same experts as written: parts in the same order with their output dtype and
    // offset inside the raw blob (64-byte aligned), blob.raw_bytes set.
    std::vector<std::vector<ExpertLayout>> packed_experts;
    Fp8BlockSize fp8_block;         // of the source's FP8 weights (quantization_config)
    // What the options asked for but could not change, one line each ("12 expert parts
    // of dtype U8 (MXFP4 blocks) kept as stored"), for the user to be told.
    std::vector<std::string> notes;
    uint64_t source_bytes = 0;      // resident + expert bytes to read
    uint64_t max_output_bytes = 0;  // the file's size if no blob compresses
};

// Builds the architecture over `source` (a checkpoint directory) and plans the file.
// Throws what building the model throws (MST_ERR_UNSUPPORTED for an unknown model_type).
ConvertPlan plan_conversion(Checkpoint &source, const ModelConfig &config, const ConvertOptions &options);

}  // namespace mst
