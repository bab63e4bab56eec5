#include "storage/pread_tier.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <exception>
#include <mutex>

#include "core/error.h"
#include "storage/page_cache_advice.h"

namespace mst {

PreadTier::PreadTier(const std::vector<std::string> &paths, const StorageOptions &options, PreadSyscall syscall,
                     const char *name)
    : PreadTier(paths, options, 0, name) {
    if (syscall) syscall_ = std::move(syscall);
}

PreadTier::PreadTier(const std::vector<std::string> &paths, const StorageOptions &options, int open_flags,
                     const char *name)
    : pool_(options.n_io_threads),
      syscall_([](int fd, void *buf, size_t count, off_t offset) { return ::pread(fd, buf, count, offset); }),
      name_(name), direct_((open_flags & O_DIRECT) != 0), willneed_(options.willneed.value_or(false) && !direct_),
      drop_after_read_(options.drop_after_read && !direct_) {
    files_.reserve(paths.size());
    for (const auto &path : paths) {
        files_.push_back(File::open_read(path, open_flags));
        // Expert reads are scattered; read-ahead past an expert would only waste bandwidth.
        if (options.fadvise_random && !direct_) advise_page_cache(files_.back().fd(), 0, 0, AccessHint::Random);
    }
}

const File &PreadTier::file_for(const ReadRequest &request) const {
    if (request.file >= files_.size())
        fail(MST_ERR_INVALID_ARGUMENT, "read of {} names file #{}, but the tier has {} files", request.what,
             request.file, files_.size());
    return files_[request.file];
}

void PreadTier::read_fully(const ReadRequest &r) const {
    const File &file = file_for(r);
    auto *dst = static_cast<unsigned char *>(r.dst);
    uint64_t done = 0;
    while (done < r.length) {
        // Only alignment padding is left and it lies past the end of the file. Asking
        // for it anyway would fail under O_DIRECT: the offset there is not aligned.
        if (r.offset + done >= file.size() && r.length - done <= r.padding) break;
        const size_t chunk = size_t(std::min<uint64_t>(r.length - done, 1ull << 30));
        const ssize_t got = syscall_(file.fd(), dst + done, chunk, off_t(r.offset + done));
        if (got < 0) {
            const int err = errno;
            if (err == EINTR) continue;
            fail(MST_ERR_IO, "reading {} from '{}' ({} bytes at offset {}) failed at offset {}: {}", r.what,
                 file.path(), r.length, r.offset, r.offset + done, errno_text(err));
        }
        done += uint64_t(got);
        // Nothing read, or (under O_DIRECT, which stops short only at the end of the
        // file) a read that ends off the alignment: the file ends here.
        const bool at_end = got == 0 || (done < r.length && (r.offset + done) % alignment_ != 0);
        if (at_end) {
            if (r.length - done <= r.padding) break;
            fail(MST_ERR_BAD_FORMAT, "reading {} from '{}': file ends at offset {}, before the {} bytes at offset {}",
                 r.what, file.path(), r.offset + done, r.length - r.padding, r.offset);
        }
    }
    if (drop_after_read_) advise_page_cache(file.fd(), r.offset, r.length, AccessHint::DontNeed);
}

void PreadTier::read_batch(std::span<const ReadRequest> requests) {
    // Tell the kernel about every read of the batch before the threads start, so the
    // device queue holds the whole batch even when there are fewer threads than reads.
    if (willneed_ && requests.size() > 1)
        for (const ReadRequest &r : requests)
            if (r.file < files_.size()) advise_page_cache(files_[r.file].fd(), r.offset, r.length, AccessHint::WillNeed);
    std::mutex error_mutex;
    std::exception_ptr first_error;
    auto read_one = [&](size_t i) {
        try {
            read_fully(requests[i]);
        } catch (...) {
            std::lock_guard lock(error_mutex);
            if (!first_error) first_error = std::current_exception();
        }
    };
    if (requests.size() == 1) {
        read_one(0);  // no hand-off to the pool for a single read
    } else {
        pool_.run_all(requests.size(), read_one);
    }
    if (first_error) std::rethrow_exception(first_error);
}

void PreadTier::hint(uint32_t file, uint64_t offset, uint64_t length, AccessHint hint) {
    if (file >= files_.size() || direct_) return;
    advise_page_cache(files_[file].fd(), offset, length, hint);
}

}  // namespace mst
