// Shared by the GGUF tests: a model's greedy continuation from a fresh session (the logits
// of every prompt position come from prompt_logits.h).
#pragma once

#include <cstdint>
#include <vector>

#include "moestream.hpp"
#include "prompt_logits.h"

namespace mst::test {

inline std::vector<int32_t> gguf_greedy_ids(const mst::ModelHandle &model, const std::vector<int32_t> &prompt,
                                            size_t n) {
    mst::SessionHandle session(model);
    mst_generate_params gp = mst::generate_params();
    gp.max_tokens = int32_t(n);
    gp.sampler.temperature = 0.0f;
    gp.ignore_eos = 1;
    std::vector<int32_t> ids;
    session.generate(prompt, gp, [&](int32_t token, std::string_view) {
        if (token >= 0) ids.push_back(token);
        return false;
    });
    return ids;
}

}  // namespace mst::test
