// sample_token against a plain reference: the repetition penalty on a copy, candidates
// ordered by logit (ties by id), the filters as prefixes of that order, the draw over the
// kept prefix by std::discrete_distribution. The sampler finds top-k candidates with a heap
// in one pass, radix-sorts the whole vocabulary, draws in reused memory and takes greedy's
// maximum in two passes, for speed; the token drawn for a seed must stay the one the
// reference draws, and the generator must be left where the reference leaves it.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <random>
#include <set>
#include <vector>

#include "session/sampler.h"

namespace mst {
namespace {

int32_t reference_sample(std::vector<float> z, const SamplerOptions &o, std::mt19937_64 &rng,
                         const std::vector<int32_t> &history = {}) {
    if (o.repetition_penalty != 1.0f) {
        const size_t window = o.repetition_last_n < 0 ? history.size()
                                                      : std::min(history.size(), size_t(o.repetition_last_n));
        std::set<int32_t> seen(history.end() - ptrdiff_t(window), history.end());
        for (int32_t t : seen)
            if (t >= 0 && size_t(t) < z.size())
                z[size_t(t)] = z[size_t(t)] > 0 ? z[size_t(t)] / o.repetition_penalty : z[size_t(t)] * o.repetition_penalty;
    }
    if (o.temperature <= 0.0f) return int32_t(std::max_element(z.begin(), z.end()) - z.begin());
    std::vector<int32_t> ids(z.size());
    std::iota(ids.begin(), ids.end(), 0);
    std::stable_sort(ids.begin(), ids.end(), [&](int32_t a, int32_t b) { return z[size_t(a)] > z[size_t(b)]; });
    size_t keep = ids.size();
    if (o.top_k > 0 && size_t(o.top_k) < keep) keep = size_t(o.top_k);
    std::vector<double> p(keep);
    const double max_z = z[size_t(ids[0])] / o.temperature;
    double sum = 0.0;
    for (size_t i = 0; i < keep; ++i) sum += p[i] = std::exp(z[size_t(ids[i])] / o.temperature - max_z);
    for (double &v : p) v /= sum;
    if (o.top_p < 1.0f) {
        double mass = 0.0;
        size_t n = 0;
        while (n < keep && mass < o.top_p) mass += p[n++];
        keep = std::max<size_t>(n, 1);
    }
    if (o.min_p > 0.0f) {
        const double floor = o.min_p * p[0];
        size_t n = 1;
        while (n < keep && p[n] >= floor) ++n;
        keep = n;
    }
    std::discrete_distribution<size_t> draw(p.begin(), p.begin() + ptrdiff_t(keep));
    return ids[draw(rng)];
}

// Logits with many exact ties (rounded to a coarse grid), so the tie order matters.
std::vector<float> logits(size_t n, uint32_t seed) {
    std::mt19937 g(seed);
    std::normal_distribution<float> d(0.0f, 2.0f);
    std::vector<float> z(n);
    for (float &v : z) v = std::round(d(g) * 4.0f) / 4.0f;
    return z;
}

TEST(Sampler, DrawsTheReferenceTokenForEverySeed) {
    SamplerOptions whole;  // the whole vocabulary, as `moestream bench` samples
    whole.temperature = 1.0f;
    whole.top_k = 0;
    whole.top_p = 1.0f;
    whole.min_p = 0.0f;
    SamplerOptions filtered;  // the defaults: top-k 40, top-p 0.95, min-p 0.05
    SamplerOptions top_p_only = whole;
    top_p_only.top_p = 0.5f;
    top_p_only.temperature = 0.7f;
    for (const SamplerOptions &o : {whole, filtered, top_p_only})
        for (uint32_t seed = 1; seed <= 12; ++seed) {
            const std::vector<float> z = logits(seed % 2 ? 4099 : 151936, seed);
            std::mt19937_64 a(seed), b(seed);
            for (int draw = 0; draw < 3; ++draw)
                ASSERT_EQ(sample_token(z, {}, o, a), reference_sample(z, o, b))
                    << "seed " << seed << " draw " << draw << " top_k " << o.top_k << " top_p " << o.top_p;
        }
}

// The same seed, through sampler and reference, for several draws: the tokens and the
// generator's state after them must agree.
void expect_reference(const std::vector<float> &z, const SamplerOptions &o, uint64_t seed, const char *what,
                      SamplerScratch &scratch, const std::vector<int32_t> &history = {}) {
    std::mt19937_64 a(seed), b(seed);
    for (int draw = 0; draw < 4; ++draw)
        ASSERT_EQ(sample_token(z, history, o, a, scratch), reference_sample(z, o, b, history))
            << what << ": seed " << seed << " draw " << draw;
    ASSERT_EQ(a(), b()) << what << ": the generator moved on by another number of draws";
}

SamplerOptions options(float temperature, int32_t top_k, float top_p, float min_p) {
    SamplerOptions o;
    o.temperature = temperature;
    o.top_k = top_k;
    o.top_p = top_p;
    o.min_p = min_p;
    return o;
}

TEST(Sampler, TopKAtEveryEdgeDrawsTheReferenceToken) {
    SamplerScratch scratch;
    for (size_t n : {size_t(1), size_t(2), size_t(37), size_t(4099)}) {
        const std::vector<float> z = logits(n, uint32_t(n));
        for (int32_t k : {1, 2, 40, int32_t(n) - 1, int32_t(n), int32_t(n) + 5}) {
            if (k <= 0) continue;
            expect_reference(z, options(1.0f, k, 1.0f, 0.0f), 7, "top-k alone", scratch);
            expect_reference(z, options(0.6f, k, 0.9f, 0.05f), 8, "top-k with top-p and min-p", scratch);
        }
    }
}

TEST(Sampler, TiesAtTheTopKBoundaryKeepTheLowestIds) {
    // Nine equal logits below one higher (id 9): top-k 5 keeps id 9 and the four lowest ids
    // of the tie, 2 to 5, and the draws must come from exactly those.
    std::vector<float> z(12, 1.0f);
    z[9] = 2.0f;
    z[0] = z[1] = -1.0f;
    const SamplerOptions o = options(1.0f, 5, 1.0f, 0.0f);
    SamplerScratch scratch;
    std::set<int32_t> drawn;
    std::mt19937_64 rng(3);
    for (int i = 0; i < 400; ++i) drawn.insert(sample_token(z, {}, o, rng, scratch));
    EXPECT_EQ(drawn, (std::set<int32_t>{2, 3, 4, 5, 9}));
    expect_reference(z, o, 11, "ties at the boundary", scratch);
}

TEST(Sampler, SignedZerosTieAsEqualLogits) {
    const std::vector<float> z{-0.0f, 0.0f, -0.0f, -1.0f};
    SamplerScratch scratch;
    for (int32_t k : {0, 1, 2}) expect_reference(z, options(1.0f, k, 1.0f, 0.0f), 5, "signed zeros", scratch);
    std::mt19937_64 rng(1);
    EXPECT_EQ(sample_token(z, {}, options(0.0f, 40, 1.0f, 0.0f), rng, scratch), 0);
}

TEST(Sampler, OneCandidateLeftUsesNoRandomNumber) {
    // top-k 1, or a top-p so small that only the best survives: std::discrete_distribution
    // over one weight draws nothing from the generator, and neither may the sampler.
    const std::vector<float> z = logits(4099, 21);
    SamplerScratch scratch;
    expect_reference(z, options(1.0f, 1, 1.0f, 0.0f), 13, "top-k 1", scratch);
    expect_reference(z, options(1.0f, 0, 1e-9f, 0.0f), 14, "top-p 1e-9", scratch);
    expect_reference(z, options(1.0f, 0, 1.0f, 1.0f), 15, "min-p 1", scratch);
}

TEST(Sampler, RepetitionPenaltyDrawsTheReferenceToken) {
    const std::vector<float> z = logits(4099, 5);
    std::vector<int32_t> history;
    for (int32_t i = 0; i < 200; ++i) history.push_back((i * 97) % 4099);
    history.push_back(-3);    // outside the vocabulary: ignored
    history.push_back(9000);  // likewise
    history.push_back(history[10]);
    SamplerScratch scratch;
    for (int32_t last_n : {64, -1, 0}) {
        SamplerOptions greedy = options(0.0f, 40, 1.0f, 0.0f), sampled = options(0.9f, 40, 0.95f, 0.05f),
                       whole = options(1.0f, 0, 1.0f, 0.0f);
        for (SamplerOptions *o : {&greedy, &sampled, &whole}) {
            o->repetition_penalty = 1.7f;
            o->repetition_last_n = last_n;
            expect_reference(z, *o, 17, "repetition penalty", scratch, history);
        }
    }
}

TEST(Sampler, GreedyTakesTheFirstHighestOfTheWholeVocabulary) {
    std::vector<float> z = logits(151936, 9);
    const float top = *std::max_element(z.begin(), z.end()) + 1.0f;
    z[151935] = top;
    z[70001] = top;
    SamplerScratch scratch;
    std::mt19937_64 rng(1), untouched(1);
    EXPECT_EQ(sample_token(z, {}, options(0.0f, 40, 0.95f, 0.05f), rng, scratch), 70001);
    EXPECT_EQ(sample_token(z, {}, options(-1.0f, 0, 1.0f, 0.0f), rng, scratch), 70001);
    EXPECT_EQ(rng(), untouched()) << "greedy used the generator";
}

TEST(Sampler, ScratchReusedAcrossSizesAndOptionsChangesNothing) {
    // One scratch through every path, vocabularies growing and shrinking: what a path left
    // behind must not leak into the next.
    SamplerScratch scratch;
    const std::vector<SamplerOptions> all{options(1.0f, 0, 1.0f, 0.0f), options(0.8f, 40, 0.95f, 0.05f),
                                          options(0.0f, 40, 0.95f, 0.05f), options(0.7f, 0, 0.5f, 0.0f)};
    uint64_t seed = 100;
    for (size_t n : {size_t(151936), size_t(10), size_t(4099), size_t(151936), size_t(3)})
        for (const SamplerOptions &o : all) {
            ++seed;
            expect_reference(logits(n, uint32_t(seed)), o, seed, "reused", scratch);
        }
}

TEST(Sampler, GreedyTakesTheFirstHighest) {
    SamplerOptions greedy;
    greedy.temperature = 0.0f;
    std::mt19937_64 rng(1);
    EXPECT_EQ(sample_token(std::vector<float>{1.0f, 3.0f, -2.0f, 3.0f}, {}, greedy, rng), 1);
}

}  // namespace
}  // namespace mst
