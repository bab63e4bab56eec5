// Storage tiers: how expert bytes get from a file into memory. A tier is a small
// plug-in (open, read a batch, hint, close), like a SQLite VFS, so that the expert store
// never knows which system calls fetch its bytes and tests can inject faults.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace mst {

// One read: `length` bytes at `offset` of file `file` (an index into the tier's files)
// into `dst`. `what` names the data for error messages (e.g. "layer 3 expert 17").
struct ReadRequest {
    uint32_t file = 0;
    uint64_t offset = 0;
    uint64_t length = 0;
    void *dst = nullptr;
    std::string what;
};

enum class AccessHint { Random, WillNeed, DontNeed };

class StorageTier {
public:
    virtual ~StorageTier() = default;
    virtual const char *name() const = 0;
    // Read every request completely. On failure throws mst::Error (MST_ERR_IO, or
    // MST_ERR_BAD_FORMAT for a read past the end of the file) naming the file, offset,
    // length and request; requests that did not fail may or may not have been filled.
    virtual void read_batch(std::span<const ReadRequest> requests) = 0;
    // Advise the OS about a coming or finished access; a tier may ignore it.
    virtual void hint(uint32_t file, uint64_t offset, uint64_t length, AccessHint hint) = 0;

    // The alignment that read_batch needs of offsets, lengths and destinations (1 for
    // buffered tiers, the logical block size for O_DIRECT). Callers widen their reads.
    virtual size_t alignment() const { return 1; }
    // Tiers that map their files return the address of [offset, offset + length) of
    // `file`, valid for the tier's life, and the data is used in place; others nullptr.
    virtual const void *map(uint32_t file, uint64_t offset, uint64_t length) { return nullptr; }
};

struct StorageOptions {
    std::string tier = "auto";       // "auto" | "pread" | ... (available_storage_tiers())
    int n_io_threads = 4;            // parallel reads in flight
    bool fadvise_random = true;      // buffered tiers: POSIX_FADV_RANDOM at open (no read-ahead)
    bool drop_after_read = false;    // buffered tiers: POSIX_FADV_DONTNEED after each read, so
                                     // the expert cache is the only cache (measures it honestly)
};

// The tier names this build offers.
std::vector<std::string> available_storage_tiers();

// Open `paths` (indexed by ReadRequest::file) with the named tier. Throws
// MST_ERR_INVALID_ARGUMENT for an unknown tier (listing the known ones) and MST_ERR_IO
// for a file that cannot be opened.
std::unique_ptr<StorageTier> open_storage(const std::vector<std::string> &paths, const StorageOptions &options);

}  // namespace mst
