#include "model/batch_rows.h"

#include <algorithm>
#include <set>

#include "core/error.h"

namespace mst {

BatchRows::BatchRows(std::span<const SequenceStep> s) : steps(s) {
    if (steps.empty()) fail(MST_ERR_INVALID_ARGUMENT, "a batched step needs at least one sequence");
    std::set<const ModelState *> states;
    for (size_t i = 0; i < steps.size(); ++i) {
        const SequenceStep &step = steps[i];
        if (!step.state || step.tokens.empty() || !step.logits)
            fail(MST_ERR_INVALID_ARGUMENT, "sequence {} of a batched step has no state, tokens or logits", i);
        // Two steps writing one state would each miss the other's positions.
        if (!states.insert(step.state).second)
            fail(MST_ERR_INVALID_ARGUMENT, "sequence {} of a batched step shares its state with an earlier one", i);
        row0.push_back(n_rows);
        budgets.push_back(RowsBudget{int64_t(step.tokens.size()), &step.budget, step.budget_stats});
        n_rows += int64_t(step.tokens.size());
    }
}

namespace {

// x [n][hidden] = rows `tokens` of the embedding table, converted to float32.
void embed_tokens(const WeightView &embed, int64_t hidden, std::span<const int32_t> tokens, float *x) {
    const size_t row_bytes = size_t(dtype_row_bytes(embed.dtype, hidden));
    for (size_t t = 0; t < tokens.size(); ++t)
        convert_to_f32(embed.dtype, static_cast<const uint8_t *>(embed.data) + size_t(tokens[t]) * row_bytes,
                       x + int64_t(t) * hidden, size_t(hidden));
}

}  // namespace

void BatchRows::embed(const WeightView &table, int64_t hidden, float *x) const {
    for (size_t i = 0; i < steps.size(); ++i) embed_tokens(table, hidden, steps[i].tokens, x + row0[i] * hidden);
}

void BatchRows::logits(const float *x, int64_t hidden, int64_t vocab, const Head &head) const {
    const auto first_wanted = [&](size_t i) {
        return steps[i].all_logits ? row0[i] : row0[i] + int64_t(steps[i].tokens.size()) - 1;
    };
    const auto end_of = [&](size_t i) { return row0[i] + int64_t(steps[i].tokens.size()); };
    if (steps.size() == 1) {
        head(x + first_wanted(0) * hidden, end_of(0) - first_wanted(0), steps[0].logits);
        return;
    }
    std::vector<float> rows;
    for (size_t i = 0; i < steps.size(); ++i)
        rows.insert(rows.end(), x + first_wanted(i) * hidden, x + end_of(i) * hidden);
    const int64_t m = int64_t(rows.size()) / hidden;
    std::vector<float> out(size_t(m * vocab));
    head(rows.data(), m, out.data());
    const float *from = out.data();
    for (size_t i = 0; i < steps.size(); ++i) {
        const int64_t n = end_of(i) - first_wanted(i);
        std::copy_n(from, size_t(n * vocab), steps[i].logits);
        from += n * vocab;
    }
}

}  // namespace mst
