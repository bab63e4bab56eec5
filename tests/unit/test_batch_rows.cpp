// The LM head of a prompt runs on the rows whose logits are wanted: the last row of a
// step, every row only for an all_logits step. A 45-token prompt's head is one row of
// vocab x hidden products, not 45 (the head is the largest matmul of a short prompt).
#include <gtest/gtest.h>

#include <numeric>
#include <vector>

#include "model/batch_rows.h"

namespace {

// A state the head never looks at: BatchRows only needs distinct pointers.
class NoState : public mst::ModelState {
public:
    uint64_t bytes() const override { return 0; }
    std::vector<std::span<float>> contents(int32_t) override { return {}; }
    void restored(int32_t) override {}
    bool rewindable() const override { return true; }
};

constexpr int64_t kHidden = 3;
constexpr int64_t kVocab = 2;

// x row r holds r, r, r: the head's input rows tell which rows were passed.
std::vector<float> numbered_rows(int64_t n) {
    std::vector<float> x(size_t(n * kHidden));
    for (int64_t r = 0; r < n; ++r)
        for (int64_t d = 0; d < kHidden; ++d) x[size_t(r * kHidden + d)] = float(r);
    return x;
}

// Head: out row i = (first value of input row i, m).
struct RecordingHead {
    std::vector<int64_t> calls;  // m of each call
    mst::BatchRows::Head head() {
        return [this](const float *rows, int64_t m, float *out) {
            calls.push_back(m);
            for (int64_t i = 0; i < m; ++i) {
                out[i * kVocab] = rows[i * kHidden];
                out[i * kVocab + 1] = float(m);
            }
        };
    }
};

TEST(BatchRows, PromptHeadRunsOnTheLastRowOnly) {
    NoState state;
    std::vector<int32_t> tokens(45);
    std::iota(tokens.begin(), tokens.end(), 0);
    std::vector<float> logits(kVocab, -1.0f);
    const mst::SequenceStep step{&state, 0, tokens, false, {}, nullptr, logits.data()};
    const mst::BatchRows rows(std::span<const mst::SequenceStep>(&step, 1));
    const std::vector<float> x = numbered_rows(45);
    RecordingHead head;
    rows.logits(x.data(), kHidden, kVocab, head.head());
    ASSERT_EQ(head.calls, std::vector<int64_t>{1});
    EXPECT_EQ(logits[0], 44.0f);  // the last row's logits
}

TEST(BatchRows, AllLogitsStepGetsEveryRow) {
    NoState state;
    std::vector<int32_t> tokens(7, 1);
    std::vector<float> logits(size_t(7 * kVocab), -1.0f);
    const mst::SequenceStep step{&state, 0, tokens, true, {}, nullptr, logits.data()};
    const mst::BatchRows rows(std::span<const mst::SequenceStep>(&step, 1));
    const std::vector<float> x = numbered_rows(7);
    RecordingHead head;
    rows.logits(x.data(), kHidden, kVocab, head.head());
    ASSERT_EQ(head.calls, std::vector<int64_t>{7});
    for (int64_t r = 0; r < 7; ++r) EXPECT_EQ(logits[size_t(r * kVocab)], float(r));
}

TEST(BatchRows, SeveralStepsShareOneHeadCallOverTheirWantedRows) {
    NoState a, b;
    std::vector<int32_t> prompt(5, 1), decode(1, 2);
    std::vector<float> logits_a(kVocab, -1.0f), logits_b(kVocab, -1.0f);
    const mst::SequenceStep steps[] = {{&a, 0, prompt, false, {}, nullptr, logits_a.data()},
                                       {&b, 9, decode, false, {}, nullptr, logits_b.data()}};
    const mst::BatchRows rows(steps);
    const std::vector<float> x = numbered_rows(6);
    RecordingHead head;
    rows.logits(x.data(), kHidden, kVocab, head.head());
    ASSERT_EQ(head.calls, std::vector<int64_t>{2});  // one row of each step, in one call
    EXPECT_EQ(logits_a[0], 4.0f);
    EXPECT_EQ(logits_b[0], 5.0f);
}

}  // namespace
