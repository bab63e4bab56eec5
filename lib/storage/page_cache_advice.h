// posix_fadvise for the buffered tiers (pread, uring): the one place that turns an
// AccessHint into page-cache advice, so that every buffered tier honours it the same way.
#pragma once

#include <cstdint>

#include "storage/storage_tier.h"

namespace mst {

// Advice is best effort: a file system that ignores it changes speed, never results,
// so failures are not errors. length 0 means "to the end of the file".
void advise_page_cache(int fd, uint64_t offset, uint64_t length, AccessHint hint);

}  // namespace mst
