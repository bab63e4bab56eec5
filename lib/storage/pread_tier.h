// The pread tier: the selected experts of a layer are read in parallel by a pool of I/O
// threads, one positional read per contiguous range, so the SSD sees a full queue
// instead of one page fault at a time.
#pragma once

#include <sys/types.h>

#include <functional>
#include <memory>

#include "core/file_io.h"
#include "core/thread_pool.h"
#include "storage/storage_tier.h"

namespace mst {

// The read system call, replaceable so that the fault-injection tier can fail it.
using PreadSyscall = std::function<ssize_t(int fd, void *buf, size_t count, off_t offset)>;

class PreadTier : public StorageTier {
public:
    PreadTier(const std::vector<std::string> &paths, const StorageOptions &options, PreadSyscall syscall = {},
              const char *name = "pread");
    const char *name() const override { return name_; }
    void read_batch(std::span<const ReadRequest> requests) override;
    void hint(uint32_t file, uint64_t offset, uint64_t length, AccessHint hint) override;

private:
    const File &file_for(const ReadRequest &request) const;
    // Read all of `request`, retrying short reads and EINTR; throws naming the request.
    void read_fully(const ReadRequest &request) const;

    std::vector<File> files_;
    ThreadPool pool_;
    PreadSyscall syscall_;
    const char *name_;
    bool drop_after_read_;
};

}  // namespace mst
