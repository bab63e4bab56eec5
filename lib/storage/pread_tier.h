// The pread tier: the selected experts of a layer are read in parallel by a pool of I/O
// threads, one positional read per contiguous range, so the SSD sees a full queue
// instead of one page fault at a time. The direct tier is this tier over O_DIRECT files.
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
    size_t alignment() const override { return alignment_; }

protected:
    // Files opened with O_RDONLY | open_flags. With O_DIRECT the page-cache options and
    // hints do not apply (there is no page cache in the way) and the subclass sets
    // alignment_ once the files are open.
    PreadTier(const std::vector<std::string> &paths, const StorageOptions &options, int open_flags,
              const char *name);

    std::vector<File> files_;
    size_t alignment_ = 1;

private:
    const File &file_for(const ReadRequest &request) const;
    // Read all of `request`, retrying short reads and EINTR; throws naming the request.
    void read_fully(const ReadRequest &request) const;

    ThreadPool pool_;
    PreadSyscall syscall_;
    const char *name_;
    bool direct_;
    bool willneed_;
    bool drop_after_read_;
};

}  // namespace mst
