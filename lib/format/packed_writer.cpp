#include "format/packed_writer.h"

#include <vector>

#include "core/error.h"
#include "core/file_io.h"

namespace mst {

PackedWriter::PackedWriter(const std::string &destination) : out_(destination) {
    // The header's place, zeroed: it is written last.
    const std::vector<uint8_t> zeros(packed::kAlignment, 0);
    out_.write(zeros.data(), zeros.size());
}

PackedWriter::~PackedWriter() {
    if (resident_hash_) XXH64_freeState(resident_hash_);
}

void PackedWriter::append(const void *data, size_t n) {
    out_.write(data, n);
    if (resident_hash_) XXH64_update(resident_hash_, data, n);
}

void PackedWriter::begin_section(PackedSection &section) {
    out_.pad_to(packed::kAlignment);
    section.offset = out_.position();
}

void PackedWriter::write_metadata(const std::map<std::string, std::string> &metadata) {
    begin_section(header_.metadata);
    const std::string bytes = encode_packed_metadata(metadata);
    out_.write(bytes.data(), bytes.size());
    header_.metadata.bytes = bytes.size();
    header_.metadata.xxh64 = XXH64(bytes.data(), bytes.size(), 0);
}

void PackedWriter::begin_resident() {
    begin_section(header_.resident);
    resident_hash_ = XXH64_createState();
    if (!resident_hash_) fail(MST_ERR_OUT_OF_MEMORY, "cannot allocate an xxh64 state");
    XXH64_reset(resident_hash_, 0);
}

uint64_t PackedWriter::begin_resident_tensor() {
    const uint64_t pad = (packed::kTensorAlignment - out_.position() % packed::kTensorAlignment) % packed::kTensorAlignment;
    static const uint8_t kZeros[packed::kTensorAlignment] = {};
    append(kZeros, size_t(pad));
    return out_.position();
}

uint64_t PackedWriter::add_resident(const void *data, size_t n) {
    const uint64_t offset = begin_resident_tensor();
    append(data, n);
    return offset;
}

void PackedWriter::end_resident() {
    header_.resident.bytes = out_.position() - header_.resident.offset;
    header_.resident.xxh64 = XXH64_digest(resident_hash_);
    XXH64_freeState(resident_hash_);
    resident_hash_ = nullptr;
}

void PackedWriter::begin_experts() { begin_section(header_.experts); }

ExpertBlob PackedWriter::add_blob(const void *stored, size_t stored_bytes, uint64_t raw_bytes, BlobCodec codec,
                                  uint64_t xxh64) {
    out_.pad_to(packed::kAlignment);
    ExpertBlob blob;
    blob.file = 0;
    blob.offset = out_.position();
    blob.stored_bytes = stored_bytes;
    blob.raw_bytes = raw_bytes;
    blob.codec = codec;
    blob.xxh64 = xxh64;
    out_.write(stored, stored_bytes);
    return blob;
}

void PackedWriter::end_experts() { header_.experts.bytes = out_.position() - header_.experts.offset; }

void PackedWriter::finish(const std::vector<TensorInfo> &tensors, const std::vector<std::vector<ExpertLayout>> &experts,
                          bool replace) {
    begin_section(header_.index);
    const std::string index = encode_packed_index(tensors, experts);
    out_.write(index.data(), index.size());
    header_.index.bytes = index.size();
    header_.index.xxh64 = XXH64(index.data(), index.size(), 0);
    out_.pad_to(packed::kAlignment);
    header_.file_size = out_.position();
    const std::string header = encode_packed_header(header_);
    out_.write_at(header.data(), header.size(), 0);
    // What the loader will check, checked now, before the file gets its name.
    read_packed_contents(File::open_read(out_.temp_path()));
    out_.commit(replace);
}

}  // namespace mst
