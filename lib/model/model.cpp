#include "model/model.h"

namespace mst {

void Model::forward_batch(std::span<const SequenceStep> steps, int32_t experts_per_token, ExpertIoStats &io) {
    for (const SequenceStep &step : steps) {
        ForwardOptions options;
        options.experts_per_token = experts_per_token;
        options.all_logits = step.all_logits;
        options.budget = step.budget;
        options.budget_stats = step.budget_stats;
        forward(*step.state, step.n_past, step.tokens, options, step.logits, io);
    }
}

}  // namespace mst
