// A session's state as bytes: what Session::save_state writes and restore_state checks.
//
// Layout (little-endian as the host writes it; a state is for the machine type that saved it):
//   "MSTSESS\0"            8 bytes of magic
//   u32 format version     kSessionStateVersion; another is MST_ERR_UNSUPPORTED
//   u32 n_past             tokens in the context
//   u64 model fingerprint  model_fingerprint(): another model's state is MST_ERR_INVALID_ARGUMENT
//   u32 n_vocab            the logits' length
//   u32 has_logits         1: the last logits follow the tokens
//   u32 rng_bytes          the random generator, as std::mt19937_64 writes itself
//   u32 reserved           0
//   u64 state_floats       floats of ModelState::contents(n_past)
//   i32 tokens[n_past], char rng[rng_bytes], f32 logits[n_vocab] (if has_logits),
//   f32 state[state_floats]
//   u64 xxHash64 of every byte before it: a truncated or altered state is
//       MST_ERR_BAD_FORMAT or MST_ERR_CHECKSUM, refused before the session changes.
// The contents do not depend on n_ctx: a state restores into any session of the same
// model whose n_ctx holds its tokens. Statistics and the expert budget are not part of it.
#pragma once

#include <cstdint>

#include "model/loaded_model.h"

namespace mst {

inline constexpr char kSessionStateMagic[8] = {'M', 'S', 'T', 'S', 'E', 'S', 'S', '\0'};
inline constexpr uint32_t kSessionStateVersion = 1;

// Identifies the model a state belongs to: its config, tokenizer size, parameter and byte
// counts, and the first bytes of its first tensor (so two checkpoints of one config with
// different weights differ too).
uint64_t model_fingerprint(const LoadedModel &model);

}  // namespace mst
