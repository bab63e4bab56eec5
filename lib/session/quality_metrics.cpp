#include "session/quality_metrics.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "core/error.h"

namespace mst {

std::vector<double> log_softmax(std::span<const float> logits) {
    if (logits.empty()) fail(MST_ERR_INVALID_ARGUMENT, "log_softmax of empty logits");
    const double max_logit = *std::max_element(logits.begin(), logits.end());
    double sum = 0.0;
    for (float v : logits) sum += std::exp(double(v) - max_logit);
    const double log_sum = max_logit + std::log(sum);
    std::vector<double> out(logits.size());
    for (size_t i = 0; i < logits.size(); ++i) out[i] = double(logits[i]) - log_sum;
    return out;
}

double negative_log_likelihood(std::span<const float> logits, int32_t target) {
    if (target < 0 || size_t(target) >= logits.size())
        fail(MST_ERR_INVALID_ARGUMENT, "target token {} outside the {} logits", target, logits.size());
    return -log_softmax(logits)[size_t(target)];
}

double kl_divergence(std::span<const float> reference_logits, std::span<const float> test_logits) {
    if (reference_logits.size() != test_logits.size())
        fail(MST_ERR_INVALID_ARGUMENT, "KL of logits of different sizes ({} and {})", reference_logits.size(),
             test_logits.size());
    const std::vector<double> p = log_softmax(reference_logits), q = log_softmax(test_logits);
    double kl = 0.0;
    for (size_t i = 0; i < p.size(); ++i) kl += std::exp(p[i]) * (p[i] - q[i]);
    return std::max(kl, 0.0);  // rounding can make an exact match a hair negative
}

int32_t argmax(std::span<const float> logits) {
    return int32_t(std::max_element(logits.begin(), logits.end()) - logits.begin());
}

void QualityAccumulator::add_comparison(double kl, bool top1_agrees) {
    kl_.push_back(kl);
    agree_ += top1_agrees ? 1 : 0;
}

double QualityAccumulator::mean_nll() const {
    return nll_.empty() ? 0.0 : std::accumulate(nll_.begin(), nll_.end(), 0.0) / double(nll_.size());
}

double QualityAccumulator::perplexity() const { return std::exp(mean_nll()); }

double QualityAccumulator::mean_kl() const {
    return kl_.empty() ? 0.0 : std::accumulate(kl_.begin(), kl_.end(), 0.0) / double(kl_.size());
}

double QualityAccumulator::kl_percentile(double q) const {
    if (kl_.empty()) return 0.0;
    std::vector<double> sorted = kl_;
    std::sort(sorted.begin(), sorted.end());
    const size_t rank = size_t(std::ceil(std::clamp(q, 0.0, 1.0) * double(sorted.size())));
    return sorted[std::max<size_t>(rank, 1) - 1];
}

double QualityAccumulator::top1_agreement() const {
    return kl_.empty() ? 0.0 : double(agree_) / double(kl_.size());
}

}  // namespace mst
