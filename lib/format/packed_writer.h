// Writes a packed file section by section (see packed_format.h for the layout): the
// caller streams the metadata, then the resident tensors, then the expert blobs, and
// finish() appends the index, fills in the header and puts the file in place. Until
// then the file lives under a temporary name with a zeroed header, so an interrupted
// conversion leaves nothing that looks like a packed file.
#pragma once

#include <xxhash.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/output_file.h"
#include "format/packed_format.h"

namespace mst {

class PackedWriter {
public:
    explicit PackedWriter(const std::string &destination);
    ~PackedWriter();
    PackedWriter(const PackedWriter &) = delete;
    PackedWriter &operator=(const PackedWriter &) = delete;

    void write_metadata(const std::map<std::string, std::string> &metadata);

    // Resident tensors: each 64-byte aligned; returns its absolute offset.
    void begin_resident();
    uint64_t add_resident(const void *data, size_t n);
    // The same in pieces, for a tensor too large to hold at once: begin_resident_tensor
    // pads to the tensor alignment and returns the tensor's offset; append_resident
    // adds its bytes.
    uint64_t begin_resident_tensor();
    void append_resident(const void *data, size_t n) { append(data, n); }
    void end_resident();

    // Expert blobs: each 4 KiB aligned; returns the blob's descriptor (file 0).
    void begin_experts();
    ExpertBlob add_blob(const void *stored, size_t stored_bytes, uint64_t raw_bytes, BlobCodec codec, uint64_t xxh64);
    void end_experts();

    // Appends the index, writes the header, reads the header, metadata and index back
    // through the reader's checks, and renames the file to its destination (replacing
    // an existing one only with `replace`).
    void finish(const std::vector<TensorInfo> &tensors, const std::vector<std::vector<ExpertLayout>> &experts,
                bool replace);

    uint64_t bytes_written() const { return out_.position(); }
    const std::string &temp_path() const { return out_.temp_path(); }

private:
    // Appends, and feeds the resident hash while the resident section is open.
    void append(const void *data, size_t n);
    void begin_section(PackedSection &section);

    OutputFile out_;
    PackedHeader header_;
    XXH64_state_t *resident_hash_ = nullptr;  // non-null while the resident section is open
};

}  // namespace mst
