// A GGUF SentencePiece vocabulary (tokenizer.ggml.model "llama", as Llama 2, Mistral and
// Mixtral GGUFs carry it: pieces, their scores and token types, no merges) as the
// tokenizer.json that transformers writes for the same SentencePiece model, so that it runs
// through the same BPE, normalizer, decoder and post-processor as a checkpoint's
// tokenizer.json and a converted .mst keeps it as tokenizer.json.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include "format/gguf_file.h"

namespace mst {

// llama.cpp's token types (tokenizer.ggml.token_type).
namespace gguf_token_type {
enum : int64_t { kNormal = 1, kUnknown = 2, kControl = 3, kUserDefined = 4, kUnused = 5, kByte = 6 };
}  // namespace gguf_token_type

// The tokenizer.json document of a "llama" vocabulary. SentencePiece BPE merges the adjacent
// pair whose concatenation is the highest-scoring piece first; the merges written here are
// every split of a normal piece into two pieces, ranked by the merged piece's score, which
// BpeModel's lowest-rank-first loop then applies the same way. Spaces become "▁" (with one
// prepended when tokenizer.ggml.add_space_prefix, default true, says so), a character
// without a piece becomes its <0xNN> byte pieces, else tokenizer.ggml.unknown_token_id;
// control and user-defined pieces are added tokens matched whole; BOS / EOS are added as
// tokenizer.ggml.add_bos_token (default true) and add_eos_token (default false) say.
// `tokens` are valid UTF-8 and `types` one per token within 1..6 (the caller checked).
// MST_ERR_BAD_FORMAT naming the key for a scores array of the wrong type or length, a
// duplicated piece or a token id past the vocabulary.
nlohmann::json gguf_sentencepiece_tokenizer_json(const GgufFile &gguf, const std::vector<std::string> &tokens,
                                                 const std::vector<int64_t> &types);

}  // namespace mst
