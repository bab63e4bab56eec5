#include "storage/mmap_tier.h"

#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <exception>
#include <mutex>

#include "core/error.h"
#include "core/madvise_populate.h"
#include "storage/page_cache_advice.h"

namespace mst {

MmapTier::MmapTier(const std::vector<std::string> &paths, const StorageOptions &options)
    : pool_(options.n_io_threads), willneed_(options.willneed.value_or(true)), drop_after_release_(options.drop_after_read) {
    maps_.reserve(paths.size());
    try {
        for (const auto &path : paths) {
            Mapping m;
            m.file = File::open_read(path);
            m.size = m.file.size();
            if (m.size > 0) {
                void *base = ::mmap(nullptr, size_t(m.size), PROT_READ, MAP_SHARED, m.file.fd(), 0);
                if (base == MAP_FAILED) {
                    const int err = errno;
                    fail(MST_ERR_IO, "cannot map '{}' ({} bytes): {}", path, m.size, errno_text(err));
                }
                m.base = static_cast<const uint8_t *>(base);
            }
            maps_.push_back(std::move(m));
            // Fault read-ahead would pull in the neighbouring experts with every miss.
            if (options.fadvise_random) advise(maps_.back(), 0, maps_.back().size, MADV_RANDOM);
        }
    } catch (...) {
        for (Mapping &m : maps_)
            if (m.base) ::munmap(const_cast<uint8_t *>(m.base), size_t(m.size));
        throw;
    }
}

MmapTier::~MmapTier() {
    for (Mapping &m : maps_)
        if (m.base) ::munmap(const_cast<uint8_t *>(m.base), size_t(m.size));
}

const MmapTier::Mapping &MmapTier::checked(uint32_t file, uint64_t offset, uint64_t length,
                                            const std::string &what) const {
    if (file >= maps_.size())
        fail(MST_ERR_INVALID_ARGUMENT, "read of {} names file #{}, but the tier has {} files", what, file,
             maps_.size());
    const Mapping &m = maps_[file];
    if (offset > m.size || length > m.size - offset)
        fail(MST_ERR_BAD_FORMAT, "mapping {} from '{}': file ends at offset {}, before the {} bytes at offset {}", what,
             m.file.path(), m.size, length, offset);
    return m;
}

void MmapTier::check_not_truncated(const Mapping &m, uint64_t offset, uint64_t length, const std::string &what) const {
    struct stat st {};
    if (length == 0 || ::fstat(m.file.fd(), &st) != 0) return;  // nothing touched; or pages fault as before
    const uint64_t now = uint64_t(st.st_size);
    if (now < offset + length)
        fail(MST_ERR_BAD_FORMAT, "{} in '{}': truncated: the file is now {} bytes, short of the {} bytes at offset {} "
             "(it was {} bytes when mapped)", what, m.file.path(), now, length, offset, m.size);
}

bool MmapTier::advise(const Mapping &m, uint64_t offset, uint64_t length, int advice) const {
    if (!m.base || length == 0) return true;
    const uint64_t page = uint64_t(::sysconf(_SC_PAGESIZE));
    const bool drops = advice == MADV_DONTNEED || advice == MADV_COLD;
    const uint64_t end = std::min(offset + length, m.size);
    uint64_t first = drops ? (offset + page - 1) / page * page : offset / page * page;
    uint64_t last = drops ? end / page * page : (end + page - 1) / page * page;
    if (drops && end == m.size) last = (end + page - 1) / page * page;  // the file's last page is nobody else's
    if (last <= first) return true;
    // Advice only changes speed and memory, never the bytes: its failure is not an error.
    // WILLNEED goes in pieces the kernel reads ahead whole (see kWillNeedChunk).
    const uint64_t piece = advice == MADV_WILLNEED ? kWillNeedChunk : last - first;
    bool taken = true;
    for (uint64_t at = first; at < last; at += piece)
        if (::madvise(const_cast<uint8_t *>(m.base) + at, size_t(std::min(piece, last - at)), advice) != 0) taken = false;
    return taken;
}

const void *MmapTier::map(uint32_t file, uint64_t offset, uint64_t length) {
    const Mapping &m = checked(file, offset, length, "expert data");
    check_not_truncated(m, offset, length, "expert data");
    if (willneed_) advise(m, offset, length, MADV_WILLNEED);
    return m.base ? m.base + offset : m.base;
}

void MmapTier::populate(uint32_t file, uint64_t offset, uint64_t length) {
    if (!willneed_ || file >= maps_.size()) return;
    const Mapping &m = maps_[file];
    // Speed only: any failure but a kernel without POPULATE_READ shows up as a fault later.
    if (advise(m, offset, length, kMadvPopulateRead) || errno != EINVAL) return;
    // A kernel without POPULATE_READ: fault each page in here instead.
    const uint64_t page = uint64_t(::sysconf(_SC_PAGESIZE));
    volatile uint8_t sink = 0;
    for (uint64_t at = offset / page * page; at < std::min(offset + length, m.size); at += page) sink = sink + m.base[at];
}

void MmapTier::release(uint32_t file, uint64_t offset, uint64_t length) {
    if (file >= maps_.size()) return;
    const Mapping &m = maps_[file];
    // COLD first puts the pages at the cold end of the LRU, so they are the first the
    // kernel reclaims; DONTNEED then unmaps them from this process (its RSS drops) while
    // the page cache may keep them for a later miss.
    advise(m, offset, length, MADV_COLD);
    advise(m, offset, length, MADV_DONTNEED);
    if (drop_after_release_) advise_page_cache(m.file.fd(), offset, length, AccessHint::DontNeed);
}

void MmapTier::hint(uint32_t file, uint64_t offset, uint64_t length, AccessHint hint) {
    if (file >= maps_.size()) return;
    switch (hint) {
        case AccessHint::Random: advise(maps_[file], offset, length, MADV_RANDOM); break;
        case AccessHint::WillNeed: advise(maps_[file], offset, length, MADV_WILLNEED); break;
        case AccessHint::DontNeed: advise(maps_[file], offset, length, MADV_DONTNEED); break;
    }
}

void MmapTier::read_batch(std::span<const ReadRequest> requests) {
    std::vector<uint64_t> lengths(requests.size());
    for (size_t i = 0; i < requests.size(); ++i) {
        const ReadRequest &r = requests[i];
        // Padding for alignment may run past the end; the bytes asked for may not.
        const uint64_t needed = r.length - std::min(r.padding, r.length);
        const Mapping &m = checked(r.file, r.offset, needed, r.what);
        check_not_truncated(m, r.offset, needed, r.what);
        lengths[i] = std::min(r.length, m.size - r.offset);
        if (willneed_) advise(m, r.offset, lengths[i], MADV_WILLNEED);
    }
    auto copy_one = [&](size_t i) {
        const ReadRequest &r = requests[i];
        if (lengths[i] > 0) std::memcpy(r.dst, maps_[r.file].base + r.offset, size_t(lengths[i]));
    };
    if (requests.size() == 1) {
        copy_one(0);
    } else {
        pool_.run_all(requests.size(), copy_one);
    }
}

}  // namespace mst
