// Every id that ends a sequence. Checkpoints name them in three places, and a model
// stops on any of them: gpt-oss and Kimi list several in generation_config.json (as
// transformers' generate() uses them) while their tokenizer names only one.
#pragma once

#include <cstdint>
#include <vector>

#include "format/checkpoint.h"
#include "format/model_config.h"
#include "tokenizer/tokenizer.h"

namespace mst {

// The union, sorted, of the tokenizer's eos token, config.json's eos_token_id (an id
// or a list) and generation_config.json's (a file beside the weights, or the packed
// file's entry of that name). An id outside 0..config.vocab_size-1, or a
// generation_config.json that is not JSON or has an eos_token_id that is not an id or a
// list of ids, is MST_ERR_BAD_FORMAT naming the file.
std::vector<int32_t> collect_eos_ids(const Checkpoint &checkpoint, const ModelConfig &config,
                                     const Tokenizer &tokenizer);

}  // namespace mst
