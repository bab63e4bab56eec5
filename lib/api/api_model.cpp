// mst_model_*: loading, information and memory statistics.
#include <cstddef>

#include "api/guard.h"
#include "api/handles.h"
#include "backends/device_expert_cache.h"
#include "core/compute_threads.h"
#include "core/process_memory.h"

using namespace mst;
using namespace mst::api;

namespace {

// A caller built against the first, 48-byte layout passes its tail padding; no field
// may live there.
static_assert(offsetof(mst_model_params, storage_queue_depth) >= 48);

mst_model_params default_model_params() {
    mst_model_params p{};
    p.struct_size = sizeof(mst_model_params);
    p.backend = "auto";
    p.storage = "auto";
    p.expert_cache_bytes = MST_EXPERT_CACHE_AUTO;
    p.experts_per_token = 0;
    p.n_threads = 0;
    p.n_io_threads = 0;
    p.cache_policy = "learned";
    p.prefetch = 0;
    p.prefetch_min_share = -1.0f;
    p.rope_bf16_frequencies = 0;

    p.storage_queue_depth = 0;
    p.storage_direct_io = 0;
    p.storage_fadvise_random = 1;
    p.storage_willneed = -1;
    p.storage_drop_after_read = 0;

    p.verify_checksums = 1;
    return p;
}

}  // namespace

