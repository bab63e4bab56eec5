#include "storage/auto_tier.h"

#include <fmt/format.h>

#include "core/error.h"
#include "core/log.h"
#include "storage/direct_tier.h"
#include "storage/mmap_tier.h"
#include "storage/pread_tier.h"

namespace mst {

namespace {
// "Mostly" in the page cache: the pages a mapping finds in memory then outweigh the
// device reads that O_DIRECT would make faster.
constexpr double kResidentEnough = 0.5;
}  // namespace

AutoTierChoice choose_auto_tier(const PageResidency &residency, bool direct_io) {
    const std::string sampled = fmt::format("{:.0f}% of {} sampled pages are in the page cache",
                                            100.0 * residency.fraction(), residency.sampled);
    if (direct_io) return {"direct", "direct_io was asked for; " + sampled};
    if (residency.sampled > 0 && residency.fraction() >= kResidentEnough)
        return {"mmap", sampled + ", so experts are used in place from it (no copy)"};
    return {"direct", sampled + ", so the experts come from the device, which O_DIRECT reads fastest"};
}

std::unique_ptr<StorageTier> open_auto_storage(const std::vector<std::string> &paths, const StorageOptions &options) {
    const AutoTierChoice choice = choose_auto_tier(sample_page_residency(paths), options.direct_io);
    if (choice.tier == "direct") {
        try {
            auto tier = std::make_unique<DirectTier>(paths, options);
            log(MST_LOG_INFO, "storage auto: chose direct ({})", choice.why);
            return tier;
        } catch (const Error &e) {
            if (e.code() != MST_ERR_UNSUPPORTED || options.direct_io) throw;
            log(MST_LOG_INFO, "storage auto: chose pread ({}, but direct I/O is refused here: {})", choice.why, e.what());
            return std::make_unique<PreadTier>(paths, options);
        }
    }
    log(MST_LOG_INFO, "storage auto: chose mmap ({})", choice.why);
    return std::make_unique<MmapTier>(paths, options);
}

}  // namespace mst
