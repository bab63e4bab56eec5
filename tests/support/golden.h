// Reference outputs written by tests/reference/make_reference.py (and the shared
// fixtures): golden.safetensors with input_ids, logits, greedy_ids and friends.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace mst::test {

struct Golden {
    std::vector<int32_t> input_ids;
    std::vector<int32_t> greedy_ids;
    std::map<std::string, std::vector<float>> matrices;  // "logits", "logits_topk2", ... [rows][vocab]
    int64_t vocab = 0;
    const std::vector<float> &logits() const { return matrices.at("logits"); }
};

Golden load_golden(const std::string &path);

// ||a - b|| / ||b|| over n elements (relative Frobenius error).
double relative_error(const float *a, const float *b, int64_t n);

// max over rows of ||a_r - b_r|| / ||b_r|| for row-major [rows][cols] matrices.
double max_row_relative_error(const float *a, const float *b, int64_t rows, int64_t cols);

}  // namespace mst::test
