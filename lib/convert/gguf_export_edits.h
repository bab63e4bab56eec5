// What llama.cpp's converter changes in a tensor on its way into a GGUF file, as the GGUF
// export (convert/gguf_export.h) applies it to a packed model's tensors: the inverse of what
// the GGUF reader undoes (format/gguf_derived_tensors.h). Rows and column groups are moved
// as stored bytes, so a tensor keeps its type unless a value changes or llama.cpp wants F32.
#pragma once

#include <nlohmann/json.hpp>

#include "format/gguf_derived_tensors.h"
#include "format/safetensors.h"

namespace mst {

struct GgufExportEdit {
    GgufDerivedTensor how;  // shape as written, the rows and column groups gathered, a value function
    bool to_f32 = false;    // written as F32 (vectors, changed values, conv1d)
};

// The edit of tensor `t` for a GGUF of `gguf_arch`: as stored (vectors F32) for qwen3moe and
// deepseek2; for qwen35moe what Qwen3NextModel.modify_tensors does (A_log as -exp(A_log),
// 1 + w for the RMSNorms but the DeltaNet's, conv1d squeezed to [channels, kernel] in F32,
// shared_expert_gate a vector, and with more value than key heads the value heads tiled).
// Throws MST_ERR_BAD_FORMAT for a tensor that does not fit config.json's sizes and
// MST_ERR_UNSUPPORTED for out_proj blocks that the value heads' reorder would cut.
GgufExportEdit gguf_export_edit(const std::string &gguf_arch, const TensorInfo &t, const nlohmann::json &config);

}  // namespace mst
