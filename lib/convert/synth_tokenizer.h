// A byte-level tokenizer for a synthesized model: the 256 byte tokens, the special
// tokens the config's ids name (BOS, EOS, padding), and filler tokens up to the
// vocabulary size, each a short made-up word with a leading space, so that any prompt
// encodes (byte by byte: there are no merges) and whatever random weights generate
// decodes to readable text.
#pragma once

#include <string>

#include "format/model_config.h"

namespace mst {

struct SynthTokenizer {
    std::string tokenizer_json;
    std::string tokenizer_config_json;  // names the EOS and BOS tokens
};

// Throws MST_ERR_INVALID_ARGUMENT when the vocabulary cannot hold the 256 byte tokens
// and the special ones, or a special id lies outside it.
SynthTokenizer make_synth_tokenizer(const ModelConfig &config);

}  // namespace mst
