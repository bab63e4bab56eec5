// The K-quant expert types of `convert --experts q6k .. q2k` with their bounds against the
// reference logits (relative error of all prompt positions' logits, mean KL in nats), at
// about 1.6x what was measured on qwen3_moe_tiny (test_golden_kquants.cpp says how). The
// trained 256-wide model's exported K-quant GGUFs are held to the same bounds
// (test_golden_trained256.cpp), so both tests take them from here.
#pragma once

#include <ostream>

#include "core/dtype.h"

namespace mst::test {

struct KQuantExpertCase {
    const char *experts;  // convert --experts
    DType dtype;
    double err_bound, kl_bound;
};

inline void PrintTo(const KQuantExpertCase &c, std::ostream *os) { *os << c.experts; }

// qwen3_moe_tiny, measured: 0.0288 / 1.94e-3, 0.0535 / 7.23e-3, 0.0991 / 0.026, 0.193 / 0.090,
// 0.359 / 0.314.
inline constexpr KQuantExpertCase kKQuantExpertCases[] = {
    {"q6k", DType::GGML_Q6_K, 0.046, 0.0031}, {"q5k", DType::GGML_Q5_K, 0.086, 0.012},
    {"q4k", DType::GGML_Q4_K, 0.16, 0.042},   {"q3k", DType::GGML_Q3_K, 0.31, 0.145},
    {"q2k", DType::GGML_Q2_K, 0.57, 0.50},
};

}  // namespace mst::test
