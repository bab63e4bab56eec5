#include "model/loaded_model.h"

#include <algorithm>
#include <chrono>
#include <ctime>
#include <filesystem>
#include <future>
#include <set>
#include <system_error>

#include "core/error.h"
#include "core/log.h"
#include "core/process_memory.h"
#include "experts/cache_budget.h"
#include "model/host_expert_import.h"
#include "model/eos_tokens.h"
#include "model/model_files.h"
#include "model/model_registry.h"
#include "storage/storage_tier.h"

namespace mst {
namespace {

// A token id past the model's rows would index outside its embedding and output
// matrices; such a tokenizer belongs to another model.
void check_tokenizer_fits(const LoadedModel &m) {
    if (m.tokenizer->vocab_size() <= m.config.vocab_size) return;
    const std::string tokenizer_name = m.checkpoint->packed()
                                           ? m.path + ": tokenizer.json"
                                           : (std::filesystem::path(m.path) / "tokenizer.json").string();
    fail(MST_ERR_BAD_FORMAT, "{} has token ids up to {}, but the model's vocab_size (config.json) is {}: the "
         "tokenizer does not belong to these weights", tokenizer_name, m.tokenizer->vocab_size() - 1,
         m.config.vocab_size);
}

// The default budget once the model's sizes are known, or a warning for a budget that
// cannot hold one token's experts.
void set_expert_cache_budget(const LoadedModel &m, ExpertStore &store, const LoadOptions &options, uint64_t headroom) {
    if (options.cache_policy == "none") return;
    const ModelSizes s = m.model->sizes();
    const uint64_t one_token = uint64_t(m.experts_per_token) * uint64_t(s.n_moe_layers) * s.expert_bytes_each;
    if (!options.expert_cache_bytes) {
        const CacheBudget b = default_cache_budget({headroom, s.resident_bytes, one_token, s.expert_bytes_total});
        store.set_cache_budget(b.bytes);
        log(MST_LOG_INFO, "expert cache budget {} bytes ({})", b.bytes, b.why);
    } else if (*options.expert_cache_bytes < one_token) {
        log(MST_LOG_WARN, "expert cache budget {} bytes is below one token's experts ({} bytes: {} experts x {} MoE "
            "layers x {} bytes), so every token reads experts again from storage or the page cache",
            *options.expert_cache_bytes, one_token, m.experts_per_token, s.n_moe_layers, s.expert_bytes_each);
    }
}

struct TimedTokenizer {
    std::unique_ptr<Tokenizer> tokenizer;
    double seconds = 0;      // wall time to build it
    double cpu_seconds = 0;  // its thread's CPU time
};

double thread_cpu_seconds() {
    timespec t{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return double(t.tv_sec) + 1e-9 * double(t.tv_nsec);
}

}  // namespace

bool LoadedModel::is_eos(int32_t token) const { return std::binary_search(eos_ids.begin(), eos_ids.end(), token); }

std::unique_ptr<LoadedModel> load_model(const std::string &path, const LoadOptions &options) {
    namespace fs = std::filesystem;
    std::error_code ec;
    if (!fs::exists(path, ec)) fail(MST_ERR_IO, "model path '{}' does not exist", path);

    // Before any weight is loaded, so that the default cache budget can subtract them.
    const uint64_t headroom = options.expert_cache_bytes ? 0 : memory_headroom();
    auto m = std::make_unique<LoadedModel>();
    LoadPhaseTimer phase(m->load_phases);
    m->path = path;
    // A directory, or a packed file with the config and tokenizer inside.
    m->checkpoint = Checkpoint::open(path);
    phase.mark("open: header, metadata, tensor table");
    m->config = read_model_config(*m->checkpoint);
    m->config.rope_bf16_frequencies = options.rope_bf16_frequencies;
    const ModelConfig &c = m->config;
    if (options.experts_per_token < 0 || (c.n_experts > 0 && options.experts_per_token > c.n_experts))
        fail(MST_ERR_INVALID_ARGUMENT, "experts_per_token {} is outside 0..{} (0 = the model's own {})",
             options.experts_per_token, c.n_experts, c.n_experts_per_tok);
    m->experts_per_token = options.experts_per_token ? options.experts_per_token : int32_t(c.n_experts_per_tok);
    phase.mark("config");
    // The tokenizer (a vocabulary of 150k strings to allocate and index) is built on a
    // thread of its own while this one maps and hashes the resident section: neither needs
    // the other, and each keeps a core busy. It reads only the file's metadata, which
    // nothing changes here. Its errors still come before the resident section's.
    std::future<TimedTokenizer> tokenizer = std::async(std::launch::async, [&checkpoint = *m->checkpoint] {
        const auto t0 = std::chrono::steady_clock::now();
        TimedTokenizer t{read_model_tokenizer(checkpoint)};
        t.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        t.cpu_seconds = thread_cpu_seconds();
        return t;
    });
    try {
        m->checkpoint->map_resident(options.verify_checksums);
    } catch (...) {
        tokenizer.get();  // its error, if it has one, is the one reported
        throw;
    }
    phase.mark("resident section mapped (and hashed)");
    TimedTokenizer built = tokenizer.get();
    m->tokenizer = std::move(built.tokenizer);
    check_tokenizer_fits(*m);
    m->eos_ids = collect_eos_ids(*m->checkpoint, c, *m->tokenizer);
    phase.mark("wait for the tokenizer; end-of-sequence ids");
    m->load_phases.push_back({"  (tokenizer, on its own thread beside the mapping)", built.seconds, built.cpu_seconds});

    BackendOptions backend_options;
    backend_options.n_threads = options.n_threads;
    backend_options.device = options.vulkan_device;
    backend_options.gpu_expert_cache_bytes = options.gpu_expert_cache_bytes;
    m->backend = create_backend(options.backend, backend_options);
    phase.mark("backend (threads started)");
    StorageOptions storage;
    storage.tier = options.storage;
    storage.n_io_threads = options.n_io_threads;
    storage.queue_depth = options.storage_queue_depth;
    storage.direct_io = options.storage_direct_io;
    storage.fadvise_random = options.storage_fadvise_random;
    storage.willneed = options.storage_willneed;
    storage.drop_after_read = options.storage_drop_after_read;
    ExpertStore *store_made = nullptr;
    auto make_store = [&](std::vector<std::vector<ExpertLayout>> layouts) {
        auto tier = open_storage(m->checkpoint->files(), storage);
        m->storage_name = tier->name();
        auto store = std::make_unique<ExpertStore>(std::move(tier), std::move(layouts),
                                                   options.expert_cache_bytes.value_or(0), options.cache_policy);
        store_made = store.get();
        store->set_experts_per_token(m->experts_per_token);
        store->set_prefetch(options.prefetch_layers, options.prefetch_rule);
        store->set_blob_reads(BlobReadOptions{options.verify_checksums, m->checkpoint->files()});
        return store;
    };
    std::set<std::string> read;  // the tensors the architecture looks at, for the description
    m->checkpoint->set_lookup_observer([&read](const TensorInfo &t) { read.insert(t.name); });
    m->model = build_model(ModelBuildContext{c, *m->checkpoint, *m->backend, make_store});
    if (store_made) {
        set_expert_cache_budget(*m, *store_made, options, headroom);
        log(MST_LOG_INFO, "{}", import_host_expert_slab(*store_made, *m->backend));
    }
    phase.mark("architecture: resident weights, expert index, storage tier");
    m->checkpoint->set_lookup_observer({});
    m->description = describe_model(*m->checkpoint, *m->tokenizer, m->eos_ids, m->model->experts(), read);
    phase.mark("description");
    log(MST_LOG_INFO, "loaded {} ({}): {} resident bytes, backend {}, storage {}", path, c.model_type,
        m->model->sizes().resident_bytes, m->backend->name(), m->storage_name);
    return m;
}

}  // namespace mst
