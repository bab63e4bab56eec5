// Greedy decoding after a dataset's golden prompt, for tests that compare decode steps under
// different settings (test_vulkan_replay, test_vulkan_overlap_switches): the prompt, then
// `prompt_done` (where a test reads its counters), then one step at a time to `positions`,
// each step's input the previous logits' arg max.
#pragma once

#include <algorithm>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "golden.h"
#include "model/loaded_model.h"

namespace mst::test {

struct GreedySteps {
    std::vector<int32_t> ids;                // the input of each decode step
    std::vector<std::vector<float>> logits;  // the output of each decode step
};

inline GreedySteps greedy_after_prompt(LoadedModel &model, const std::string &dir, int32_t positions,
                                       const std::function<void()> &prompt_done = {}) {
    const Golden golden = load_golden(dir + "/golden.safetensors");
    ForwardOptions fo;
    fo.experts_per_token = model.experts_per_token;
    const auto state = model.model->create_state(positions + 1);
    std::vector<float> logits(size_t(model.config.vocab_size));
    ExpertIoStats io;
    model.model->forward(*state, 0, golden.input_ids, fo, logits.data(), io);
    if (prompt_done) prompt_done();
    GreedySteps steps;
    for (int32_t pos = int32_t(golden.input_ids.size()); pos < positions; ++pos) {
        const int32_t next = int32_t(std::max_element(logits.begin(), logits.end()) - logits.begin());
        steps.ids.push_back(next);
        const std::vector<int32_t> one{next};
        model.model->forward(*state, pos, one, fo, logits.data(), io);
        steps.logits.push_back(logits);
    }
    return steps;
}

}  // namespace mst::test
