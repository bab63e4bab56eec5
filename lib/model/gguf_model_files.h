// A GGUF file's config and tokenizer, from its metadata: the hyperparameters under
// "<architecture>.*" become the config.json fields moestream's architectures read, and
// "tokenizer.ggml.*" becomes the tokenizer.json a byte-level BPE tokenizer is built from,
// so a GGUF model runs through the same config checks and tokenizer as a checkpoint.
#pragma once

#include <memory>
#include <string>

#include "format/checkpoint.h"
#include "format/gguf_file.h"
#include "format/model_config.h"
#include "tokenizer/tokenizer.h"

namespace mst {

// The config.json text a Hugging Face checkpoint of this GGUF model would carry.
// MST_ERR_UNSUPPORTED naming general.architecture when moestream does not run it;
// MST_ERR_BAD_FORMAT naming the key when a hyperparameter is missing or mistyped.
std::string gguf_config_json(const GgufFile &gguf);
ModelConfig read_gguf_model_config(const GgufFile &gguf);

// The tokenizer.json (and tokenizer_config.json) text of tokenizer.ggml.*; errors name
// the key: MST_ERR_UNSUPPORTED for a tokenizer model or pre-tokenizer moestream lacks,
// MST_ERR_BAD_FORMAT for missing or inconsistent arrays.
struct GgufTokenizerJson {
    std::string tokenizer;
    std::string config;
};
GgufTokenizerJson gguf_tokenizer_json(const GgufFile &gguf);
std::unique_ptr<Tokenizer> read_gguf_tokenizer(const GgufFile &gguf);

}  // namespace mst
