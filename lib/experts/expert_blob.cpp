#include "experts/expert_blob.h"

#include <xxhash.h>
#include <zstd.h>

#include <fmt/format.h>

#include <exception>

#include "core/error.h"

namespace mst {
namespace {

uint64_t align_up(uint64_t n, uint64_t alignment) { return (n + alignment - 1) / alignment * alignment; }

// Below this many stored bytes a batch is checked on the calling thread.
constexpr uint64_t kParallelBytes = uint64_t(1) << 20;

std::string file_name(const BlobReadOptions &options, uint32_t file) {
    return file < options.file_names.size() ? options.file_names[file] : fmt::format("file {}", file);
}

// The blob's stored bytes in the tier's mapping, or nullptr for a tier that reads into
// buffers.
const void *map_blob(const std::shared_ptr<StorageTier> &storage, const ExpertBlob &blob, int layer, int expert) {
    try {
        return storage->map(blob.file, blob.offset, blob.stored_bytes);
    } catch (const Error &e) {
        fail(e.code(), "layer {} expert {}: {}", layer, expert, e.what());
    }
}

}  // namespace

uint64_t blob_buffer_bytes(const ExpertBlob &blob, uint64_t alignment) {
    return blob.codec == BlobCodec::None ? align_up(blob.raw_bytes, alignment) : blob.raw_bytes;
}

ExpertHandle prepare_blob_read(const ExpertLayout &layout, int layer, int expert,
                               const std::shared_ptr<StorageTier> &storage,
                               const std::shared_ptr<ExpertMemoryCounter> &memory,
                               const std::shared_ptr<HostExpertSlab> &slab, std::vector<ReadRequest> &reads,
                               std::vector<FileRange> &to_populate, std::vector<PendingBlob> &pending) {
    const ExpertBlob &blob = *layout.blob;
    if (blob.codec == BlobCodec::None && blob.stored_bytes > 0)
        if (const void *in_place = map_blob(storage, blob, layer, expert)) {
            PendingBlob p;
            p.layout = &layout;
            p.layer = layer;
            p.expert = expert;
            p.mapped = static_cast<const uint8_t *>(in_place);
            // The release callback holds the tier, so the mapping outlives every view into it.
            const FileRange range{blob.file, blob.offset, blob.stored_bytes};
            p.weights = std::make_shared<ExpertWeights>(ExpertWeights::Mapped{}, blob.stored_bytes,
                                                        [storage, range] { storage->release(range.file, range.offset, range.length); });
            to_populate.push_back(range);
            ExpertHandle handle = p.weights;
            pending.push_back(std::move(p));
            return handle;
        }
    const uint64_t alignment = storage->alignment();
    if (alignment == 0 || AlignedBuffer::kAlignment % alignment != 0 || blob.offset % alignment != 0)
        fail(MST_ERR_UNSUPPORTED, "layer {} expert {}: a blob at offset {} cannot be read with {}-byte alignment", layer,
             expert, blob.offset, alignment);
    const uint64_t read_bytes = align_up(blob.stored_bytes, alignment);
    PendingBlob p;
    p.layout = &layout;
    p.layer = layer;
    p.expert = expert;
    void *dst = nullptr;
    if (blob.codec == BlobCodec::None) {
        // Stored as is: read straight into the expert's own buffer.
        p.weights = make_read_weights(blob_buffer_bytes(blob, alignment), memory, slab);
        dst = p.weights->data();
    } else {
        p.weights = make_read_weights(blob_buffer_bytes(blob, alignment), memory, slab);
        p.staging = AlignedBuffer(size_t(read_bytes), "compressed expert blob");
        dst = p.staging.data();
    }
    if (read_bytes > 0)
        reads.push_back(ReadRequest{blob.file, blob.offset, read_bytes, dst, fmt::format("layer {} expert {}", layer, expert)});
    ExpertHandle handle = p.weights;
    pending.push_back(std::move(p));
    return handle;
}

namespace {

// Check and decode one blob; throws as finish_blob_reads documents.
void finish_one(PendingBlob &p, const BlobReadOptions &options) {
    const ExpertBlob &blob = *p.layout->blob;
    const uint8_t *stored = p.mapped                          ? p.mapped
                            : blob.codec == BlobCodec::None ? p.weights->data()
                                                            : p.staging.data();
    if (options.verify_checksums) {
        const uint64_t computed = XXH64(stored, size_t(blob.stored_bytes), 0);
        if (computed != blob.xxh64)
            fail(MST_ERR_CHECKSUM,
                 "layer {} expert {}: checksum mismatch in {} at offset {} ({} bytes): stored xxh64 {:016x}, "
                 "computed {:016x}",
                 p.layer, p.expert, file_name(options, blob.file), blob.offset, blob.stored_bytes, blob.xxh64,
                 computed);
    }
    if (blob.codec == BlobCodec::Zstd) {
        const size_t n = ZSTD_decompress(p.weights->data(), size_t(blob.raw_bytes), stored,
                                         size_t(blob.stored_bytes));
        if (ZSTD_isError(n) || n != blob.raw_bytes) {
            const std::string reason = ZSTD_isError(n) ? ZSTD_getErrorName(n) : fmt::format("got {} bytes", n);
            fail(MST_ERR_BAD_FORMAT, "layer {} expert {}: the zstd blob in {} at offset {} does not decode to {} "
                 "bytes: {}", p.layer, p.expert, file_name(options, blob.file), blob.offset, blob.raw_bytes, reason);
        }
        p.staging = AlignedBuffer();
    }
    const std::vector<ExpertMatrix> &parts = p.layout->parts;
    const uint8_t *raw = p.mapped ? p.mapped : p.weights->data();
    p.weights->parts.resize(parts.size());
    for (size_t i = 0; i < parts.size(); ++i)  // inside raw_bytes: checked by the index parser
        p.weights->parts[i] = WeightView{parts[i].dtype, raw + parts[i].offset, parts[i].rows, parts[i].cols};
    for (size_t i = 0; i < parts.size(); ++i) p.weights->parts[i].expert_key = make_expert_key(p.layer, p.expert, int64_t(i));
}

}  // namespace

void finish_blob_reads(std::vector<PendingBlob> &pending, const BlobReadOptions &options) {
    uint64_t bytes = 0;
    for (const PendingBlob &p : pending) bytes += p.layout->blob->stored_bytes;
    // Hashing and decoding run at memory speed on one core, which a fast SSD outruns:
    // a layer's experts are checked on all cores, the first failure (in request order)
    // reported.
    const int n = int(pending.size());
    std::vector<std::exception_ptr> errors(pending.size());
#pragma omp parallel for schedule(dynamic) if (n > 1 && bytes >= kParallelBytes)
    for (int i = 0; i < n; ++i) {
        try {
            finish_one(pending[size_t(i)], options);
        } catch (...) {
            errors[size_t(i)] = std::current_exception();
        }
    }
    for (const std::exception_ptr &e : errors)
        if (e) std::rethrow_exception(e);
}

}  // namespace mst
