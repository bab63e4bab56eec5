#include "session/sampler.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <numeric>
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

// 1 for NaN and the infinities (every exponent bit set), else 0.
uint32_t not_finite_bit(float v) {
    uint32_t b;
    std::memcpy(&b, &v, 4);
    return uint32_t((b & 0x7f800000u) == 0x7f800000u);
}

// NaN compares false with everything, so argmax and the sort would quietly return token 0
// (or any token) from broken logits; they are reported instead. The common case is one
// branch-free pass (the compiler vectorizes it); only broken logits are counted.
void require_finite(std::span<const float> logits) {
    uint32_t any_not_finite = 0;
    for (float v : logits) any_not_finite |= not_finite_bit(v);
    if (!any_not_finite) return;
    size_t n_nan = 0, n_inf = 0, first = logits.size();
    for (size_t i = 0; i < logits.size(); ++i) {
        if (std::isfinite(logits[i])) continue;
        (std::isnan(logits[i]) ? n_nan : n_inf) += 1;
        first = std::min(first, i);
    }
    fail(MST_ERR_BACKEND, "the model's logits are not finite ({} NaN and {} infinite of {}, the first at id {}, "
         "which is {}): the weights or the backend's arithmetic overflowed, so no token can be sampled",
         n_nan, n_inf, logits.size(), first, logits[first]);
}

// As in the CTRL paper and HF: shrink a seen token's logit toward "less likely". Returns
// the logits to sample from: `logits` itself when the penalty is off.
std::span<const float> apply_repetition_penalty(std::span<const float> logits, std::span<const int32_t> history,
                                                const SamplerOptions &o, SamplerScratch &s) {
    if (o.repetition_penalty == 1.0f) return logits;
    const size_t window =
        o.repetition_last_n < 0 ? history.size() : std::min(history.size(), size_t(o.repetition_last_n));
    s.seen.assign(history.end() - ptrdiff_t(window), history.end());
    std::sort(s.seen.begin(), s.seen.end());
    s.seen.erase(std::unique(s.seen.begin(), s.seen.end()), s.seen.end());
    s.penalized.assign(logits.begin(), logits.end());
    const int32_t n_vocab = int32_t(logits.size());
    for (int32_t t : s.seen) {
        if (t < 0 || t >= n_vocab) continue;
        float &z = s.penalized[size_t(t)];
        z = z > 0 ? z / o.repetition_penalty : z * o.repetition_penalty;
    }
    return s.penalized;
}

// The first highest logit, in two passes: the maximum, then its first position. The
// maximum is kept in 16 lanes, because one running maximum waits on the comparison before
// it (0.3 ms over 152k logits) while 16 independent ones vectorize. Logits are finite
// here, so the lanes' order of comparison cannot change the maximum (+0 and -0, which a
// lane may keep either of, compare equal in the second pass).
int32_t first_highest(std::span<const float> z) {
    constexpr size_t kLanes = 16;
    float lane[kLanes];
    std::fill(lane, lane + kLanes, z[0]);
    size_t i = 0;
    for (; i + kLanes <= z.size(); i += kLanes)
        for (size_t l = 0; l < kLanes; ++l) lane[l] = z[i + l] > lane[l] ? z[i + l] : lane[l];
    float highest = *std::max_element(lane, lane + kLanes);
    for (; i < z.size(); ++i) highest = z[i] > highest ? z[i] : highest;
    for (size_t j = 0;; ++j)
        if (z[j] == highest) return int32_t(j);
}

// Candidates ordered by logit descending, then id ascending: a total order, so the kept
// prefix and its order never depend on the algorithm that found them.
bool higher(const SamplerCandidate &a, const SamplerCandidate &b) { return a.z != b.z ? a.z > b.z : a.id < b.id; }

// The k highest candidates, highest first, in one pass over the logits: a heap of the k
// best so far whose root is the worst of them. Ids come in ascending order, so a logit equal
// to the root's loses the tie and only a strictly higher one enters. Soon almost no logit
// enters, so blocks of 16 are first tested together (a test that vectorizes) and skipped
// whole when none of them beats the root.
void select_highest(std::span<const float> z, size_t k, std::vector<SamplerCandidate> &out) {
    out.clear();
    for (size_t i = 0; i < k; ++i) out.push_back({z[i], int32_t(i)});
    std::make_heap(out.begin(), out.end(), higher);
    float worst = out.front().z;
    const auto offer = [&](size_t i) {
        if (!(z[i] > worst)) return;
        std::pop_heap(out.begin(), out.end(), higher);
        out.back() = {z[i], int32_t(i)};
        std::push_heap(out.begin(), out.end(), higher);
        worst = out.front().z;
    };
    constexpr size_t kBlock = 16;
    size_t i = k;
    for (; i + kBlock <= z.size(); i += kBlock) {
        uint32_t any_higher = 0;
        for (size_t l = 0; l < kBlock; ++l) any_higher |= uint32_t(z[i + l] > worst);
        if (!any_higher) continue;
        for (size_t l = 0; l < kBlock; ++l) offer(i + l);
    }
    for (; i < z.size(); ++i) offer(i);
    std::sort_heap(out.begin(), out.end(), higher);
}