extern "C" {

void mst_model_default_params(mst_model_params *params) {
    if (params) *params = default_model_params();
}

mst_status mst_model_load(const char *path, const mst_model_params *params, mst_model **out) {
    return guard([&] {
        require_arg(out, "out");
        *out = nullptr;
        require_arg(path, "path");
        const mst_model_params p = read_params(params, default_model_params(), "mst_model_params");
        if (p.n_io_threads < 0) fail(MST_ERR_INVALID_ARGUMENT, "n_io_threads must not be negative, got {}", p.n_io_threads);
        LoadOptions options;
        options.backend = p.backend ? p.backend : "auto";
        options.storage = p.storage ? p.storage : "auto";
        if (p.expert_cache_bytes != MST_EXPERT_CACHE_AUTO) options.expert_cache_bytes = p.expert_cache_bytes;
        options.experts_per_token = p.experts_per_token;
        options.n_threads = resolve_compute_threads(p.n_threads, "n_threads");
        options.n_io_threads = p.n_io_threads ? p.n_io_threads : 4;
        options.cache_policy = p.cache_policy ? p.cache_policy : "learned";
        if (p.prefetch < 0) fail(MST_ERR_INVALID_ARGUMENT, "prefetch must not be negative, got {}", p.prefetch);
        options.prefetch_layers = p.prefetch;
        if (!(p.prefetch_min_share <= 1.0f))  // NaN too
            fail(MST_ERR_INVALID_ARGUMENT, "prefetch_min_share must be at most 1 (negative: the default), got {}",
                 p.prefetch_min_share);
        if (p.prefetch_min_share >= 0.0f) {
            options.prefetch_rule.min_share = p.prefetch_min_share;
            options.prefetch_rule.reuse_min_share = p.prefetch_min_share;
        }
        options.rope_bf16_frequencies = p.rope_bf16_frequencies != 0;

        if (p.storage_queue_depth < 0)
            fail(MST_ERR_INVALID_ARGUMENT, "storage_queue_depth must not be negative, got {}", p.storage_queue_depth);
        options.storage_queue_depth = p.storage_queue_depth ? p.storage_queue_depth : 64;
        options.storage_direct_io = p.storage_direct_io != 0;
        options.storage_fadvise_random = p.storage_fadvise_random != 0;
        if (p.storage_willneed < -1 || p.storage_willneed > 1)
            fail(MST_ERR_INVALID_ARGUMENT, "storage_willneed must be -1, 0 or 1, got {}", p.storage_willneed);
        if (p.storage_willneed >= 0) options.storage_willneed = p.storage_willneed == 1;
        options.storage_drop_after_read = p.storage_drop_after_read != 0;

        options.verify_checksums = p.verify_checksums != 0;
        options.vulkan_device = p.vulkan_device ? p.vulkan_device : "";
        options.gpu_expert_cache_bytes = p.gpu_expert_cache_bytes;
        auto model = std::make_unique<mst_model>();
        model->impl = std::shared_ptr<LoadedModel>(load_model(path, options));
        *out = model.release();
    });
}

void mst_model_free(mst_model *model) { delete model; }

mst_status mst_model_get_info(const mst_model *model, mst_model_info *info) {
    return guard([&] {
        require_arg(model, "model");
        require_arg(info, "info");
        write_result(info, "mst_model_info", [&](mst_model_info &out) {
            const LoadedModel &m = *model->impl;
            const ModelConfig &c = m.config;
            const ModelSizes s = m.model->sizes();
            out.architecture = c.model_type.c_str();
            out.backend = m.backend->name();
            out.storage = m.storage_name.c_str();
            out.n_layers = int32_t(c.n_layers);
            out.n_moe_layers = s.n_moe_layers;
            out.hidden_size = int32_t(c.hidden_size);
            out.n_vocab = int32_t(c.vocab_size);
            out.n_experts = int32_t(c.n_experts);
            out.experts_per_token = m.experts_per_token;
            out.model_experts_per_token = int32_t(c.n_experts_per_tok);
            out.max_position_embeddings = int32_t(c.max_position_embeddings);
            out.eos_token_id = m.tokenizer->eos_id();
            out.n_params_total = s.n_params_total;
            out.n_params_active = s.n_params_dense + uint64_t(s.n_moe_layers) * uint64_t(m.experts_per_token) * s.n_params_per_expert;
            out.resident_bytes = s.resident_bytes;
            out.expert_bytes_total = s.expert_bytes_total;
            out.expert_bytes_each = s.expert_bytes_each;
            out.expert_bytes_per_token = uint64_t(m.experts_per_token) * uint64_t(s.n_moe_layers) * s.expert_bytes_each;
            out.expert_cache_bytes = m.model->experts().cache_budget();
            out.kv_cache_bytes_per_token = s.kv_cache_bytes_per_token;
            out.kv_cache_full_bytes_per_token = s.kv_cache_full_bytes_per_token;
            out.recurrent_state_bytes = s.recurrent_state_bytes;
            out.tokenizer_kind = m.description.tokenizer_kind.c_str();
            out.n_eos_ids = int32_t(m.description.eos_ids.size());
            out.n_weight_types = int32_t(m.description.weight_types.size());
        });
    });
}

mst_status mst_model_eos_tokens(const mst_model *model, const int32_t **ids, size_t *n) {
    return guard([&] {
        require_arg(model, "model");
        require_arg(ids, "ids");
        require_arg(n, "n");
        const std::vector<int32_t> &eos = model->impl->eos_ids;
        *ids = eos.empty() ? nullptr : eos.data();
        *n = eos.size();
    });
}

mst_status mst_model_get_weight_type(const mst_model *model, int32_t index, mst_weight_type *type) {
    return guard([&] {
        require_arg(model, "model");
        require_arg(type, "type");
        write_result(type, "mst_weight_type", [&](mst_weight_type &out) {
            const std::vector<WeightTypeCount> &types = model->impl->description.weight_types;
            if (index < 0 || size_t(index) >= types.size())
                fail(MST_ERR_INVALID_ARGUMENT, "weight type index {} is outside 0..{}", index, int64_t(types.size()) - 1);
            const WeightTypeCount &t = types[size_t(index)];
            out.dtype = dtype_name(t.dtype).data();  // the names are string literals
            out.experts = t.experts ? 1 : 0;
            out.tensors = t.tensors;
            out.bytes = t.bytes;
        });
    });
}

mst_status mst_model_get_memory_stats(const mst_model *model, mst_memory_stats *stats) {
    return guard([&] {
        require_arg(model, "model");
        require_arg(stats, "stats");
        write_result(stats, "mst_memory_stats", [&](mst_memory_stats &out) {
            const ExpertStore &store = model->impl->model->experts();
            const ProcessMemory pm = read_process_memory();
            out.resident_weight_bytes = model->impl->model->sizes().resident_bytes;
            out.expert_cache_bytes = store.cache_stats().bytes_held;
            out.expert_cache_peak_bytes = store.peak_expert_bytes();
            out.expert_cache_budget = store.cache_budget();
            out.process_rss_bytes = pm.rss_bytes;
            out.process_peak_rss_bytes = pm.peak_rss_bytes;
        });
    });
}

mst_status mst_model_get_backend_stats(const mst_model *model, mst_backend_stats *stats) {
    return guard([&] {
        require_arg(model, "model");
        require_arg(stats, "stats");
        write_result(stats, "mst_backend_stats", [&](mst_backend_stats &out) {
            const BackendCounters c = model->impl->backend->counters();
            out.submissions = c.submissions;
            out.replayed = c.replayed;
            out.recorded = c.recorded;
            out.pipelines_created = c.pipelines_created;
            out.pipeline_create_seconds = c.pipeline_create_seconds;
        });
    });
}

mst_status mst_model_get_cache_stats(const mst_model *model, int32_t layer, mst_cache_stats *stats) {
    return guard([&] {
        require_arg(model, "model");
        require_arg(stats, "stats");
        write_result(stats, "mst_cache_stats", [&](mst_cache_stats &out) {
            const ExpertStore &store = model->impl->model->experts();
            if (layer < -1 || layer >= store.n_layers())
                fail(MST_ERR_INVALID_ARGUMENT, "layer {} is outside -1..{}", layer, store.n_layers() - 1);
            const ExpertCacheStats s = layer < 0 ? store.cache_stats() : store.layer_cache_stats(layer);
            out.hits = s.hits;
            out.misses = s.misses;
            out.evictions = s.evictions;
            out.bytes_read = s.bytes_read;
            out.bytes_held = s.bytes_held;
            out.entries = s.entries;
            if (layer < 0) {
                const PrefetchStats p = store.prefetch_stats();
                out.prefetch_predicted = p.predicted;
                out.prefetch_used = p.used;
                out.prefetch_needed = p.needed;
                out.prefetch_wasted_bytes = p.wasted_bytes;
                if (DeviceExpertCache *device = device_expert_cache(*model->impl->backend)) {
                    const DeviceExpertCacheStats g = device->device_expert_cache_stats();
                    out.gpu_hits = g.hits;
                    out.gpu_misses = g.misses;
                    out.gpu_evictions = g.evictions;
                    out.gpu_bytes_uploaded = g.bytes_uploaded;
                    out.gpu_direct_bytes = g.direct_bytes;
                    out.gpu_staged_bytes = g.staged_bytes;
                    out.gpu_prefetched = g.prefetched;
                    out.gpu_prefetch_used = g.prefetch_used;
                    out.gpu_prefetch_wasted = g.prefetch_wasted;
                    out.gpu_prefetch_skipped = g.prefetch_skipped;
                }
            }
        });
    });
}

}  // extern "C"
