// What an expert budget costs in quality, per token: negative log-likelihood of the
// actual next token, and against a reference distribution (the same model at its full
// budget, or at higher precision) the KL divergence and whether the top-1 token agrees.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace mst {

// log softmax of one row of logits, in double precision.
std::vector<double> log_softmax(std::span<const float> logits);

// -log p(target) under `logits`.
double negative_log_likelihood(std::span<const float> logits, int32_t target);

// KL(reference || test) = sum_i p_ref(i) (log p_ref(i) - log p_test(i)).
double kl_divergence(std::span<const float> reference_logits, std::span<const float> test_logits);

int32_t argmax(std::span<const float> logits);

// Accumulates per-token results and summarises them.
class QualityAccumulator {
public:
    void add_nll(double nll) { nll_.push_back(nll); }
    void add_comparison(double kl, bool top1_agrees);

    size_t n_tokens() const { return nll_.size(); }
    double perplexity() const;       // exp(mean NLL)
    double mean_nll() const;
    size_t n_compared() const { return kl_.size(); }
    double mean_kl() const;
    double kl_percentile(double q) const;  // q in [0, 1], nearest-rank
    double top1_agreement() const;   // fraction of compared tokens

private:
    std::vector<double> nll_, kl_;
    uint64_t agree_ = 0;
};

}  // namespace mst
