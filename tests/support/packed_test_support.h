// Test helpers for the packed format: converting a checkpoint through the public API,
// comparing logits by KL divergence, and damaging files on purpose.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "moestream.h"

namespace mst::test {

// mst_convert with the given types ("q4" | "q8" | "q6k" .. "q2k" | "bf16"); throws std::runtime_error
// with mst_last_error() when it fails. Returns the report.
mst_convert_report convert_checkpoint_for_test(const std::string &src, const std::string &dst,
                                               const char *experts = "bf16", const char *dense = "bf16",
                                               int zstd_level = 0);

// Every position's logits ([tokens][vocab]) of one prefill of `ids` by the model at
// `path` (directory or .mst) on the CPU backend.
std::vector<float> cpu_prefill_logits(const std::string &path, const std::vector<int32_t> &ids);

// Mean over rows of KL(softmax(reference_row) || softmax(other_row)), in nats.
double mean_kl_divergence(const float *reference, const float *other, int64_t rows, int64_t vocab);

// XOR byte `offset` of the file at `path` with `mask`.
void flip_byte(const std::string &path, uint64_t offset, uint8_t mask = 0x01);

// Reads an unsigned little-endian integer of `bytes` bytes at `offset` of `path`.
uint64_t read_le(const std::string &path, uint64_t offset, int bytes);

}  // namespace mst::test
