#include "storage/direct_tier.h"

#include <fcntl.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>

#include "core/aligned_buffer.h"
#include "core/error.h"

namespace mst {

size_t direct_io_alignment(const File &file) {
    constexpr size_t kMinimum = 4096;
    struct statx st {};
    if (statx(file.fd(), "", AT_EMPTY_PATH, STATX_DIOALIGN, &st) != 0 || !(st.stx_mask & STATX_DIOALIGN))
        return kMinimum;  // an older kernel or a file system that does not say: 4 KiB serves all SSDs
    if (st.stx_dio_mem_align == 0 || st.stx_dio_offset_align == 0)
        fail(MST_ERR_UNSUPPORTED, "'{}': its file system does not support direct I/O (O_DIRECT) for this file",
             file.path());
    const size_t needed = std::max<size_t>({kMinimum, st.stx_dio_mem_align, st.stx_dio_offset_align});
    if (needed > AlignedBuffer::kAlignment || AlignedBuffer::kAlignment % needed != 0)
        fail(MST_ERR_UNSUPPORTED, "'{}': direct I/O needs {}-byte alignment, more than the {} bytes expert buffers have",
             file.path(), needed, AlignedBuffer::kAlignment);
    return needed;
}

DirectTier::DirectTier(const std::vector<std::string> &paths, const StorageOptions &options)
    : PreadTier(paths, options, O_DIRECT, "direct") {
    for (const File &file : files_) alignment_ = std::max(alignment_, direct_io_alignment(file));
}

}  // namespace mst
