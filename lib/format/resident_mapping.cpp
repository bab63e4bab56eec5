#include "format/resident_mapping.h"

#include <sys/mman.h>
#include <unistd.h>
#include <xxhash.h>

#include <cerrno>

#include "core/error.h"
#include "core/madvise_populate.h"

namespace mst {
ResidentMapping::ResidentMapping(const File &file, uint64_t offset, uint64_t bytes, bool verify, uint64_t xxh64)
    : begin_(offset), end_(offset + bytes) {
    if (bytes == 0) {
        if (verify && XXH64(nullptr, 0, 0) != xxh64)
            fail(MST_ERR_CHECKSUM, "{}: resident section checksum mismatch at offset {} (0 bytes): stored xxh64 "
                 "{:016x}, computed {:016x}", file.path(), offset, xxh64, XXH64(nullptr, 0, 0));
        return;
    }
    map(file, bytes);
    // One call maps every page (reading those the page cache lacks, with read-ahead),
    // instead of a fault per page during the hash and the first token. Speed only: on a
    // kernel without it the pages fault in as they are touched.
    ::madvise(base_, size_t(map_bytes_), MADV_WILLNEED);
    ::madvise(base_, size_t(map_bytes_), kMadvPopulateRead);
    populated_ = true;
    if (!verify) return;
    const uint64_t computed = XXH64(static_cast<const uint8_t *>(base_) + (begin_ - base_offset_), size_t(bytes), 0);
    if (computed != xxh64) {
        ::munmap(base_, size_t(map_bytes_));
        base_ = nullptr;
        fail(MST_ERR_CHECKSUM, "{}: resident section checksum mismatch at offset {} ({} bytes): stored xxh64 {:016x}, "
             "computed {:016x}", file.path(), offset, bytes, xxh64, computed);
    }
}

ResidentMapping::ResidentMapping(const File &file, uint64_t offset, uint64_t bytes, Unchecked)
    : begin_(offset), end_(offset + bytes) {
    if (bytes > 0) map(file, bytes);
}

void ResidentMapping::map(const File &file, uint64_t bytes) {
    const uint64_t page = uint64_t(::sysconf(_SC_PAGESIZE));
    base_offset_ = begin_ / page * page;
    map_bytes_ = end_ - base_offset_;
    void *base = ::mmap(nullptr, size_t(map_bytes_), PROT_READ, MAP_SHARED, file.fd(), off_t(base_offset_));
    if (base == MAP_FAILED) {
        const int err = errno;
        fail(MST_ERR_IO, "cannot map the resident section of '{}' ({} bytes at offset {}): {}", file.path(), bytes,
             begin_, errno_text(err));
    }
    base_ = base;
}

ResidentMapping::~ResidentMapping() {
    if (base_) ::munmap(base_, size_t(map_bytes_));
}

const uint8_t *ResidentMapping::find(uint64_t offset, uint64_t nbytes) const {
    if (!base_ || offset < begin_ || offset > end_ || nbytes > end_ - offset) return nullptr;
    return static_cast<const uint8_t *>(base_) + (offset - base_offset_);
}

const uint8_t *ResidentMapping::use(uint64_t offset, uint64_t nbytes) const {
    const uint8_t *bytes = find(offset, nbytes);
    if (bytes && !populated_ && nbytes > 0) {
        const uint64_t page = uint64_t(::sysconf(_SC_PAGESIZE));
        const uint64_t first = (offset - base_offset_) / page * page;
        const uint64_t last = offset - base_offset_ + nbytes;
        // Speed only, as in the constructor.
        ::madvise(static_cast<uint8_t *>(base_) + first, size_t(last - first), kMadvPopulateRead);
    }
    return bytes;
}

}  // namespace mst
