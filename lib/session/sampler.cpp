#include "session/sampler.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <unordered_set>
#include <vector>

#include "core/error.h"

namespace mst {

void validate_sampler_options(const SamplerOptions &o) {
    if (!std::isfinite(o.temperature)) fail(MST_ERR_INVALID_ARGUMENT, "temperature must be finite");
    if (!(o.top_p >= 0.0f && o.top_p <= 1.0f)) fail(MST_ERR_INVALID_ARGUMENT, "top_p must be in [0, 1], got {}", o.top_p);
    if (!(o.min_p >= 0.0f && o.min_p <= 1.0f)) fail(MST_ERR_INVALID_ARGUMENT, "min_p must be in [0, 1], got {}", o.min_p);
    if (!(o.repetition_penalty > 0.0f) || !std::isfinite(o.repetition_penalty))
        fail(MST_ERR_INVALID_ARGUMENT, "repetition_penalty must be positive, got {}", o.repetition_penalty);
}

namespace {

// NaN compares false with everything, so argmax and the sort would quietly return token 0
// (or any token) from broken logits; they are reported instead.
void require_finite(std::span<const float> logits) {
    size_t n_nan = 0, n_inf = 0, first = logits.size();
    for (size_t i = 0; i < logits.size(); ++i) {
        if (std::isfinite(logits[i])) continue;
        (std::isnan(logits[i]) ? n_nan : n_inf) += 1;
        first = std::min(first, i);
    }
    if (n_nan + n_inf == 0) return;
    fail(MST_ERR_BACKEND, "the model's logits are not finite ({} NaN and {} infinite of {}, the first at id {}, "
         "which is {}): the weights or the backend's arithmetic overflowed, so no token can be sampled",
         n_nan, n_inf, logits.size(), first, logits[first]);
}

struct Candidate {
    float z;
    int32_t id;
};

// The order of `higher` in sample_token (logit descending, then id ascending) for candidates
// given in id order: a stable LSD radix sort, 11 bits a pass, on a key that orders finite
// floats descending (-0 taken as +0, which compare equal).
void sort_highest_first(std::vector<Candidate> &c) {
    auto key = [](float z) {
        uint32_t b;
        std::memcpy(&b, &z, 4);
        if (z == 0.0f) b = 0;
        const uint32_t ascending = (b & 0x80000000u) ? ~b : (b | 0x80000000u);
        return ~ascending;
    };
    std::vector<Candidate> tmp(c.size());
    for (int shift = 0; shift < 32; shift += 11) {
        std::vector<size_t> start(2049, 0);
        for (const Candidate &x : c) ++start[((key(x.z) >> shift) & 2047u) + 1];
        for (size_t i = 1; i < start.size(); ++i) start[i] += start[i - 1];
        for (const Candidate &x : c) tmp[start[(key(x.z) >> shift) & 2047u]++] = x;
        c.swap(tmp);
    }
}

}  // namespace

int32_t sample_token(std::span<const float> logits, std::span<const int32_t> history, const SamplerOptions &o,
                     std::mt19937_64 &rng) {
    validate_sampler_options(o);
    const int32_t n_vocab = int32_t(logits.size());
    if (n_vocab == 0) fail(MST_ERR_INVALID_ARGUMENT, "cannot sample from empty logits");
    require_finite(logits);
    std::vector<float> z(logits.begin(), logits.end());

    if (o.repetition_penalty != 1.0f) {
        // As in the CTRL paper and HF: shrink a seen token's logit toward "less likely".
        const size_t window = o.repetition_last_n < 0 ? history.size()
                                                      : std::min(history.size(), size_t(o.repetition_last_n));
        std::unordered_set<int32_t> seen(history.end() - ptrdiff_t(window), history.end());
        for (int32_t t : seen) {
            if (t < 0 || t >= n_vocab) continue;
            z[size_t(t)] = z[size_t(t)] > 0 ? z[size_t(t)] / o.repetition_penalty : z[size_t(t)] * o.repetition_penalty;
        }
    }
    if (o.temperature <= 0.0f)
        return int32_t(std::max_element(z.begin(), z.end()) - z.begin());

    // Candidates sorted by logit, highest first (ties by id, so the order is unique); each
    // filter keeps a prefix. The logit travels with its id (no lookup per comparison); the
    // whole vocabulary (no top-k) is radix-sorted, where partial_sort's heap over 152k
    // candidates took ~90 ms of a loaded machine's time to first token.
    std::vector<Candidate> c(static_cast<size_t>(n_vocab));
    for (int32_t i = 0; i < n_vocab; ++i) c[size_t(i)] = {z[size_t(i)], i};
    size_t keep = c.size();
    if (o.top_k > 0 && size_t(o.top_k) < keep) keep = size_t(o.top_k);
    const auto higher = [](const Candidate &a, const Candidate &b) { return a.z != b.z ? a.z > b.z : a.id < b.id; };
    if (keep < c.size()) std::partial_sort(c.begin(), c.begin() + ptrdiff_t(keep), c.end(), higher);
    else sort_highest_first(c);

    std::vector<double> p(keep);
    const double max_z = c[0].z / o.temperature;
    double sum = 0.0;
    for (size_t i = 0; i < keep; ++i) sum += p[i] = std::exp(c[i].z / o.temperature - max_z);
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
    return c[draw(rng)].id;
}

}  // namespace mst
