// Token-to-token reuse for `moestream synth --routing-from`. A random-weight model's routers
// see hidden states that are random per token, so consecutive tokens pick experts about as
// independently as their popularity allows, and a trained model's bursts of reuse (the same
// experts for a run of related tokens) cannot appear. Here that structure is put into the
// weights: every token of the synthesized vocabulary belongs to a class of characters
// (blank, line break, lower case, upper case, digit, bracket, punctuation, operator, other,
// special), each class has a direction that its tokens' embeddings share, and each router
// row gains a random mix of those directions, weighted per layer. A run of tokens of one
// class (a word, an indent, a number) then leans toward the same experts at every layer
// whose weight is above 0, and the weight is calibrated per layer against the trace's
// next-token reuse (convert/synth_routing.h).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace mst {

// Classes of the synthesized vocabulary's tokens (convert/synth_tokenizer.h).
constexpr int kTokenClasses = 10;

// Share of a token embedding's variance carried by its class direction: enough for a
// router to tell the class through the layers' additions, small enough that the token's
// own identity still dominates what attention and the MLPs see.
constexpr float kClassShare = 0.3f;

// The class of a token from its text (a byte token: one byte; a filler word: a space and
// letters) or `special` for a special token.
int token_class(const std::string &text, bool special);

// The class directions of one seed: kTokenClasses vectors of `hidden` values of deviation 1.
class ClassDirections {
public:
    ClassDirections(uint64_t seed, int64_t hidden);
    int64_t hidden() const { return hidden_; }

    // Rows [first, first + rows) of the token embedding: each row's own random values (the
    // plain embedding's generator `stream`, deviation `std`) mixed with its class's direction
    // so that the row keeps deviation `std`: sqrt(1 - kClassShare) own + sqrt(kClassShare)
    // class. `classes[row]` is the row's class; out receives rows x hidden floats.
    void embedding_rows(uint64_t stream, float std, const std::vector<int32_t> &classes, int64_t first, int64_t rows,
                        float *out) const;

    // Adds to a router row (hidden floats, its own values already there) `weight` times a
    // random mix of the class directions (drawn for this layer and expert) at deviation
    // `row_std`: weight 1 makes the class term as large as a plain row.
    void add_router_topics(int32_t layer, int32_t expert, float weight, float row_std, float *row) const;

private:
    uint64_t seed_;
    int64_t hidden_;
    std::vector<std::vector<float>> directions_;
    std::vector<std::vector<float>> basis_;  // orthonormal, spanning directions_
};

}  // namespace mst
