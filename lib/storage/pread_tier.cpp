#include "storage/pread_tier.h"

#include <fcntl.h>

#include <exception>
#include <mutex>

#include "core/error.h"

namespace mst {

PreadTier::PreadTier(const std::vector<std::string> &paths, int n_io_threads) : pool_(n_io_threads) {
    files_.reserve(paths.size());
    for (const auto &path : paths) {
        files_.push_back(File::open_read(path));
        // Expert reads are scattered; read-ahead past an expert would only waste bandwidth.
        posix_fadvise(files_.back().fd(), 0, 0, POSIX_FADV_RANDOM);
    }
}

const File &PreadTier::file_for(const ReadRequest &request) const {
    if (request.file >= files_.size())
        fail(MST_ERR_INVALID_ARGUMENT, "read of {} names file #{}, but the tier has {} files", request.what,
             request.file, files_.size());
    return files_[request.file];
}

void PreadTier::read_batch(std::span<const ReadRequest> requests) {
    std::mutex error_mutex;
    std::exception_ptr first_error;
    auto read_one = [&](size_t i) {
        const ReadRequest &r = requests[i];
        try {
            file_for(r).pread_exact(r.dst, r.length, r.offset);
        } catch (const Error &e) {
            std::lock_guard lock(error_mutex);
            if (!first_error)
                first_error = std::make_exception_ptr(Error(e.code(), fmt::format("reading {}: {}", r.what, e.what())));
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
