// Shared by the GGUF tests: a model's logits for every prompt position, and its greedy
// continuation, each from a fresh session.
#pragma once

#include <cstdint>
#include <vector>

#include "moestream.hpp"

namespace mst::test {

inline std::vector<float> gguf_all_logits(const mst::ModelHandle &model, const std::vector<int32_t> &ids) {
    mst_session_params sp = mst::session_params();
    sp.all_logits = 1;
    mst::SessionHandle session(model, sp);
    session.eval(ids);
    const float *logits = nullptr;
    size_t rows = 0, vocab = 0;
    mst::check(mst_session_all_logits(session.get(), &logits, &rows, &vocab));
    return std::vector<float>(logits, logits + rows * vocab);
}

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
