// The config.json a synthesized model carries: the source config with its depth cut to
// the layers asked for (every per-layer list cut with it), weight-format fields that no
// longer describe the weights removed, and a note of what was done, so that the file
// says what it is.
#pragma once

#include <cstdint>
#include <string>

#include "format/model_config.h"

namespace mst {

struct SynthConfig {
    std::string json_text;      // the config.json written into the file
    ModelConfig config;         // parsed from json_text
    int64_t source_layers = 0;  // num_hidden_layers of the source config
    // quant_method of the quantization_config removed ("fp8", "compressed-tensors", ...);
    // empty when none was.
    std::string removed_quantization;
    int64_t source_vocab = 0;   // vocab_size of the source config
};

// Prepares `config_text` (read from `origin`, named in errors). layers = 0 keeps the
// source's depth; otherwise 1..num_hidden_layers. The text model's scope is
// `text_config` when the config has one. In that scope num_hidden_layers becomes
// `layers`, every list with one entry per layer (layer_types, ...) keeps its first
// `layers` entries and mlp_only_layers keeps the indices below `layers`.
// quantization_config is removed (synthesized weights are BF16 / Q8 / Q4 whatever the
// source shipped; gpt-oss's MXFP4 one stays, its experts being synthesized in MXFP4),
// and "moestream_synthetic" records the source depth, the seed and what was removed.
// Throws MST_ERR_BAD_FORMAT naming `origin` and the field for invalid JSON or a missing
// or bad field (as parse_model_config; also no routed experts), and
// MST_ERR_INVALID_ARGUMENT for `layers` outside the range. `min_vocab` > vocab_size (a
// copied tokenizer with more ids than the config has embedding rows) raises vocab_size to
// it, so every token id has its rows; a larger vocab_size is kept (rows past the
// tokenizer's ids stay unused, as trained checkpoints pad theirs), so the embedding and
// output head keep the published shape's bytes.
SynthConfig prepare_synth_config(const std::string &config_text, const std::string &origin, int64_t layers,
                                 uint64_t seed, int64_t min_vocab = 0);

}  // namespace mst
