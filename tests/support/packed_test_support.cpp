#include "packed_test_support.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <stdexcept>
#include <vector>

#include "moestream.hpp"
#include "prompt_logits.h"

namespace mst::test {

std::vector<float> cpu_prefill_logits(const std::string &path, const std::vector<int32_t> &ids) {
    mst_model_params p = mst::model_params();
    p.backend = "cpu";
    return prompt_logits(mst::ModelHandle(path, p), ids);
}

mst_convert_report convert_checkpoint_for_test(const std::string &src, const std::string &dst, const char *experts,
                                               const char *dense, int zstd_level) {
    mst_convert_params p;
    mst_convert_default_params(&p);
    p.experts = experts;
    p.dense = dense;
    p.zstd_level = zstd_level;
    p.force = 1;
    mst_convert_report report{};
    report.struct_size = sizeof report;
    if (mst_convert(src.c_str(), dst.c_str(), &p, &report) != MST_OK)
        throw std::runtime_error("mst_convert " + src + " -> " + dst + " failed: " + mst_last_error());
    return report;
}

double mean_kl_divergence(const float *reference, const float *other, int64_t rows, int64_t vocab) {
    double total = 0.0;
    std::vector<double> p(static_cast<size_t>(vocab)), q(static_cast<size_t>(vocab));
    const auto log_softmax = [vocab](const float *x, std::vector<double> &out) {
        const double m = *std::max_element(x, x + vocab);
        double sum = 0.0;
        for (int64_t i = 0; i < vocab; ++i) sum += std::exp(double(x[i]) - m);
        const double log_sum = std::log(sum) + m;
        for (int64_t i = 0; i < vocab; ++i) out[size_t(i)] = double(x[i]) - log_sum;
    };
    for (int64_t r = 0; r < rows; ++r) {
        log_softmax(reference + r * vocab, p);
        log_softmax(other + r * vocab, q);
        double kl = 0.0;
        for (int64_t i = 0; i < vocab; ++i) kl += std::exp(p[size_t(i)]) * (p[size_t(i)] - q[size_t(i)]);
        total += kl;
    }
    return rows ? total / double(rows) : 0.0;
}

void flip_byte(const std::string &path, uint64_t offset, uint8_t mask) {
    std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
    if (!f) throw std::runtime_error("cannot open " + path);
    f.seekg(std::streamoff(offset));
    char c = 0;
    if (!f.get(c)) throw std::runtime_error("cannot read byte " + std::to_string(offset) + " of " + path);
    f.seekp(std::streamoff(offset));
    f.put(char(uint8_t(c) ^ mask));
    if (!f) throw std::runtime_error("cannot write byte " + std::to_string(offset) + " of " + path);
}

uint64_t read_le(const std::string &path, uint64_t offset, int bytes) {
    std::ifstream f(path, std::ios::binary);
    f.seekg(std::streamoff(offset));
    uint64_t v = 0;
    for (int i = 0; i < bytes; ++i) {
        char c = 0;
        if (!f.get(c)) throw std::runtime_error("cannot read " + path);
        v |= uint64_t(uint8_t(c)) << (8 * i);
    }
    return v;
}

}  // namespace mst::test
