// The metadata llama.cpp needs to load a model from a GGUF file, made from the Hugging Face
// files moestream keeps (config.json, tokenizer.json, tokenizer_config.json) the way
// llama.cpp's convert_hf_to_gguf.py writes them: general.*, the architecture's
// hyperparameters (<arch>.block_count, .expert_count, ...) and the vocabulary under
// tokenizer.ggml.* as a "gpt2" byte-level BPE with the "qwen2" pre-tokenizer. Used by the
// GGUF export and by the tests' GGUF writer, so both write the same keys.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <nlohmann/json.hpp>

#include "format/gguf_names.h"
#include "format/gguf_writer.h"

namespace mst {

// llama.cpp's general.file_type values (llama_ftype, LLAMA_FTYPE_MOSTLY_*), which are
// numbered apart from the ggml types.
namespace llama_ftype {
constexpr uint32_t ALL_F32 = 0, MOSTLY_F16 = 1, MOSTLY_Q4_0 = 2, MOSTLY_Q4_1 = 3, MOSTLY_Q8_0 = 7, MOSTLY_Q5_0 = 8,
                   MOSTLY_Q5_1 = 9, MOSTLY_IQ4_NL = 25, MOSTLY_IQ4_XS = 30, MOSTLY_BF16 = 32, MOSTLY_MXFP4_MOE = 38;
// The K-quant file types whose main type is the one named (the _S mixes for Q3_K .. Q5_K).
constexpr uint32_t MOSTLY_Q2_K = 10, MOSTLY_Q3_K_S = 11, MOSTLY_Q4_K_S = 14, MOSTLY_Q5_K_S = 16, MOSTLY_Q6_K = 18;
}

// Adds the metadata. Throws MST_ERR_BAD_FORMAT naming the field when config.json lacks a
// hyperparameter or the tokenizer's vocabulary has an id outside vocab_size.
void add_gguf_model_metadata(GgufWriter &w, const GgufArchitecture &arch, const nlohmann::json &config,
                             const nlohmann::json &tokenizer, const nlohmann::json &tokenizer_config,
                             uint32_t file_type);

// tokenizer.ggml.* from a byte-level BPE tokenizer.json and its tokenizer_config.json: the
// vocabulary padded to vocab_size as convert_hf_to_gguf.py pads it, the token types, the
// merges and the special token ids; `pre` is tokenizer.ggml.pre, the name of the split
// pattern. Throws MST_ERR_BAD_FORMAT for an id outside vocab_size (nlohmann::json's
// exceptions for a malformed tokenizer.json).
void add_gguf_vocabulary(GgufWriter &w, const nlohmann::json &tokenizer, const nlohmann::json &tokenizer_config,
                         size_t vocab_size, std::string_view pre = "qwen2");

// The keys of qwen35moe / qwen3next after the common ones (Qwen3NextModel.set_gguf_parameters):
// attention sizes with the partial RoPE, the expert and shared expert sizes, the Gated
// DeltaNet sizes under ssm.*, which layers are recurrent, and (qwen35moe, `sections`) the
// M-RoPE sections. `a` is "<arch>.". Throws MST_ERR_BAD_FORMAT naming a missing field.
void add_qwen_hybrid_hyperparameters(GgufWriter &w, const std::string &a, const nlohmann::json &config, bool sections);

}  // namespace mst
