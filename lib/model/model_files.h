// A model's config and tokenizer: config.json, tokenizer.json and tokenizer_config.json
// beside the safetensors of a checkpoint directory, inside a packed file's metadata, or
// made from a GGUF file's metadata (model/gguf_model_files.h).
#pragma once

#include <memory>

#include "format/checkpoint.h"
#include "format/model_config.h"
#include "tokenizer/tokenizer.h"

namespace mst {

// Errors name the file (or the packed file and the entry): MST_ERR_IO when a directory
// lacks config.json or tokenizer.json, MST_ERR_BAD_FORMAT when a packed file lacks them,
// and every error of parse_model_config and the tokenizer.
ModelConfig read_model_config(const Checkpoint &checkpoint);
std::unique_ptr<Tokenizer> read_model_tokenizer(const Checkpoint &checkpoint);

}  // namespace mst
