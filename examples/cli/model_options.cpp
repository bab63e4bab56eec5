#include "model_options.h"

#include "commands.h"

namespace mst::cli {

const char *const kModelOptionsHelp =
    "  -m, --model PATH          Hugging Face checkpoint directory or packed .mst file (required)\n"
    "  --backend NAME            auto | cpu (default auto)\n"
    "  --storage NAME            auto | mmap | pread | direct | uring: how expert bytes are read\n"
    "                            (default auto: pread when the page cache holds the experts,\n"
    "                            else direct where O_DIRECT works, else pread)\n"
    "  --cache-mb N              expert cache budget in MiB (default: the memory free less the\n"
    "                            resident weights and a margin, at least one token's experts)\n"
    "  --experts-per-token K     routed experts per token (default: the model's own)\n"
    "  --threads N               compute threads (default: all cores)\n"
    "  --io-threads N            pread / direct: parallel expert reads (default 4)\n"
    "  --cache-policy NAME       lru | lfu | arc | none (default lru)\n"
    "  --prefetch                read the next layer's predicted experts ahead (default off)\n"
    "  --prefetch-layers N       with --prefetch: predict and read N MoE layers ahead (default 1)\n"
    "  --rope-bf16               round RoPE frequencies to bf16, as transformers does for a model\n"
    "                            held in bf16 (default: float32)\n"
    "  --storage-queue-depth N   uring: reads in flight (default 64)\n"
    "  --storage-direct-io 0|1   read with O_DIRECT, bypassing the page cache (pread, uring; default 0)\n"
    "  --storage-fadvise-random 0|1  advise RANDOM at open: no read-ahead into neighbouring experts\n"
    "                            (buffered tiers and mmap; default 1)\n"
    "  --storage-willneed 0|1    advise WILLNEED before use: mmap per expert, pread per batch\n"
    "                            (default: on for mmap, off for pread)\n"
    "  --storage-drop-after-read 0|1  drop expert pages from the page cache after reading (mmap: after\n"
    "                            release), so the expert cache is the only cache (default 0)\n"
    "  --no-verify               packed files: skip the xxHash64 checks of resident weights and\n"
    "                            expert blobs (header and index are always checked)\n";

std::vector<std::string> model_option_names() {
    return {"model",
            "backend",
            "storage",
            "cache-mb",
            "experts-per-token",
            "threads",
            "io-threads",
            "storage-queue-depth",
            "storage-direct-io",
            "storage-fadvise-random",
            "storage-willneed",
            "storage-drop-after-read",
            "cache-policy",
            "prefetch",
            "prefetch-layers",
            "rope-bf16",
            "no-verify"};
}

namespace {

// An on/off option given as 0 or 1.
uint32_t switch_or(const Args &args, const std::string &name, uint32_t fallback) {
    const int64_t value = args.int_or(name, fallback);
    if (value != 0 && value != 1) throw UsageError("option --" + name + " takes 0 or 1, got " + std::to_string(value));
    return uint32_t(value);
}

}  // namespace

mst_model_params model_params_from(const Args &args, std::string &backend, std::string &storage,
                                   std::string &cache_policy) {
    mst_model_params p;
    mst_model_default_params(&p);
    backend = args.get_or("backend", "auto");
    storage = args.get_or("storage", "auto");
    p.backend = backend.c_str();
    p.storage = storage.c_str();
    if (args.get("cache-mb")) {  // else the library sizes it (MST_EXPERT_CACHE_AUTO)
        const int64_t cache_mb = args.int_or("cache-mb", 0);
        if (cache_mb < 0) throw UsageError("--cache-mb must not be negative");
        p.expert_cache_bytes = uint64_t(cache_mb) << 20;
    }
    p.experts_per_token = int32_t(args.int_or("experts-per-token", 0));
    p.n_threads = int32_t(args.int_or("threads", 0));
    p.n_io_threads = int32_t(args.int_or("io-threads", 0));
    const int64_t depth = args.int_or("storage-queue-depth", 0);
    if (depth < 0 || depth > 4096) throw UsageError("--storage-queue-depth must be in 1..4096");
    p.storage_queue_depth = int32_t(depth);
    p.storage_direct_io = switch_or(args, "storage-direct-io", p.storage_direct_io);
    p.storage_fadvise_random = switch_or(args, "storage-fadvise-random", p.storage_fadvise_random);
    if (args.get("storage-willneed")) p.storage_willneed = int32_t(switch_or(args, "storage-willneed", 0));
    p.storage_drop_after_read = switch_or(args, "storage-drop-after-read", p.storage_drop_after_read);
    cache_policy = args.get_or("cache-policy", "lru");
    p.cache_policy = cache_policy.c_str();
    const int64_t prefetch_layers = args.int_or("prefetch-layers", 1);
    if (prefetch_layers < 1) throw UsageError("--prefetch-layers must be at least 1");
    if (args.get("prefetch-layers") && !args.flag("prefetch")) throw UsageError("--prefetch-layers needs --prefetch");
    p.prefetch = args.flag("prefetch") ? int32_t(prefetch_layers) : 0;
    p.rope_bf16_frequencies = args.flag("rope-bf16") ? 1 : 0;
    p.verify_checksums = args.flag("no-verify") ? 0 : 1;
    return p;
}

}  // namespace mst::cli
