// The pread tier: the selected experts of a layer are read in parallel by a pool of I/O
// threads, one positional read per contiguous range, so the SSD sees a full queue
// instead of one page fault at a time.
#pragma once

#include <memory>

#include "core/file_io.h"
#include "core/thread_pool.h"
#include "storage/storage_tier.h"

namespace mst {

class PreadTier final : public StorageTier {
public:
    PreadTier(const std::vector<std::string> &paths, int n_io_threads);
    const char *name() const override { return "pread"; }
    void read_batch(std::span<const ReadRequest> requests) override;
    void hint(uint32_t file, uint64_t offset, uint64_t length, AccessHint hint) override;

private:
    const File &file_for(const ReadRequest &request) const;

    std::vector<File> files_;
    ThreadPool pool_;
};

}  // namespace mst