// Every candidate, highest first, in the order of `higher`: a stable LSD radix sort of the
// candidates taken in id order, 11 bits a pass, on a key that orders finite floats
// descending (-0 taken as +0, which compare equal). A pass whose digit is the same for
// every candidate moves nothing and is skipped. A comparison sort of 152k candidates took
// ~90 ms of a loaded machine's time to first token.
void sort_all_highest_first(std::span<const float> z, SamplerScratch &s) {
    const auto key = [](float v) {
        uint32_t b;
        std::memcpy(&b, &v, 4);
        if (v == 0.0f) b = 0;
        const uint32_t ascending = (b & 0x80000000u) ? ~b : (b | 0x80000000u);
        return ~ascending;
    };
    std::vector<SamplerCandidate> &c = s.candidates;
    c.resize(z.size());
    for (size_t i = 0; i < z.size(); ++i) c[i] = {z[i], int32_t(i)};
    s.sort_buffer.resize(c.size());
    for (int shift = 0; shift < 32; shift += 11) {
        s.histogram.assign(2049, 0);
        uint32_t *start = s.histogram.data();
        for (const SamplerCandidate &x : c) ++start[((key(x.z) >> shift) & 2047u) + 1];
        if (std::find(s.histogram.begin(), s.histogram.end(), uint32_t(c.size())) != s.histogram.end()) continue;
        for (size_t i = 1; i < s.histogram.size(); ++i) start[i] += start[i - 1];
        for (const SamplerCandidate &x : c) s.sort_buffer[start[(key(x.z) >> shift) & 2047u]++] = x;
        c.swap(s.sort_buffer);
    }
}

// The index std::discrete_distribution<size_t>(p, p + n) draws for the generator's state,
// computed as it does (normalize by the sum, running sums with the last set to 1, the first
// one not below a canonical double), in reused memory instead of the two vectors of n
// doubles it allocates. As it does, a single weight draws index 0 without using the
// generator.
size_t draw_index(const double *p, size_t n, std::mt19937_64 &rng, std::vector<double> &cumulative) {
    if (n < 2) return 0;
    const double sum = std::accumulate(p, p + n, 0.0);
    cumulative.resize(n);
    double running = 0.0;
    for (size_t i = 0; i < n; ++i) cumulative[i] = running += p[i] / sum;
    cumulative[n - 1] = 1.0;
    const double u = std::generate_canonical<double, std::numeric_limits<double>::digits>(rng);
    return size_t(std::lower_bound(cumulative.begin(), cumulative.end(), u) - cumulative.begin());
}

}  // namespace

int32_t sample_token(std::span<const float> logits, std::span<const int32_t> history, const SamplerOptions &o,
                     std::mt19937_64 &rng, SamplerScratch &s) {
    validate_sampler_options(o);
    if (logits.empty()) fail(MST_ERR_INVALID_ARGUMENT, "cannot sample from empty logits");
    require_finite(logits);
    const std::span<const float> z = apply_repetition_penalty(logits, history, o, s);
    if (o.temperature <= 0.0f) return first_highest(z);

    // Candidates sorted by logit, highest first; each filter keeps a prefix. With top-k only
    // k of them are found and ordered, and only they are weighed.
    size_t keep = z.size();
    if (o.top_k > 0 && size_t(o.top_k) < keep) keep = size_t(o.top_k);
    if (keep < z.size()) select_highest(z, keep, s.candidates);
    else sort_all_highest_first(z, s);
    const std::vector<SamplerCandidate> &c = s.candidates;

    std::vector<double> &p = s.probabilities;
    p.resize(keep);
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
    return c[draw_index(p.data(), keep, rng, s.cumulative)].id;
}

int32_t sample_token(std::span<const float> logits, std::span<const int32_t> history, const SamplerOptions &options,
                     std::mt19937_64 &rng) {
    SamplerScratch scratch;
    return sample_token(logits, history, options, rng, scratch);
}

}  // namespace mst
