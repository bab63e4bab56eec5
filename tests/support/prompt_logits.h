// Test helper: the logits of every position of a prompt, as the golden tests compare them.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "moestream.hpp"

namespace mst::test {

// Loads `model_path` on the CPU backend (n_threads 0: the library's default), evaluates
// `ids` as one prompt and returns the logits of every position, [ids.size()][vocab].
// Throws mst::Exception when the model does not load or evaluate.
std::vector<float> prompt_logits(const std::string &model_path, const std::vector<int32_t> &ids, int32_t n_threads = 0);
// The same for a loaded model, in a fresh session of n_ctx positions (0: the session
// default).
std::vector<float> prompt_logits(const mst::ModelHandle &model, const std::vector<int32_t> &ids, uint32_t n_ctx = 0);
// The same in a fresh session of `params` (another n_batch, say); all_logits is set here.
std::vector<float> prompt_logits(const mst::ModelHandle &model, const std::vector<int32_t> &ids,
                                 mst_session_params params);
// The logits of every position a session made with all_logits = 1 has evaluated,
// [rows][vocab], for tests that go on using the session.
std::vector<float> session_all_logits(const mst::SessionHandle &session);

}  // namespace mst::test
