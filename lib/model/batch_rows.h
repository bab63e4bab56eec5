// The rows of a batched step (Model::forward_batch): the steps' tokens one after another in
// one residual stream, which rows each sequence owns, and the pieces every architecture's
// batched forward shares: the embedding lookup and the final head over the rows whose
// logits are wanted.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include "backends/backend.h"
#include "model/ffn.h"
#include "model/model.h"

namespace mst {

struct BatchRows {
    // Throws MST_ERR_INVALID_ARGUMENT for no steps, a step without tokens or state, or one
    // state in two steps.
    explicit BatchRows(std::span<const SequenceStep> steps);

    std::span<const SequenceStep> steps;
    int64_t n_rows = 0;
    std::vector<int64_t> row0;        // first row of each step
    std::vector<RowsBudget> budgets;  // each step's budget rules over its rows

    // x [n_rows][hidden] = the embeddings of every step's tokens (embed: [vocab][hidden]).
    void embed(const WeightView &embed, int64_t hidden, float *x) const;

    // head(rows, m, out): out [m][vocab] = the logits of m rows of the final hidden state
    // (the final norm included). Called once over the rows whose logits the steps want
    // (every row of an all_logits step, else its last), and each step's share copied to
    // its logits; a single step gets them written in place.
    using Head = std::function<void(const float *rows, int64_t m, float *out)>;
    void logits(const float *x, int64_t hidden, int64_t vocab, const Head &head) const;
};

}  // namespace mst
