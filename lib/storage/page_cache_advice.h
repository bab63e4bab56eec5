// posix_fadvise for the buffered tiers (pread, uring): the one place that turns an
// AccessHint into page-cache advice, so that every buffered tier honours it the same way.
#pragma once

#include <cstdint>

#include "storage/storage_tier.h"

namespace mst {

// The kernel reads ahead at most max(read_ahead_kb, max_sectors_kb) per WILLNEED call
// (force_page_cache_ra), 128 KiB to a few MiB depending on the device, and silently drops
// the rest of a larger range: a 32 MiB expert advised at once got its first 8 MiB read
// ahead and the rest by faults (bench/README.md). WILLNEED is therefore given in pieces
// no larger than what every common device takes whole.
constexpr uint64_t kWillNeedChunk = uint64_t(512) << 10;

// Advice is best effort: a file system that ignores it changes speed, never results,
// so failures are not errors. length 0 means "to the end of the file".
void advise_page_cache(int fd, uint64_t offset, uint64_t length, AccessHint hint);

}  // namespace mst
