// Reading experts stored as packed-file blobs (ExpertLayout::blob): one request per
// expert, then, once the batch has landed, the xxHash64 check and zstd decoding that
// turn the stored bytes into the expert's parts.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "experts/expert_layout.h"
#include "experts/expert_weights.h"
#include "storage/storage_tier.h"

namespace mst {

struct BlobReadOptions {
    // Check each blob's xxHash64 when it is read (MST_ERR_CHECKSUM on a mismatch). Off
    // saves the hashing time (bench/README.md measures it) and trusts the disk.
    bool verify_checksums = true;
    // The storage tier's file paths, for error messages.
    std::vector<std::string> file_names;
};

// A blob read in flight: the weights it fills and, for a compressed blob, the buffer its
// stored bytes land in first; or, for an uncompressed blob in a tier that maps its files,
// the stored bytes in place in the mapping (nothing read or copied).
struct PendingBlob {
    std::shared_ptr<ExpertWeights> weights;
    AlignedBuffer staging;
    const uint8_t *mapped = nullptr;
    const ExpertLayout *layout = nullptr;
    int layer = 0;
    int expert = 0;
};

// Allocate the expert's buffer, append the one read of its blob (widened to the tier's
// `alignment`; blobs start on 4 KiB and the file ends on 4 KiB, so the widened read
// stays inside it) and remember what finish_blob_reads must do once it has landed.
// An uncompressed blob in a tier that maps its files (StorageTier::map) is used in place
// instead: no buffer, no read, no copy; its range joins `to_populate` (the caller
// populates it before finish_blob_reads hashes it) and the weights give the mapping back
// to the tier when the last user lets go. Its checksum is still verified, on the
// mapped bytes, before anything can use them.
ExpertHandle prepare_blob_read(const ExpertLayout &layout, int layer, int expert,
                               const std::shared_ptr<StorageTier> &storage,
                               const std::shared_ptr<ExpertMemoryCounter> &memory,
                               const std::shared_ptr<HostExpertSlab> &slab, std::vector<ReadRequest> &reads,
                               std::vector<FileRange> &to_populate, std::vector<PendingBlob> &pending);
// The buffer prepare_blob_read reads (or decompresses) a blob into, for a tier of `alignment`.
uint64_t blob_buffer_bytes(const ExpertBlob &blob, uint64_t alignment);

// Check and decode every pending blob and point its weights' parts into the decoded
// bytes. Throws MST_ERR_CHECKSUM naming the layer, expert, file and offset when a blob's
// xxHash64 differs, and MST_ERR_BAD_FORMAT when zstd cannot decode it to its raw size.
void finish_blob_reads(std::vector<PendingBlob> &pending, const BlobReadOptions &options);

}  // namespace mst
