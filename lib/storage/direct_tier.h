// The direct tier: the pread thread pool over files opened with O_DIRECT, so expert
// bytes go from the device straight into the expert's own 4 KiB-aligned buffer and the
// page cache neither holds a second copy nor evicts anything else for them. Reads must
// be aligned (offset, length and buffer); the expert store widens its reads to
// alignment() and points the weights into the widened buffer.
#pragma once

#include "core/file_io.h"
#include "storage/pread_tier.h"

namespace mst {

// The alignment O_DIRECT reads of `file` need: what statx reports (STATX_DIOALIGN),
// raised to 4 KiB, the page size every SSD serves at full speed, or 4 KiB where the
// kernel does not say. Throws MST_ERR_UNSUPPORTED when the file system reports that it
// has no direct I/O for the file or needs more than 4 KiB (expert buffers are aligned
// to 4 KiB).
size_t direct_io_alignment(const File &file);

class DirectTier : public PreadTier {
public:
    DirectTier(const std::vector<std::string> &paths, const StorageOptions &options);
};

}  // namespace mst
