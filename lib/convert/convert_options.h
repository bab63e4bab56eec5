// What `moestream convert` (and mst_convert) is asked to do, and what it reports.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/dtype.h"

namespace mst {

struct ConvertOptions {
    // Routed experts' quantizable parts (2-D matrices the expert function multiplies):
    // Q8, Q4 or a K-quant (GGML_Q2_K .. GGML_Q6_K), or nullopt to keep them as stored
    // ("bf16" on the command line).
    std::optional<DType> experts = DType::Q4;
    // Dense 2-D weights the architecture declares as plain matrices (WeightUse::Matrix):
    // Q8, or nullopt to keep them as stored.
    std::optional<DType> dense;
    int zstd_level = 0;  // 0: no compression; 1..19: zstd level per expert blob
    bool force = false;  // replace an existing output file
    int n_threads = 0;   // 0: all cores
};

// The command-line spelling of a conversion's type: "q8", "q4", "q2k" .. "q6k", or
// "bf16" for nullopt (kept as stored).
std::string convert_type_name(const std::optional<DType> &t);
// Its inverse over the names `moestream convert --experts` accepts; throws
// MST_ERR_INVALID_ARGUMENT naming `what` and the accepted names for any other.
std::optional<DType> parse_expert_type_name(std::string_view name, std::string_view what);

struct ConvertProgress {
    uint64_t done_bytes = 0;   // source bytes processed
    uint64_t total_bytes = 0;  // source bytes to process
    double seconds = 0.0;
};
// Called after each resident tensor and each group of experts; return false to cancel
// (the conversion then fails with MST_ERR_CANCELLED and removes its temporary file).
using ConvertProgressFn = std::function<bool(const ConvertProgress &)>;

struct ConvertReport {
    uint64_t file_bytes = 0;
    uint64_t source_bytes = 0;          // tensors read from the source
    uint64_t resident_bytes = 0;        // resident section
    uint64_t resident_tensors = 0;
    uint64_t quantized_tensors = 0;     // resident tensors stored as Q8
    uint64_t requantized_fp8_tensors = 0;  // of those, F8_E4M3 ones (dequantized, then quantized)
    uint64_t dropped_tensors = 0;       // source tensors the architecture never reads
    uint64_t dropped_bytes = 0;
    uint64_t experts = 0;
    uint64_t expert_raw_bytes = 0;      // decoded blob bytes
    uint64_t expert_stored_bytes = 0;   // on disk
    uint64_t compressed_experts = 0;    // blobs zstd made smaller (stored compressed)
    // What the options asked for but could not change, one line each (see ConvertPlan).
    std::vector<std::string> notes;
    double seconds = 0.0;
};

}  // namespace mst
