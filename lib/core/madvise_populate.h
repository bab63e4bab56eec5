// MADV_POPULATE_READ (Linux 5.14): map every page of a range in one call, reading those
// the page cache lacks, instead of one fault per page. Spelled out for older headers; a
// kernel without it answers EINVAL.
#pragma once

#include <sys/mman.h>

namespace mst {

#ifdef MADV_POPULATE_READ
inline constexpr int kMadvPopulateRead = MADV_POPULATE_READ;
#else
inline constexpr int kMadvPopulateRead = 22;
#endif

}  // namespace mst
