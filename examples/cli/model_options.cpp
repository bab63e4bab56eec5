#include "model_options.h"

#include "commands.h"

namespace mst::cli {

const char *const kModelOptionsHelp =
    "  -m, --model PATH          Hugging Face checkpoint directory or packed .mst file (required)\n"
    "  --backend NAME            auto | cpu (default auto)\n"
    "  --storage NAME            auto | pread (default auto)\n"
    "  --cache-mb N              expert cache budget in MiB (default 1024)\n"
    "  --experts-per-token K     routed experts per token (default: the model's own)\n"
    "  --threads N               compute threads (default: all cores)\n"
    "  --io-threads N            parallel expert reads (default 4)\n"
    "  --cache-policy NAME       lru | lfu | arc | none (default lru)\n"
    "  --prefetch                read the next layer's predicted experts ahead (default off)\n"
    "  --no-verify               packed files: skip the xxHash64 checks of resident weights and\n"
    "                            expert blobs (header and index are always checked)\n";

std::vector<std::string> model_option_names() {
    return {"model", "backend", "storage", "cache-mb", "experts-per-token", "threads", "io-threads", "cache-policy",
            "prefetch", "no-verify"};
}

mst_model_params model_params_from(const Args &args, std::string &backend, std::string &storage,
                                   std::string &cache_policy) {
    mst_model_params p;
    mst_model_default_params(&p);
    backend = args.get_or("backend", "auto");
    storage = args.get_or("storage", "auto");
    p.backend = backend.c_str();
    p.storage = storage.c_str();
    const int64_t cache_mb = args.int_or("cache-mb", 1024);
    if (cache_mb < 0) throw UsageError("--cache-mb must not be negative");
    p.expert_cache_bytes = uint64_t(cache_mb) << 20;
    p.experts_per_token = int32_t(args.int_or("experts-per-token", 0));
    p.n_threads = int32_t(args.int_or("threads", 0));
    p.n_io_threads = int32_t(args.int_or("io-threads", 0));
    cache_policy = args.get_or("cache-policy", "lru");
    p.cache_policy = cache_policy.c_str();
    p.prefetch = args.flag("prefetch") ? 1 : 0;
    p.verify_checksums = args.flag("no-verify") ? 0 : 1;
    return p;
}

}  // namespace mst::cli
