#include "experts/reuse_model.h"

namespace mst {

double ReuseModel::score(const ReuseFeatureRow &x) const {
    std::array<double, kReuseFeatures> z;
    for (size_t i = 0; i < kReuseFeatures; ++i) z[i] = scale[i] > 0.0f ? double((x[i] - mean[i]) / scale[i]) : 0.0;
    if (hidden == 0) {
        double s = weights[kReuseFeatures];
        for (size_t i = 0; i < kReuseFeatures; ++i) s += weights[i] * z[i];
        return s;
    }
    double s = layer2[size_t(hidden)];
    for (size_t u = 0; u < size_t(hidden); ++u) {
        const double *w = &layer1[u * (kReuseFeatures + 1)];
        double a = w[kReuseFeatures];
        for (size_t i = 0; i < kReuseFeatures; ++i) a += w[i] * z[i];
        if (a > 0.0) s += layer2[u] * a;
    }
    return s;
}

}  // namespace mst
