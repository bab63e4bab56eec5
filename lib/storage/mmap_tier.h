// The mmap tier: each file is mapped once, read-only, and experts are used in place:
// the expert store builds its weight views straight into the mapping, so no expert
// buffer is allocated and no byte is copied. Pages arrive by page faults, which the
// kernel serves one miss at a time; madvise hints make up part of that (WILLNEED reads
// an expert's pages ahead of the faults and POPULATE_READ waits for them on the store's
// I/O thread, RANDOM stops fault read-ahead from pulling in the neighbouring experts,
// COLD and DONTNEED give released experts back).
//
// A file truncated while it is mapped makes the next touch of a lost page raise SIGBUS;
// that cannot be turned into an error. So each expert's range is checked against the
// file's size at the moment it is mapped (and before a copy out of the mapping): a file
// truncated before an evaluation fails that evaluation with an error naming the expert,
// as the reading tiers do; only a truncation during the evaluation itself, between that
// check and the compute, still raises SIGBUS. "auto" maps only when the page cache already
// holds the files (storage/auto_tier.h), never to read from the device.
#pragma once

#include "core/file_io.h"
#include "core/thread_pool.h"
#include "storage/storage_tier.h"

namespace mst {

class MmapTier : public StorageTier {
public:
    MmapTier(const std::vector<std::string> &paths, const StorageOptions &options);
    ~MmapTier() override;
    MmapTier(const MmapTier &) = delete;
    MmapTier &operator=(const MmapTier &) = delete;

    const char *name() const override { return "mmap"; }
    // Copies out of the mapping (for callers that want their own buffer), the requests
    // spread over the tier's threads so that their page faults overlap.
    void read_batch(std::span<const ReadRequest> requests) override;
    void hint(uint32_t file, uint64_t offset, uint64_t length, AccessHint hint) override;
    const void *map(uint32_t file, uint64_t offset, uint64_t length) override;
    // MADV_POPULATE_READ (touching each page on kernels before 5.14); only with willneed.
    void populate(uint32_t file, uint64_t offset, uint64_t length) override;
    void release(uint32_t file, uint64_t offset, uint64_t length) override;

private:
    struct Mapping {
        File file;
        const uint8_t *base = nullptr;  // nullptr for an empty file (nothing to map)
        uint64_t size = 0;
    };
    // The mapping of `file` after checking that [offset, offset + length) lies inside it.
    const Mapping &checked(uint32_t file, uint64_t offset, uint64_t length, const std::string &what) const;
    // Throws MST_ERR_BAD_FORMAT ("truncated") when the file is now shorter than
    // offset + length: one fstat, so that a file cut after it was mapped is an error, not a
    // SIGBUS on the first touch of a lost page.
    void check_not_truncated(const Mapping &m, uint64_t offset, uint64_t length, const std::string &what) const;
    // madvise on the pages of a range: rounded outward for advice that brings pages in,
    // inward for advice that drops them (a page shared with a neighbour stays). Whether
    // the kernel took it (when not, errno says why).
    bool advise(const Mapping &m, uint64_t offset, uint64_t length, int advice) const;

    std::vector<Mapping> maps_;
    ThreadPool pool_;
    bool willneed_;
    bool drop_after_release_;
};

}  // namespace mst
