// sample_token against a plain reference: candidates ordered by logit (ties by id), the
// filters as prefixes of that order, the draw over the kept prefix. The sampler sorts
// (logit, id) pairs, and the whole vocabulary with std::sort instead of a heap, for speed;
// the token drawn for a seed must stay the one the reference draws.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <random>
#include <vector>

#include "session/sampler.h"

namespace mst {
namespace {

int32_t reference_sample(const std::vector<float> &z, const SamplerOptions &o, std::mt19937_64 &rng) {
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

TEST(Sampler, GreedyTakesTheFirstHighest) {
    SamplerOptions greedy;
    greedy.temperature = 0.0f;
    std::mt19937_64 rng(1);
    EXPECT_EQ(sample_token(std::vector<float>{1.0f, 3.0f, -2.0f, 3.0f}, {}, greedy, rng), 1);
}

}  // namespace
}  // namespace mst
