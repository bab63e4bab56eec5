#include <fmt/ranges.h>

#include "core/error.h"
#include "storage/auto_tier.h"
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

std::unique_ptr<StorageTier> open_storage(const std::vector<std::string> &paths, const StorageOptions &options) {
    if (options.n_io_threads < 1 || options.n_io_threads > 256)
        fail(MST_ERR_INVALID_ARGUMENT, "n_io_threads must be in 1..256, got {}", options.n_io_threads);
    if (options.queue_depth < 1 || options.queue_depth > 4096)
        fail(MST_ERR_INVALID_ARGUMENT, "storage queue depth must be in 1..4096, got {}", options.queue_depth);
    if (options.tier == "auto") return open_auto_storage(paths, options);  // storage/auto_tier.h
    const std::string &tier = options.tier;
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
