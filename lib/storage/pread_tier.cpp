#include "storage/pread_tier.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <exception>
#include <mutex>

#include "core/error.h"

namespace mst {

PreadTier::PreadTier(const std::vector<std::string> &paths, const StorageOptions &options, PreadSyscall syscall,
                     const char *name)
    : pool_(options.n_io_threads), syscall_(std::move(syscall)), name_(name),
      drop_after_read_(options.drop_after_read) {
    if (!syscall_) syscall_ = [](int fd, void *buf, size_t count, off_t offset) { return ::pread(fd, buf, count, offset); };
    files_.reserve(paths.size());
    for (const auto &path : paths) {
        files_.push_back(File::open_read(path));
        // Expert reads are scattered; read-ahead past an expert would only waste bandwidth.
        if (options.fadvise_random) posix_fadvise(files_.back().fd(), 0, 0, POSIX_FADV_RANDOM);
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
        const size_t chunk = size_t(std::min<uint64_t>(r.length - done, 1ull << 30));
        const ssize_t got = syscall_(file.fd(), dst + done, chunk, off_t(r.offset + done));
        if (got < 0) {
            if (errno == EINTR) continue;
            fail(MST_ERR_IO, "reading {} from '{}' ({} bytes at offset {}) failed at offset {}: {}", r.what,
                 file.path(), r.length, r.offset, r.offset + done, errno_text(errno));
        }
        if (got == 0)
            fail(MST_ERR_BAD_FORMAT, "reading {} from '{}': file ends at offset {}, before the {} bytes at offset {}",
                 r.what, file.path(), r.offset + done, r.length, r.offset);
        done += uint64_t(got);
    }
    if (drop_after_read_) posix_fadvise(file.fd(), off_t(r.offset), off_t(r.length), POSIX_FADV_DONTNEED);
}

void PreadTier::read_batch(std::span<const ReadRequest> requests) {
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
    if (file >= files_.size()) return;
    int advice = POSIX_FADV_NORMAL;
    switch (hint) {
        case AccessHint::Random: advice = POSIX_FADV_RANDOM; break;
        case AccessHint::WillNeed: advice = POSIX_FADV_WILLNEED; break;
        case AccessHint::DontNeed: advice = POSIX_FADV_DONTNEED; break;
    }
    posix_fadvise(files_[file].fd(), off_t(offset), off_t(length), advice);
}

}  // namespace mst
