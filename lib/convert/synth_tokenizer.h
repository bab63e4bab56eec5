// A byte-level tokenizer for a synthesized model: the 256 byte tokens, the special
// tokens the config's ids name (BOS, EOS, padding), and filler tokens up to the
// vocabulary size, each a short made-up word with a leading space, so that any prompt
// encodes (byte by byte: there are no merges) and whatever random weights generate
// decodes to readable text. Or a trained model's own tokenizer, copied (read_source_tokenizer).
#pragma once

#include <cstdint>
#include <string>

#include "format/model_config.h"

namespace mst {

struct SynthTokenizer {
    std::string tokenizer_json;
    std::string tokenizer_config_json;  // names the EOS and BOS tokens
    int64_t vocab_size = 0;             // max token id + 1 over the vocabulary and added tokens
};

// Throws MST_ERR_INVALID_ARGUMENT when the vocabulary cannot hold the 256 byte tokens
// and the special ones, or a special id lies outside it.
SynthTokenizer make_synth_tokenizer(const ModelConfig &config);

// A trained model's own tokenizer, copied as it is (`synth --tokenizer-from`): `path` is its
// tokenizer.json or the checkpoint directory holding one; the tokenizer_config.json beside
// it comes along when present (else a minimal one), so the synthesized model splits text
// into the trained model's tokens and routing statistics of the two count the same ids.
// Throws MST_ERR_IO naming the path when no tokenizer.json is there, MST_ERR_BAD_FORMAT
// (from the tokenizer's parser) when it is not one the loader reads.
SynthTokenizer read_source_tokenizer(const std::string &path);

// Throws MST_ERR_INVALID_ARGUMENT when a special token id of `config` (EOS, BOS, padding)
// is no id of `tokenizer`, naming the id and `origin`.
void check_special_ids(const ModelConfig &config, const SynthTokenizer &tokenizer, const std::string &origin);

}  // namespace mst
