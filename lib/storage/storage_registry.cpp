#include <fmt/ranges.h>

#include "core/error.h"
#include "storage/direct_tier.h"
#include "storage/fault_injection.h"
#include "storage/mmap_tier.h"
#include "storage/pread_tier.h"
#include "storage/storage_tier.h"
#ifdef MST_HAVE_URING
#include "storage/uring_tier.h"
#endif

namespace mst {

bool uring_tier_built() {
#ifdef MST_HAVE_URING
    return true;
#else
    return false;
#endif
}

#ifndef MST_HAVE_URING
namespace {
constexpr const char *kUringNotBuilt =
    "this build of moestream has no io_uring tier (configured without liburing: not found, or MST_URING=OFF; "
    "Debian: liburing-dev)";
}  // namespace

bool io_uring_available(std::string *why) {
    if (why) *why = kUringNotBuilt;
    return false;
}
#endif

std::vector<std::string> available_storage_tiers() {
    std::vector<std::string> tiers = {"auto", "mmap", "pread", "direct"};
    if (io_uring_available()) tiers.push_back("uring");
    tiers.push_back("fault");  // tests only (fault_injection.h)
    return tiers;
}

// "auto": uring where io_uring works, else pread. From bench/bench_io (bench/README.md,
// "Storage tiers"): cold, every explicit tier reached 36-110% of the device's sequential
// bandwidth while mmap page faults reached 2-19% (40-113% with chunked WILLNEED, still
// behind uring in most cells, and a truncated file is SIGBUS rather than an error);
// O_DIRECT was the most even cold but gives up the page cache, which served warm reads
// 4-10x faster than the device; uring and pread were level cold and uring was about twice
// as fast warm, with one system call per batch instead of a thread hand-off per read.
std::string auto_storage_tier() { return io_uring_available() ? "uring" : "pread"; }

std::unique_ptr<StorageTier> open_storage(const std::vector<std::string> &paths, const StorageOptions &options) {
    if (options.n_io_threads < 1 || options.n_io_threads > 256)
        fail(MST_ERR_INVALID_ARGUMENT, "n_io_threads must be in 1..256, got {}", options.n_io_threads);
    if (options.queue_depth < 1 || options.queue_depth > 4096)
        fail(MST_ERR_INVALID_ARGUMENT, "storage queue depth must be in 1..4096, got {}", options.queue_depth);
    const std::string tier = options.tier == "auto" ? auto_storage_tier() : options.tier;
    if (options.direct_io && tier != "pread" && tier != "direct" && tier != "uring")
        fail(MST_ERR_INVALID_ARGUMENT, "storage tier '{}' cannot read with O_DIRECT (direct_io); pread, direct and "
             "uring can", tier);
    if (tier == "pread") {
        if (options.direct_io) return std::make_unique<DirectTier>(paths, options);
        return std::make_unique<PreadTier>(paths, options);
    }
    if (tier == "direct") return std::make_unique<DirectTier>(paths, options);
    if (tier == "uring") {
#ifdef MST_HAVE_URING
        return std::make_unique<UringTier>(paths, options);
#else
        fail(MST_ERR_UNSUPPORTED, "storage tier 'uring' is not available here: {}", kUringNotBuilt);
#endif
    }
    if (tier == "mmap") return std::make_unique<MmapTier>(paths, options);
    if (tier == "fault") {
        // Tests only: pread through the current FaultPlan (see fault_injection.h).
        std::shared_ptr<FaultPlan> plan = current_fault_plan();
        if (!plan) fail(MST_ERR_INVALID_ARGUMENT, "storage tier 'fault' needs a fault plan (set_fault_plan)");
        return std::make_unique<PreadTier>(
            paths, options, [plan](int fd, void *buf, size_t n, off_t off) { return plan->pread(fd, buf, n, off); },
            "fault");
    }
    fail(MST_ERR_INVALID_ARGUMENT, "unknown storage tier '{}'; this build offers: {}", options.tier,
         fmt::join(available_storage_tiers(), ", "));
}

}  // namespace mst
