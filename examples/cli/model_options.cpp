#include "model_options.h"

#include <limits>

#include "commands.h"
#include "thread_count.h"

namespace mst::cli {

const char *const kModelOptionsHelp =
    "  -m, --model PATH          Hugging Face checkpoint directory or packed .mst file (required)\n"
#ifdef MST_HAVE_VULKAN
    "  --backend NAME            auto | cpu | vulkan (default auto: vulkan when a GPU is usable, else cpu)\n"
    "  --vulkan-device D         vulkan: the device by index (as `moestream info` lists them) or part of its\n"
    "                            name (default: $MST_VULKAN_DEVICE, else the best device)\n"
    "  --gpu-cache-mb N          vulkan: budget of the experts kept in GPU memory, in MiB (default: a quarter\n"
    "                            of a discrete GPU's memory, 256 on unified memory)\n"
#else
    "  --backend NAME            auto | cpu (default auto; this build has no Vulkan backend)\n"
#endif
    "  --storage NAME            auto | mmap | pread | direct | uring: how expert bytes are read\n"
    "                            (default auto: mmap, used in place, when the page cache holds the\n"
    "                            experts, else direct where O_DIRECT works, else pread)\n"
    "  --cache-mb N              expert cache budget in MiB (default: the memory free less the\n"
    "                            resident weights and a margin, at least one token's experts)\n"
    "  --experts-per-token K     routed experts per token, 1..the model's experts (default: the model's own)\n"
    "  -t, --threads N           compute threads (default: all cores; more than the cores this process\n"
    "                            can run on is lowered to them, with a warning)\n"
    "  --io-threads N            pread / direct: parallel expert reads, at most 256 (default 4)\n"
    "  --cache-policy NAME       learned | lrfu-admit | lrfu | lru-2touch | lrfu-2touch | lru | lfu | arc | none\n"
    "                            (default learned)\n"
    "  --prefetch                read the next layer's predicted experts ahead (default off)\n"
    "  --prefetch-layers N       with --prefetch: predict and read N MoE layers ahead (default 1)\n"
    "  --prefetch-min-share S    with --prefetch: read a guessed expert only if its share of the guessed\n"
    "                            router weight is at least S, 0..1 (default 0.14: 85% precise on\n"
    "                            trained routing; 0 reads all k guesses)\n"
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

std::map<std::string, std::string> model_option_aliases() {
    return {{"-m", "--model"}, {"-t", "--threads"}, {"-h", "--help"}};
}

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
            "prefetch-min-share",
            "rope-bf16",
            "no-verify",
#ifdef MST_HAVE_VULKAN
            "vulkan-device",
            "gpu-cache-mb",
#endif
    };
}

namespace {

// An on/off option given as 0 or 1.
uint32_t switch_or(const Args &args, const std::string &name, uint32_t fallback) {
    return uint32_t(args.int_in(name, fallback, 0, 1));
}

// A size in MiB as bytes: at most what 64 bits of bytes hold, so that it cannot wrap.
uint64_t mib_option(const Args &args, const std::string &name, int64_t fallback) {
    constexpr int64_t kMaxMib = int64_t(std::numeric_limits<uint64_t>::max() >> 20);
    return uint64_t(args.int_in(name, fallback, 0, kMaxMib)) << 20;
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
    if (args.get("cache-mb")) p.expert_cache_bytes = mib_option(args, "cache-mb", 0);  // else the library sizes it (MST_EXPERT_CACHE_AUTO)
    // 0 means the model's own; the library checks the upper bound against the model.
    p.experts_per_token = int32_t(args.int_in("experts-per-token", 0, 0, std::numeric_limits<int32_t>::max()));
    p.n_threads = thread_count_from(args);
    p.n_io_threads = int32_t(args.int_in("io-threads", 0, 0, 256));
    p.storage_queue_depth = int32_t(args.int_in("storage-queue-depth", 0, 0, 4096));
    p.storage_direct_io = switch_or(args, "storage-direct-io", p.storage_direct_io);
    p.storage_fadvise_random = switch_or(args, "storage-fadvise-random", p.storage_fadvise_random);
    if (args.get("storage-willneed")) p.storage_willneed = int32_t(switch_or(args, "storage-willneed", 0));
    p.storage_drop_after_read = switch_or(args, "storage-drop-after-read", p.storage_drop_after_read);
    cache_policy = args.get_or("cache-policy", "learned");
    p.cache_policy = cache_policy.c_str();
    const int64_t prefetch_layers = args.int_in("prefetch-layers", 1, 1, 1024);
    if (args.get("prefetch-layers") && !args.flag("prefetch")) throw UsageError("--prefetch-layers needs --prefetch");
    p.prefetch = args.flag("prefetch") ? int32_t(prefetch_layers) : 0;
    if (args.get("prefetch-min-share")) {
        if (!args.flag("prefetch")) throw UsageError("--prefetch-min-share needs --prefetch");
        p.prefetch_min_share = float(args.float_in("prefetch-min-share", 0.0, 0.0, 1.0));
    }
    p.rope_bf16_frequencies = args.flag("rope-bf16") ? 1 : 0;
    p.verify_checksums = args.flag("no-verify") ? 0 : 1;
#ifdef MST_HAVE_VULKAN
    p.vulkan_device = args.get_ptr("vulkan-device");
    p.gpu_expert_cache_bytes = mib_option(args, "gpu-cache-mb", 0);
#endif
    return p;
}

}  // namespace mst::cli
