// `moestream info`: architecture, sizes and what streaming one token costs.
#include <fmt/format.h>

#include "cli_args.h"
#include "commands.h"
#include "gguf_info.h"
#include "human.h"
#include "model_options.h"
#include "moestream.hpp"
#include "vulkan_devices.h"

namespace mst::cli {

int cmd_info(const std::vector<std::string> &argv) {
    std::vector<std::string> flags = model_option_flags();
    flags.push_back("help");
    const Args args(argv, flags, model_option_aliases());
    if (args.flag("help")) {
        fmt::print("usage: moestream info [-m PATH] [options]\nPrint a model's architecture, sizes and the expert "
                   "bytes each token streams (for a GGUF file, or the first shard of a split one, first its ggml "
                   "types, counts and bytes by role and by tensor name), then the Vulkan devices (without -m, only "
                   "those).\n{}",
                   kModelOptionsHelp);
        return 0;
    }
    std::vector<std::string> known = model_option_names();
    known.push_back("help");
    args.reject_unknown(known);
    args.reject_positional();
    if (!args.get("model")) {
        print_vulkan_devices();
        return 0;
    }
    std::string backend, storage, cache_policy;
    mst_model_params params = model_params_from(args, backend, storage, cache_policy);
    print_gguf_info(args.require("model"));  // a GGUF file's own summary, before loading it
    const ModelHandle model(args.require("model"), params);
    const mst_model_info i = model.info();
    fmt::print("architecture:        {}\n", i.architecture);
    fmt::print("layers:              {} ({} with routed experts)\n", i.n_layers, i.n_moe_layers);
    fmt::print("hidden size:         {}\n", i.hidden_size);
    fmt::print("vocabulary:          {}\n", i.n_vocab);
    fmt::print("max positions:       {}\n", i.max_position_embeddings);
    fmt::print("experts:             {} per layer, {} per token (model default {})\n", i.n_experts,
               i.experts_per_token, i.model_experts_per_token);
    fmt::print("parameters:          {} total, {} active per token\n", count_str(i.n_params_total),
               count_str(i.n_params_active));
    fmt::print("resident weights:    {} (held in memory)\n", bytes_str(i.resident_bytes));
    fmt::print("expert weights:      {} on disk, {} each\n", bytes_str(i.expert_bytes_total),
               bytes_str(i.expert_bytes_each));
    fmt::print("expert bytes/token:  {} ({} experts x {} layers, before cache hits)\n",
               bytes_str(i.expert_bytes_per_token), i.experts_per_token, i.n_moe_layers);
    fmt::print("expert cache budget: {}\n", bytes_str(i.expert_cache_bytes));
    // Per token, and for a context of the session default (4096 positions or the model's
    // maximum, if smaller).
    const uint64_t ctx = i.max_position_embeddings > 0 && i.max_position_embeddings < 4096
                             ? uint64_t(i.max_position_embeddings) : 4096;
    const bool compressed = i.kv_cache_full_bytes_per_token > i.kv_cache_bytes_per_token;
    fmt::print("KV cache:            {}/token, {} per {} tokens{}\n", bytes_str(i.kv_cache_bytes_per_token),
               bytes_str(i.kv_cache_bytes_per_token * ctx), ctx, compressed ? " (compressed)" : "");
    if (compressed)
        fmt::print("  uncompressed:      {}/token, {} per {} tokens; saved {} ({:.1f}x smaller)\n",
                   bytes_str(i.kv_cache_full_bytes_per_token), bytes_str(i.kv_cache_full_bytes_per_token * ctx), ctx,
                   bytes_str((i.kv_cache_full_bytes_per_token - i.kv_cache_bytes_per_token) * ctx),
                   double(i.kv_cache_full_bytes_per_token) / double(i.kv_cache_bytes_per_token));
    if (i.recurrent_state_bytes > 0)
        fmt::print("recurrent state:     {} per session, whatever the context (linear-attention layers)\n",
                   bytes_str(i.recurrent_state_bytes));
    fmt::print("tokenizer:           {}, {} end-of-sequence id{}\n", i.tokenizer_kind, i.n_eos_ids,
               i.n_eos_ids == 1 ? "" : "s");
    for (const mst_weight_type &t : model.weight_types())
        fmt::print("{:<21}{} x {} ({})\n", t.experts ? "expert weights as:" : "weights as:", t.dtype, t.tensors,
                   bytes_str(t.bytes));
    fmt::print("backend / storage:   {} / {}\n", i.backend, i.storage);
    print_vulkan_devices();
    return 0;
}

}  // namespace mst::cli
