#include "convert/synth_topics.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>

#include <fmt/format.h>

#include "convert/synth_weights.h"
#include "core/dtype.h"

namespace mst {
namespace {

bool contains(std::string_view set, char c) { return set.find(c) != std::string_view::npos; }

// One row of `hidden` uniform values of deviation `std` from `stream` (row `row`), the
// values the plain synthesized tensor holds there.
void random_row(uint64_t stream, int64_t row, int64_t hidden, float std, float *out) {
    fill_weight_rows(DType::F32, {WeightFill::Uniform, 0.0f, std}, stream, row, 1, hidden, out);
}

}  // namespace

int token_class(const std::string &text, bool special) {
    if (special) return 9;
    size_t i = 0;
    while (i < text.size() && text[i] == ' ') ++i;
    if (text.empty()) return 8;
    if (i == text.size()) return 0;
    const char c = text[i];
    if (c == '\n' || c == '\r' || c == '\t') return 1;
    if (c >= 'a' && c <= 'z') return 2;
    if (c >= 'A' && c <= 'Z') return 3;
    if (c >= '0' && c <= '9') return 4;
    if (contains("()[]{}<>", c)) return 5;
    if (contains(".,:;!?'\"`#@$%&\\_", c)) return 6;
    if (contains("+-*/=|^~", c)) return 7;
    return 8;
}

ClassDirections::ClassDirections(uint64_t seed, int64_t hidden) : seed_(seed), hidden_(hidden) {
    for (int c = 0; c < kTokenClasses; ++c) {
        std::vector<float> u(static_cast<size_t>(hidden));
        random_row(weight_stream(seed, fmt::format("token class {}", c)), 0, hidden, 1.0f, u.data());
        // An orthonormal basis of the directions (Gram-Schmidt), for taking them out of a row.
        std::vector<double> q(u.begin(), u.end());
        for (const std::vector<float> &b : basis_) {
            double dot = 0.0;
            for (size_t i = 0; i < q.size(); ++i) dot += q[i] * b[i];
            for (size_t i = 0; i < q.size(); ++i) q[i] -= dot * b[i];
        }
        double norm = 0.0;
        for (double v : q) norm += v * v;
        norm = std::sqrt(std::max(norm, 1e-30));
        std::vector<float> qf(q.size());
        for (size_t i = 0; i < q.size(); ++i) qf[i] = float(q[i] / norm);
        basis_.push_back(std::move(qf));
        directions_.push_back(std::move(u));
    }
}

void ClassDirections::embedding_rows(uint64_t stream, float std, const std::vector<int32_t> &classes, int64_t first,
                                     int64_t rows, float *out) const {
    const float share = std::getenv("MST_SHARE") ? float(std::atof(std::getenv("MST_SHARE"))) : kClassShare;
    const float gain = std::getenv("MST_GAIN") ? float(std::atof(std::getenv("MST_GAIN"))) : 1.0f;
    const float own = std * std::sqrt(1.0f - share), shared = gain * std * std::sqrt(share);
    for (int64_t r = 0; r < rows; ++r) {
        float *row = out + r * hidden_;
        random_row(stream, first + r, hidden_, own, row);
        const int32_t c = classes[size_t(first + r)];
        for (int64_t i = 0; i < hidden_; ++i) row[i] += shared * directions_[size_t(c)][size_t(i)];
    }
}

void ClassDirections::add_router_topics(int32_t layer, int32_t expert, float weight, float row_std, float *row) const {
    if (weight == 0.0f) return;
    if (weight < 0.0f) {
        // Take out a share of the row's reading of the class subspace.
        const float share = std::min(-weight, 1.0f);
        for (const std::vector<float> &q : basis_) {
            double dot = 0.0;
            for (int64_t i = 0; i < hidden_; ++i) dot += double(q[size_t(i)]) * row[i];
            for (int64_t i = 0; i < hidden_; ++i) row[i] -= float(share * dot) * q[size_t(i)];
        }
        return;
    }
    // The mix: one uniform coefficient of deviation 1 per class, so the sum of kTokenClasses
    // directions has deviation sqrt(kTokenClasses); scaled back to row_std.
    float mix[kTokenClasses];
    random_row(weight_stream(seed_, fmt::format("layer {} router topics", layer)), expert, kTokenClasses, 1.0f, mix);
    const float scale = weight * row_std / std::sqrt(float(kTokenClasses));
    for (int c = 0; c < kTokenClasses; ++c)
        for (int64_t i = 0; i < hidden_; ++i) row[i] += scale * mix[c] * directions_[size_t(c)][size_t(i)];
}

}  // namespace mst
