// The storage tier "auto" opens. Measured side by side (bench/README.md): cold, inside a
// 3 GiB memory limit, direct decoded fastest (6.83 tok/s against 5.81 for uring); on a
// warm page cache, pread beat uring (prompt 35.0 tok/s against 24.8), and mmap beat pread,
// since a mapping uses the page cache's bytes in place where every other tier copies
// each expert out of it (a 45-token first pass: half the CPU time; "Prefill, first
// token and load on the CPU"). So the choice follows the page cache: mostly holding the
// files' pages, mmap; else direct where the file system takes O_DIRECT, else pread.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "storage/page_residency.h"
#include "storage/storage_tier.h"

namespace mst {

struct AutoTierChoice {
    std::string tier;  // "mmap", "direct" or "pread"
    std::string why;   // for the log
};

// The rule alone: `residency` of the model's files; `direct_io` the caller's wish to
// read past the page cache (StorageOptions::direct_io), which makes it direct.
AutoTierChoice choose_auto_tier(const PageResidency &residency, bool direct_io);

// Sample the files, choose, and open the tier, falling back to pread (and saying why)
// where direct is chosen but the file system refuses O_DIRECT. The choice is logged.
std::unique_ptr<StorageTier> open_auto_storage(const std::vector<std::string> &paths, const StorageOptions &options);

}  // namespace mst
