#include "model/loaded_model.h"

#include <filesystem>
#include <set>
#include <system_error>

#include "core/error.h"
#include "core/log.h"
#include "model/model_files.h"
#include "model/model_registry.h"
#include "storage/storage_tier.h"

namespace mst {

std::unique_ptr<LoadedModel> load_model(const std::string &path, const LoadOptions &options) {
    namespace fs = std::filesystem;
    std::error_code ec;
    if (!fs::exists(path, ec)) fail(MST_ERR_IO, "model path '{}' does not exist", path);

    auto m = std::make_unique<LoadedModel>();
    m->path = path;
    // A directory, or a packed file with the config and tokenizer inside.
    m->checkpoint = Checkpoint::open(path);
    m->config = read_model_config(*m->checkpoint);
    m->config.rope_bf16_frequencies = options.rope_bf16_frequencies;
    const ModelConfig &c = m->config;
    if (options.experts_per_token < 0 || (c.n_experts > 0 && options.experts_per_token > c.n_experts))
        fail(MST_ERR_INVALID_ARGUMENT, "experts_per_token {} is outside 0..{} (0 = the model's own {})",
             options.experts_per_token, c.n_experts, c.n_experts_per_tok);
    m->experts_per_token = options.experts_per_token ? options.experts_per_token : int32_t(c.n_experts_per_tok);
    m->tokenizer = read_model_tokenizer(*m->checkpoint);
    if (options.verify_checksums) m->checkpoint->verify_resident();

    BackendOptions backend_options;
    backend_options.n_threads = options.n_threads;
    backend_options.device = options.vulkan_device;
    backend_options.gpu_expert_cache_bytes = options.gpu_expert_cache_bytes;
    m->backend = create_backend(options.backend, backend_options);
    StorageOptions storage;
    storage.tier = options.storage;
    storage.n_io_threads = options.n_io_threads;
    storage.queue_depth = options.storage_queue_depth;
    storage.direct_io = options.storage_direct_io;
    storage.fadvise_random = options.storage_fadvise_random;
    storage.willneed = options.storage_willneed;
    storage.drop_after_read = options.storage_drop_after_read;
    auto make_store = [&](std::vector<std::vector<ExpertLayout>> layouts) {
        auto tier = open_storage(m->checkpoint->files(), storage);
        m->storage_name = tier->name();
        auto store = std::make_unique<ExpertStore>(std::move(tier), std::move(layouts), options.expert_cache_bytes,
                                                   options.cache_policy);
        store->set_prefetch(options.prefetch_layers);
        store->set_blob_reads(BlobReadOptions{options.verify_checksums, m->checkpoint->files()});
        return store;
    };
    std::set<std::string> read;  // the tensors the architecture looks at, for the description
    m->checkpoint->set_lookup_observer([&read](const TensorInfo &t) { read.insert(t.name); });
    m->model = build_model(ModelBuildContext{c, *m->checkpoint, *m->backend, make_store});
    m->checkpoint->set_lookup_observer({});
    m->description = describe_model(*m->checkpoint, *m->tokenizer, c, m->model->experts(), read);
    log(MST_LOG_INFO, "loaded {} ({}): {} resident bytes, backend {}, storage {}", path, c.model_type,
        m->model->sizes().resident_bytes, m->backend->name(), m->storage_name);
    return m;
}

}  // namespace mst
