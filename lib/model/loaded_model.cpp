#include "model/loaded_model.h"

#include <filesystem>
#include <system_error>

#include "core/error.h"
#include "core/log.h"
#include "model/model_registry.h"
#include "storage/storage_tier.h"

namespace mst {

std::unique_ptr<LoadedModel> load_model(const std::string &path, const LoadOptions &options) {
    namespace fs = std::filesystem;
    std::error_code ec;
    if (!fs::exists(path, ec)) fail(MST_ERR_IO, "model path '{}' does not exist", path);
    if (!fs::is_directory(path, ec))
        fail(MST_ERR_UNSUPPORTED, "model path '{}' is not a directory; expected a Hugging Face checkpoint directory",
             path);

    auto m = std::make_unique<LoadedModel>();
    m->path = path;
    m->config = parse_model_config_file((fs::path(path) / "config.json").string());
    m->config.rope_bf16_frequencies = options.rope_bf16_frequencies;
    const ModelConfig &c = m->config;
    if (options.experts_per_token < 0 || (c.n_experts > 0 && options.experts_per_token > c.n_experts))
        fail(MST_ERR_INVALID_ARGUMENT, "experts_per_token {} is outside 0..{} (0 = the model's own {})",
             options.experts_per_token, c.n_experts, c.n_experts_per_tok);
    m->experts_per_token = options.experts_per_token ? options.experts_per_token : int32_t(c.n_experts_per_tok);

    const fs::path tokenizer_json = fs::path(path) / "tokenizer.json";
    if (!fs::exists(tokenizer_json, ec)) fail(MST_ERR_IO, "'{}' is missing; moestream needs the tokenizer", tokenizer_json.string());
    m->tokenizer = Tokenizer::load(tokenizer_json.string(), (fs::path(path) / "tokenizer_config.json").string());

    m->backend = create_backend(options.backend, options.n_threads);
    m->checkpoint = Checkpoint::open(path);

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
        store->set_prefetch(options.prefetch);
        return store;
    };
    m->model = build_model(ModelBuildContext{c, *m->checkpoint, *m->backend, make_store});
    log(MST_LOG_INFO, "loaded {} ({}): {} resident bytes, backend {}, storage {}", path, c.model_type,
        m->model->sizes().resident_bytes, m->backend->name(), m->storage_name);
    return m;
}

}  // namespace mst
