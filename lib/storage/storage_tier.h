// Storage tiers: how expert bytes get from a file into memory. A tier is a small
// plug-in (open, read a batch, hint, release, close), like a SQLite VFS, so that the
// expert store never knows which system calls fetch its bytes and tests can inject faults.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
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
    // Trailing bytes of `length` that were added only to reach the tier's alignment: they
    // may lie past the end of the file, and a read that meets the end inside them is
    // complete (their content in `dst` is then unspecified).
    uint64_t padding = 0;
};

enum class AccessHint { Random, WillNeed, DontNeed };

// A byte range of one of a tier's files.
struct FileRange {
    uint32_t file = 0;
    uint64_t offset = 0;
    uint64_t length = 0;
};

class StorageTier {
public:
    virtual ~StorageTier() = default;
    virtual const char *name() const = 0;
    // Read every request completely. On failure throws mst::Error (MST_ERR_IO, or
    // MST_ERR_BAD_FORMAT for a read past the end of the file) naming the file, offset,
    // length and request; requests that did not fail may or may not have been filled.
    // Safe to call from several threads at once.
    virtual void read_batch(std::span<const ReadRequest> requests) = 0;
    // Advise the OS about a coming or finished access; a tier may ignore it.
    virtual void hint(uint32_t file, uint64_t offset, uint64_t length, AccessHint hint) = 0;

    // The alignment that read_batch needs of offsets, lengths and destinations (1 for
    // buffered tiers, the direct-I/O alignment for O_DIRECT). Callers widen their reads.
    virtual size_t alignment() const { return 1; }
    // Tiers that map their files return the address of [offset, offset + length) of
    // `file`, valid for the tier's life, and the data is used in place; others nullptr.
    // A mapping tier throws MST_ERR_BAD_FORMAT for a range past the end of the file.
    virtual const void *map(uint32_t file, uint64_t offset, uint64_t length) {
        (void)file, (void)offset, (void)length;
        return nullptr;
    }
    // Bring the mapped [offset, offset + length) of `file` into memory, returning once it
    // is there (the store calls it on its I/O threads, so the compute that follows does
    // not fault); tiers that do not map have nothing to do, and a mapping tier may decline
    // (mmap with storage_willneed off: plain page faults).
    virtual void populate(uint32_t file, uint64_t offset, uint64_t length) { (void)file, (void)offset, (void)length; }
    // Nobody holds [offset, offset + length) of `file` any more (the expert cache let
    // go of a mapped expert): a mapping tier lets the OS take those pages back. Buffered
    // tiers have nothing to give back (drop_after_read already did, if asked).
    virtual void release(uint32_t file, uint64_t offset, uint64_t length) { (void)file, (void)offset, (void)length; }
};

struct StorageOptions {
    std::string tier = "auto";       // "auto" | "mmap" | "pread" | "direct" | "uring" (available_storage_tiers())
    int n_io_threads = 4;            // pread, direct: I/O threads (reads in flight); mmap: threads copying
                                     // in read_batch
    int queue_depth = 64;            // uring: submission queue entries, the most reads in flight
    bool direct_io = false;          // uring: open the files with O_DIRECT (pread + direct_io = "direct")
    bool fadvise_random = true;      // buffered tiers: POSIX_FADV_RANDOM at open (no read-ahead);
                                     // mmap: MADV_RANDOM (no fault-around read-ahead)
    // mmap: MADV_WILLNEED on each expert when it is mapped, so its pages are read ahead of
    // the faults that use them; pread: POSIX_FADV_WILLNEED on every read of a batch before
    // its threads start. Unset: the tier's default, on for mmap (20x faster cold) and off
    // for pread (no gain on the benchmark device; bench/README.md).
    std::optional<bool> willneed;
    bool drop_after_read = false;    // buffered tiers: POSIX_FADV_DONTNEED after each read, so the
                                     // expert cache is the only cache (measures it honestly); mmap:
                                     // also drop released experts from the page cache
};

// The tier names this build and machine offer ("uring" only where io_uring works).
std::vector<std::string> available_storage_tiers();

// Whether this build has the uring tier (liburing was found when it was configured).
bool uring_tier_built();

// Whether the uring tier can run: built (liburing found at configure time) and io_uring
// working here (kernel >= 5.6 with IORING_OP_READ, not disabled by sysctl or a seccomp
// filter). Probed once per process; `why` gets the reason when not.
bool io_uring_available(std::string *why = nullptr);

// Open `paths` (indexed by ReadRequest::file) with the named tier. Throws
// MST_ERR_INVALID_ARGUMENT for an unknown tier (listing the known ones) or a bad option,
// MST_ERR_UNSUPPORTED for a tier this machine or file system cannot run (io_uring
// disabled, O_DIRECT refused) and MST_ERR_IO for a file that cannot be opened.
std::unique_ptr<StorageTier> open_storage(const std::vector<std::string> &paths, const StorageOptions &options);

}  // namespace mst
