// Everything a loaded model is made of: its config, tokenizer, backend, the checkpoint
// files and the architecture with its expert store. The C handle mst_model wraps this.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "backends/backend.h"
#include "format/checkpoint.h"
#include "format/model_config.h"
#include "model/load_phases.h"
#include "model/model.h"
#include "model/model_description.h"
#include "experts/prefetch_rule.h"
#include "tokenizer/tokenizer.h"

namespace mst {

struct LoadOptions {
    std::string backend = "auto";
    std::string storage = "auto";
    std::optional<uint64_t> expert_cache_bytes;  // unset: from the memory free (experts/cache_budget.h)
    int32_t experts_per_token = 0;  // 0 = the model's own
    int32_t n_threads = 0;
    int32_t n_io_threads = 4;
    std::string cache_policy = "learned";
    int prefetch_layers = 0;  // MoE layers ahead whose experts are predicted and read; 0 = off
    PrefetchRule prefetch_rule = default_prefetch_rule();  // which guesses are read
    bool rope_bf16_frequencies = false;

    // Storage tier options (StorageOptions in storage/storage_tier.h).
    int32_t storage_queue_depth = 64;
    bool storage_direct_io = false;
    bool storage_fadvise_random = true;
    std::optional<bool> storage_willneed;  // unset: the tier's default
    bool storage_drop_after_read = false;

    // Packed files: check the resident section at load and each expert blob when read.
    bool verify_checksums = true;

    std::string vulkan_device;            // BackendOptions::device
    uint64_t gpu_expert_cache_bytes = 0;  // BackendOptions::gpu_expert_cache_bytes
};

struct LoadedModel {
    std::string path;
    ModelConfig config;
    std::unique_ptr<Tokenizer> tokenizer;
    std::unique_ptr<Backend> backend;
    std::unique_ptr<Checkpoint> checkpoint;
    std::unique_ptr<Model> model;
    int32_t experts_per_token = 0;  // in effect
    std::string storage_name;
    std::vector<int32_t> eos_ids;   // every end-of-sequence id, sorted (model/eos_tokens.h)
    ModelDescription description;  // tokenizer kind, EOS ids, weight types (moestream info)
    std::vector<LoadPhase> load_phases;  // load_model's steps and their wall time, in order

    bool is_eos(int32_t token) const;
};

// Load a Hugging Face checkpoint directory or a moestream packed file (.mst). Throws
// mst::Error naming what is wrong.
std::unique_ptr<LoadedModel> load_model(const std::string &path, const LoadOptions &options);

}  // namespace mst
