#include <fmt/ranges.h>

#include "core/error.h"
#include "storage/fault_injection.h"
#include "storage/pread_tier.h"
#include "storage/storage_tier.h"

namespace mst {

std::vector<std::string> available_storage_tiers() { return {"auto", "pread", "fault"}; }

// "auto" is pread: explicit parallel reads beat mmap page faults by 5-14x in the field
// (DESIGN.md), and pread needs no alignment, so it works for every file.
std::unique_ptr<StorageTier> open_storage(const std::vector<std::string> &paths, const StorageOptions &options) {
    if (options.n_io_threads < 1 || options.n_io_threads > 256)
        fail(MST_ERR_INVALID_ARGUMENT, "n_io_threads must be in 1..256, got {}", options.n_io_threads);
    if (options.tier == "auto" || options.tier == "pread") return std::make_unique<PreadTier>(paths, options);
    if (options.tier == "fault") {
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
