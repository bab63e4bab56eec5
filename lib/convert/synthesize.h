// `moestream synth` / mst_synthesize: a packed model file with the real shapes of a
// config.json and random weights, for measuring streaming on models one does not have
// (or has not downloaded yet). Weights are written directly as BF16 values or Q8 / Q4
// blocks, on every core, straight into the PackedWriter; they are scaled so that
// activations stay finite through every layer (matrices: deviation 1 / sqrt(fan_in);
// routers: half that; token embeddings 1; norms 1; other vectors 0), so generation
// runs and its speed,
// expert traffic and cache behaviour are those of the real shape. The text is noise.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "convert/convert_options.h"
#include "core/dtype.h"

namespace mst {

struct SynthOptions {
    int64_t layers = 0;                         // 0: the config's num_hidden_layers
    std::optional<DType> experts = DType::Q4;   // quantizable expert parts: Q8 / Q4, nullopt = BF16
    std::optional<DType> dense;                 // WeightUse::Matrix tensors: Q8, nullopt = BF16
    uint64_t seed = 0;
    bool force = false;                         // replace an existing destination
    int n_threads = 0;                          // 0: all cores
    // A routing trace (router/route_trace_file.h) whose per-layer expert popularity the
    // routers are scaled to reproduce (convert/synth_routing.h); empty: plain routers.
    std::string routing_from;
    // The text the routers are calibrated on (a file; empty: generated English-like letters).
    std::string routing_text;
    // A trained model's tokenizer.json (or its checkpoint directory) copied into the file in
    // place of the byte-level one (convert/synth_tokenizer.h), vocab_size raised to hold its
    // ids; empty: byte-level. With --routing-from, give the traced model's own, so that the
    // calibration and any trace of the synthesized model run on the trained model's tokens.
    std::string tokenizer_from;
    // With routing_from: also calibrate recency heads (convert/synth_recency.h) per sparse
    // layer against the trace's next-token reuse; false: popularity only.
    bool routing_reuse = false;
};

struct SynthReport {
    uint64_t file_bytes = 0;
    uint64_t resident_bytes = 0;
    uint64_t resident_tensors = 0;
    uint64_t quantized_tensors = 0;  // resident tensors stored as Q8
    uint64_t experts = 0;            // blobs
    uint64_t expert_bytes = 0;
    int64_t layers = 0, source_layers = 0;
    double seconds = 0.0;            // from the first byte written to the file in place
    uint64_t slowed_decays = 0;      // --routing-from: Gated DeltaNet A_log tensors written for slow decay
    // How the weights written differ from the config's published form, one line each.
    std::vector<std::string> notes;
};

// Synthesizes the model of the config.json at `config_path` into `destination`.
// Progress reports bytes of the file written (done, total). Throws mst::Error:
// MST_ERR_BAD_FORMAT naming the field for a bad config, MST_ERR_UNSUPPORTED for an
// architecture the loader does not know, MST_ERR_INVALID_ARGUMENT for a bad option,
// MST_ERR_IO when the destination exists without `force`, when the disk lacks the
// space (checked first, naming both sizes) or a write fails, MST_ERR_CANCELLED when
// `progress` returns false. The file is written under a temporary name next to the
// destination and renamed into place when complete and checked.
SynthReport synthesize_model(const std::string &config_path, const std::string &destination,
                             const SynthOptions &options, const ConvertProgressFn &progress = {});

}  // namespace mst
