// What the golden tests share in checking a prompt's logits against the reference's
// (golden_model_suite.h for every architecture's datasets, test_golden_gguf.cpp and
// test_golden_gguf_archs.cpp for GGUF files): the float bounds, the golden prompt
// prefilled with every position's logits kept, and the comparison of the whole matrix and
// of its worst row.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "golden.h"
#include "moestream.hpp"

namespace golden_suite {

// Relative Frobenius error of the logits of all positions, and a per-position bound that
// catches one bad position hiding in the average.
constexpr double kLogitTolerance = 1e-3;
constexpr double kRowTolerance = 5e-3;

// A session that has evaluated `golden`'s prompt in batches of n_batch (0: the session
// default) with all_logits on.
inline mst::SessionHandle golden_prompt_session(const mst::ModelHandle &model, const mst::test::Golden &golden,
                                                uint32_t n_batch) {
    mst_session_params sp = mst::session_params();
    sp.all_logits = 1;
    sp.n_batch = n_batch;
    mst::SessionHandle session(model, sp);
    session.eval(golden.input_ids);
    return session;
}

// The logits of every position of the session's prompt (made with all_logits = 1), which
// must be `golden`'s: a row for each of its input ids, of its vocabulary.
inline std::vector<float> golden_all_logits(const mst::SessionHandle &session, const mst::test::Golden &golden) {
    const float *logits = nullptr;
    size_t rows = 0, vocab = 0;
    mst::check(mst_session_all_logits(session.get(), &logits, &rows, &vocab));
    EXPECT_EQ(rows, golden.input_ids.size());
    EXPECT_EQ(int64_t(vocab), golden.vocab);
    return std::vector<float>(logits, logits + rows * vocab);
}

struct LogitsError {
    double whole = NAN, worst_row = NAN;
};

// `got` against `want`, both [rows][vocab]: the whole matrix's relative error under
// `bound`, the worst row's under `row_bound`, recorded as the test's properties
// WHAT_relative_error and WHAT_max_row_relative_error; `label` names the case in a failure.
inline LogitsError expect_logits_match(const std::vector<float> &got, const std::vector<float> &want, int64_t vocab,
                                       double bound, double row_bound, const std::string &label,
                                       const std::string &what) {
    LogitsError e;
    if (got.size() != want.size()) {
        ADD_FAILURE() << label << " " << what << ": " << got.size() << " logits, the reference has " << want.size();
        return e;
    }
    e.whole = mst::test::relative_error(got.data(), want.data(), int64_t(want.size()));
    e.worst_row = mst::test::max_row_relative_error(got.data(), want.data(), int64_t(want.size()) / vocab, vocab);
    EXPECT_LT(e.whole, bound) << label << " " << what;
    EXPECT_LT(e.worst_row, row_bound) << label << " " << what;
    ::testing::Test::RecordProperty(what + "_relative_error", std::to_string(e.whole));
    ::testing::Test::RecordProperty(what + "_max_row_relative_error", std::to_string(e.worst_row));
    return e;
}

}  // namespace golden_suite
