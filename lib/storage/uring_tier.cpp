#include "storage/uring_tier.h"

#include <fcntl.h>

#include <algorithm>
#include <cerrno>
#include <deque>
#include <optional>

#include "core/error.h"
#include "storage/direct_tier.h"
#include "storage/page_cache_advice.h"

namespace mst {

namespace {

// A single SQE carries a 32-bit length; a gigabyte per read keeps far inside it.
constexpr uint64_t kMaxReadChunk = 1ull << 30;
// How often one read may come back EAGAIN / EINTR before the batch gives up on it.
constexpr int kMaxRetries = 1000;

struct FirstError {
    mst_status code = MST_OK;
    std::string message;
    void set(mst_status c, std::string m) {
        if (code == MST_OK) code = c, message = std::move(m);
    }
};

}  // namespace

bool io_uring_available(std::string *why) {
    static const std::optional<std::string> problem = []() -> std::optional<std::string> {
        struct io_uring ring;
        const int ret = io_uring_queue_init(2, &ring, 0);
        if (ret < 0) return "io_uring_queue_init failed: " + errno_text(-ret);
        struct io_uring_probe *probe = io_uring_get_probe_ring(&ring);
        const bool reads = probe && io_uring_opcode_supported(probe, IORING_OP_READ);
        if (probe) io_uring_free_probe(probe);
        io_uring_queue_exit(&ring);
        if (!reads) return std::string("the kernel's io_uring has no IORING_OP_READ (Linux 5.6 or later needed)");
        return std::nullopt;
    }();
    if (problem && why) *why = *problem;
    return !problem;
}

UringTier::UringTier(const std::vector<std::string> &paths, const StorageOptions &options)
    : depth_(unsigned(options.queue_depth)), direct_(options.direct_io),
      drop_after_read_(options.drop_after_read && !options.direct_io) {
    if (options.queue_depth < 1 || options.queue_depth > 4096)
        fail(MST_ERR_INVALID_ARGUMENT, "storage queue depth must be in 1..4096, got {}", options.queue_depth);
    std::string why;
    if (!io_uring_available(&why)) fail(MST_ERR_UNSUPPORTED, "storage tier 'uring' is not available here: {}", why);
    files_.reserve(paths.size());
    for (const auto &path : paths) {
        files_.push_back(File::open_read(path, direct_ ? O_DIRECT : 0));
        if (direct_) alignment_ = std::max(alignment_, direct_io_alignment(files_.back()));
        else if (options.fadvise_random) advise_page_cache(files_.back().fd(), 0, 0, AccessHint::Random);
    }
    set_up_ring(rings_[0]);  // fails here, not at the first read, where io_uring cannot serve these files
}

UringTier::~UringTier() {
    for (Ring &ring : rings_) tear_down_ring(ring);
}

void UringTier::set_up_ring(Ring &r) {
    int ret = io_uring_queue_init(depth_, &r.ring, 0);
    if (ret < 0)
        fail(MST_ERR_UNSUPPORTED, "io_uring_queue_init with {} entries failed: {}", depth_, errno_text(-ret));
    if (!files_.empty()) {
        std::vector<int> fds;
        for (const File &f : files_) fds.push_back(f.fd());
        ret = io_uring_register_files(&r.ring, fds.data(), unsigned(fds.size()));
        if (ret < 0) {
            io_uring_queue_exit(&r.ring);
            fail(MST_ERR_IO, "registering {} files (first '{}') with io_uring failed: {}", fds.size(),
                 files_.front().path(), errno_text(-ret));
        }
    }
    r.ready = true;
}

void UringTier::tear_down_ring(Ring &r) {
    if (r.ready) io_uring_queue_exit(&r.ring);
    r.ready = false;
}

UringTier::Ring &UringTier::acquire_ring(std::unique_lock<std::mutex> &lock) {
    for (Ring &r : rings_) {
        std::unique_lock<std::mutex> attempt(r.mutex, std::try_to_lock);
        if (attempt.owns_lock()) {
            lock = std::move(attempt);
            return r;
        }
    }
    lock = std::unique_lock<std::mutex>(rings_[0].mutex);
    return rings_[0];
}

void UringTier::read_batch(std::span<const ReadRequest> requests) {
    for (const ReadRequest &r : requests)
        if (r.file >= files_.size())
            fail(MST_ERR_INVALID_ARGUMENT, "read of {} names file #{}, but the tier has {} files", r.what, r.file,
                 files_.size());
    std::unique_lock<std::mutex> lock;
    Ring &ring = acquire_ring(lock);
    if (!ring.ready) set_up_ring(ring);
    struct io_uring &uring = ring.ring;

    std::vector<uint64_t> done(requests.size(), 0);
    std::vector<int> retries(requests.size(), 0);
    std::deque<size_t> ready;  // requests with bytes left to ask for
    for (size_t i = 0; i < requests.size(); ++i)
        if (requests[i].length > 0) ready.push_back(i);
    FirstError error;
    unsigned queued = 0;     // SQEs prepared but not yet taken by the kernel
    unsigned in_kernel = 0;  // reads submitted and not yet completed
    int submit_retries = 0;

    // Whether request i is complete: every byte read, or only alignment padding left
    // past the end of the file (asking for it would fail under O_DIRECT).
    auto complete = [&](size_t i) {
        const ReadRequest &r = requests[i];
        const uint64_t left = r.length - done[i];
        return left == 0 || (left <= r.padding && r.offset + done[i] >= files_[r.file].size());
    };
    auto describe = [&](size_t i) {
        const ReadRequest &r = requests[i];
        return fmt::format("reading {} from '{}' ({} bytes at offset {})", r.what, files_[r.file].path(), r.length,
                           r.offset);
    };

    while (true) {
        while (error.code == MST_OK && !ready.empty() && in_kernel + queued < depth_) {
            const size_t i = ready.front();
            if (complete(i)) {
                ready.pop_front();
                continue;
            }
            struct io_uring_sqe *sqe = io_uring_get_sqe(&uring);
            if (!sqe) break;
            ready.pop_front();
            const ReadRequest &r = requests[i];
            const uint64_t chunk = std::min(r.length - done[i], kMaxReadChunk);
            io_uring_prep_read(sqe, int(r.file), static_cast<uint8_t *>(r.dst) + done[i], unsigned(chunk),
                               r.offset + done[i]);
            sqe->flags |= IOSQE_FIXED_FILE;  // r.file indexes the registered files
            io_uring_sqe_set_data64(sqe, i);
            ++queued;
        }
        if (queued > 0) {
            const int ret = io_uring_submit(&uring);
            if (ret >= 0) {
                queued -= unsigned(ret);
                in_kernel += unsigned(ret);
            } else if (ret != -EINTR && ret != -EAGAIN && ret != -EBUSY) {
                // The SQEs left in the ring point into this batch's buffers; the ring is
                // rebuilt once the submitted reads are in, so that no later batch sends them.
                error.set(MST_ERR_IO, fmt::format("submitting {} reads to io_uring failed: {}", queued, errno_text(-ret)));
            } else if (in_kernel == 0) {
                // The kernel is short of resources with nothing of ours in flight: try again.
                if (++submit_retries <= kMaxRetries) continue;
                error.set(MST_ERR_IO, fmt::format("submitting {} reads to io_uring failed {} times: {}", queued,
                                                  submit_retries, errno_text(-ret)));
            }
        }
        if (in_kernel == 0) {
            if (queued > 0 && error.code == MST_OK) continue;
            break;
        }
        struct io_uring_cqe *cqe = nullptr;
        const int ret = io_uring_wait_cqe(&uring, &cqe);
        if (ret == -EINTR || ret == -EAGAIN) continue;
        if (ret < 0) {
            // Without completions the reads' state is unknown; closing the ring is the
            // only way to be rid of them.
            error.set(MST_ERR_IO, fmt::format("waiting for io_uring completions failed: {}", errno_text(-ret)));
            queued = 1;  // forces the rebuild below
            break;
        }
        unsigned head;
        unsigned seen = 0;
        io_uring_for_each_cqe(&uring, head, cqe) {
            ++seen;
            --in_kernel;
            const size_t i = size_t(io_uring_cqe_get_data64(cqe));
            const ReadRequest &r = requests[i];
            const int res = cqe->res;
            if (res == -EINTR || res == -EAGAIN) {
                if (++retries[i] <= kMaxRetries) {
                    ready.push_back(i);
                } else {
                    error.set(MST_ERR_IO, fmt::format("{} failed at offset {}: {} {} times", describe(i),
                                                      r.offset + done[i], errno_text(-res), retries[i]));
                }
            } else if (res < 0) {
                error.set(MST_ERR_IO, fmt::format("{} failed at offset {}: {}", describe(i), r.offset + done[i],
                                                  errno_text(-res)));
            } else {
                done[i] += uint64_t(res);
                // Nothing read, or (under O_DIRECT, which stops short only at the end of
                // the file) a read that ends off the alignment: the file ends here.
                const bool at_end = res == 0 || (done[i] < r.length && (r.offset + done[i]) % alignment_ != 0);
                if (at_end) {
                    if (r.length - done[i] > r.padding)
                        error.set(MST_ERR_BAD_FORMAT,
                                  fmt::format("reading {} from '{}': file ends at offset {}, before the {} bytes at "
                                              "offset {}",
                                              r.what, files_[r.file].path(), r.offset + done[i], r.length - r.padding,
                                              r.offset));
                } else if (!complete(i)) {
                    ready.push_back(i);  // a short read: ask for the rest
                } else if (drop_after_read_) {
                    advise_page_cache(files_[r.file].fd(), r.offset, r.length, AccessHint::DontNeed);
                }
            }
        }
        io_uring_cq_advance(&uring, seen);
    }
    if (queued > 0) tear_down_ring(ring);  // set up afresh by the next batch
    if (error.code != MST_OK) throw Error(error.code, error.message);
}

void UringTier::hint(uint32_t file, uint64_t offset, uint64_t length, AccessHint hint) {
    if (file >= files_.size() || direct_) return;
    advise_page_cache(files_[file].fd(), offset, length, hint);
}

}  // namespace mst
