// The uring tier: a layer's reads go to the kernel as one io_uring submission (one
// system call for the whole batch) and complete in any order, so the device queue holds
// every read of the layer at once without a thread per read. The files are registered
// with the ring (IORING_REGISTER_FILES), which spares the kernel a file-table lookup
// and reference count per read. With direct_io the files are opened with O_DIRECT and
// reads must be aligned like the direct tier's.
//
// Two rings serve the tier, each given to one batch at a time: the expert store reads
// on two I/O threads (a layer's own reads and reads ahead of need), and with one ring a
// layer's reads waited behind a prefetch batch in flight. More batches at once queue
// for a ring, which costs nothing while the batches in flight keep the device busy.
//
// Built only with liburing (MST_HAVE_URING); io_uring_available() is in storage_tier.h.
#pragma once

#include <liburing.h>

#include <array>
#include <mutex>
#include <string>

#include "core/file_io.h"
#include "storage/storage_tier.h"

namespace mst {

class UringTier : public StorageTier {
public:
    // Throws MST_ERR_UNSUPPORTED when io_uring is unavailable, MST_ERR_INVALID_ARGUMENT
    // for a queue depth outside 1..4096.
    UringTier(const std::vector<std::string> &paths, const StorageOptions &options);
    ~UringTier() override;
    UringTier(const UringTier &) = delete;
    UringTier &operator=(const UringTier &) = delete;

    const char *name() const override { return "uring"; }
    void read_batch(std::span<const ReadRequest> requests) override;
    void hint(uint32_t file, uint64_t offset, uint64_t length, AccessHint hint) override;
    size_t alignment() const override { return alignment_; }

private:
    struct Ring {
        std::mutex mutex;  // held by the batch using the ring
        struct io_uring ring {};
        bool ready = false;
    };
    // Create the ring and register the files (again, after a failure left it unusable).
    void set_up_ring(Ring &ring);
    static void tear_down_ring(Ring &ring);
    // A ring no batch is using, else the first once it is free; returned locked.
    Ring &acquire_ring(std::unique_lock<std::mutex> &lock);

    std::vector<File> files_;
    std::array<Ring, 2> rings_;
    unsigned depth_;
    size_t alignment_ = 1;
    bool direct_;
    bool drop_after_read_;
};

}  // namespace mst
