// The uring tier: a layer's reads go to the kernel as one io_uring submission (one
// system call for the whole batch) and complete in any order, so the device queue holds
// every read of the layer at once without a thread per read. The files are registered
// with the ring (IORING_REGISTER_FILES), which spares the kernel a file-table lookup
// and reference count per read. With direct_io the files are opened with O_DIRECT and
// reads must be aligned like the direct tier's.
//
// One ring serves the tier; a mutex gives it to one batch at a time. Sessions that read
// at the same moment queue behind each other, which costs nothing while one batch
// already keeps the device busy.
#pragma once

#include <liburing.h>

#include <mutex>
#include <string>

#include "core/file_io.h"
#include "storage/storage_tier.h"

namespace mst {

// Whether io_uring works here (kernel >= 5.6 with IORING_OP_READ, not disabled by
// sysctl or a seccomp filter). Probed once per process; `why` gets the reason when not.
bool io_uring_available(std::string *why = nullptr);

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
    // Create the ring and register the files (again, after a failure left it unusable).
    void set_up_ring();
    void tear_down_ring();

    std::vector<File> files_;
    std::mutex mutex_;
    struct io_uring ring_ {};
    bool ring_ready_ = false;
    unsigned depth_;
    size_t alignment_ = 1;
    bool direct_;
    bool drop_after_read_;
};

}  // namespace mst
