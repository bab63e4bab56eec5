// The packed file's fixed header and its metadata section.
#include <xxhash.h>

#include <algorithm>
#include <array>
#include <cstring>

#include "core/error.h"
#include "format/byte_codec.h"
#include "format/packed_format.h"

namespace mst {
namespace {

// The header's own checksum covers every byte before it.
constexpr uint64_t kHeaderChecksumOffset = packed::kHeaderBytes - 8;
constexpr uint32_t kMaxMetadataKeyBytes = 4096;

void write_section(ByteWriter &w, const PackedSection &s, bool with_checksum) {
    w.u64(s.offset);
    w.u64(s.bytes);
    if (with_checksum) w.u64(s.xxh64);
}

PackedSection read_section(ByteReader &r, const char *name, bool with_checksum) {
    PackedSection s;
    s.offset = r.u64(name);
    s.bytes = r.u64(name);
    if (with_checksum) s.xxh64 = r.u64(name);
    return s;
}

// A section lies inside the file, after `floor` (the previous section's end), on a
// 4 KiB boundary.
void check_section(const PackedSection &s, const char *name, uint64_t floor, uint64_t file_size,
                   const std::string &path) {
    if (s.offset % packed::kAlignment != 0)
        fail(MST_ERR_BAD_FORMAT, "{}: the {} section starts at byte {}, which is not a multiple of {}", path, name,
             s.offset, packed::kAlignment);
    if (s.offset < floor)
        fail(MST_ERR_BAD_FORMAT, "{}: the {} section starts at byte {}, inside the section before it (which ends at {})",
             path, name, s.offset, floor);
    if (s.offset > file_size || s.bytes > file_size - s.offset)
        fail(MST_ERR_BAD_FORMAT, "{}: the {} section [{}, +{}) lies beyond the end of the file ({} bytes)", path, name,
             s.offset, s.bytes, file_size);
}

}  // namespace

bool has_packed_magic(std::span<const uint8_t> bytes) {
    return bytes.size() >= sizeof packed::kMagic && std::equal(std::begin(packed::kMagic), std::end(packed::kMagic), bytes.begin());
}

std::string encode_packed_header(const PackedHeader &h) {
    ByteWriter w;
    w.bytes(std::string_view(reinterpret_cast<const char *>(packed::kMagic), sizeof packed::kMagic));
    w.u32(h.version);
    w.u32(uint32_t(packed::kHeaderBytes));
    w.u64(h.file_size);
    w.u64(h.flags);
    write_section(w, h.metadata, true);
    write_section(w, h.resident, true);
    write_section(w, h.index, true);
    write_section(w, h.experts, false);
    if (w.str().size() != kHeaderChecksumOffset)
        fail(MST_ERR_INTERNAL, "packed header encodes to {} bytes before its checksum, expected {}", w.str().size(),
             kHeaderChecksumOffset);
    w.u64(XXH64(w.str().data(), w.str().size(), 0));
    return w.take();
}

PackedHeader parse_packed_header(std::span<const uint8_t> bytes, uint64_t file_size, bool verify_checksum,
                                 const std::string &path) {
    if (!has_packed_magic(bytes)) fail(MST_ERR_BAD_FORMAT, "{}: not a moestream packed file (wrong magic)", path);
    ByteReader r(bytes.first(std::min<size_t>(bytes.size(), packed::kHeaderBytes)), path + ": header");
    r.bytes(sizeof packed::kMagic, "magic");
    PackedHeader h;
    h.version = r.u32("format version");
    if (h.version != packed::kFormatVersion)
        fail(MST_ERR_UNSUPPORTED, "{}: packed format version {}; this build of moestream reads version {}", path,
             h.version, packed::kFormatVersion);
    const uint32_t header_bytes = r.u32("header size");
    if (header_bytes != packed::kHeaderBytes)
        fail(MST_ERR_BAD_FORMAT, "{}: header size is {} bytes; version {} headers have {}", path, header_bytes,
             h.version, packed::kHeaderBytes);
    h.file_size = r.u64("file size");
    h.flags = r.u64("flags");
    h.metadata = read_section(r, "metadata section", true);
    h.resident = read_section(r, "resident section", true);
    h.index = read_section(r, "index section", true);
    h.experts = read_section(r, "expert section", false);
    const uint64_t stored_checksum = r.u64("header checksum");
    if (verify_checksum) {
        const uint64_t computed = XXH64(bytes.data(), kHeaderChecksumOffset, 0);
        if (computed != stored_checksum)
            fail(MST_ERR_CHECKSUM, "{}: header checksum mismatch (stored xxh64 {:016x}, computed {:016x})", path,
                 stored_checksum, computed);
    }
    if (file_size < h.file_size)
        fail(MST_ERR_BAD_FORMAT, "{}: truncated: the header says the file has {} bytes, but it has {}", path,
             h.file_size, file_size);
    if (file_size > h.file_size)
        fail(MST_ERR_BAD_FORMAT, "{}: the header says the file has {} bytes, but it has {} (bytes appended?)", path,
             h.file_size, file_size);
    if (h.file_size % packed::kAlignment != 0)
        fail(MST_ERR_BAD_FORMAT, "{}: the file size {} is not a multiple of {}", path, h.file_size, packed::kAlignment);
    if (h.flags != 0) fail(MST_ERR_BAD_FORMAT, "{}: header flags {:#x} are not defined in version 1", path, h.flags);
    // The sections in file order; the index comes last because the writer knows the
    // blobs' compressed sizes only after writing them.
    check_section(h.metadata, "metadata", packed::kAlignment, h.file_size, path);
    check_section(h.resident, "resident", h.metadata.offset + h.metadata.bytes, h.file_size, path);
    check_section(h.experts, "expert", h.resident.offset + h.resident.bytes, h.file_size, path);
    check_section(h.index, "index", h.experts.offset + h.experts.bytes, h.file_size, path);
    if (h.metadata.bytes > packed::kMaxMetadataBytes)
        fail(MST_ERR_BAD_FORMAT, "{}: the metadata section has {} bytes, over the {}-byte limit", path,
             h.metadata.bytes, packed::kMaxMetadataBytes);
    if (h.index.bytes > packed::kMaxIndexBytes)
        fail(MST_ERR_BAD_FORMAT, "{}: the index section has {} bytes, over the {}-byte limit", path, h.index.bytes,
             packed::kMaxIndexBytes);
    return h;
}

std::string encode_packed_metadata(const std::map<std::string, std::string> &metadata) {
    ByteWriter w;
    w.u32(uint32_t(metadata.size()));
    for (const auto &[key, value] : metadata) {
        w.u32(uint32_t(key.size()));
        w.bytes(key);
        w.u64(value.size());
        w.bytes(value);
    }
    return w.take();
}

std::map<std::string, std::string> parse_packed_metadata(std::span<const uint8_t> bytes, const std::string &path) {
    ByteReader r(bytes, path + ": metadata");
    const uint32_t n = r.u32("entry count");
    std::map<std::string, std::string> metadata;
    for (uint32_t i = 0; i < n; ++i) {
        const uint32_t key_len = r.u32("key length");
        if (key_len == 0 || key_len > kMaxMetadataKeyBytes)
            r.fail_at(fmt::format("entry {} has a key of {} bytes (1..{} allowed)", i, key_len, kMaxMetadataKeyBytes));
        std::string key(r.bytes(key_len, "key"));
        const uint64_t value_len = r.u64("value length");
        std::string value(r.bytes(value_len, "value"));
        if (!metadata.emplace(std::move(key), std::move(value)).second)
            r.fail_at(fmt::format("entry {} repeats a key", i));
    }
    if (r.remaining() != 0) r.fail_at(fmt::format("{} bytes follow the last entry", r.remaining()));
    return metadata;
}

const std::string *PackedContents::find_metadata(const std::string &key) const {
    const auto it = metadata.find(key);
    return it == metadata.end() ? nullptr : &it->second;
}

}  // namespace mst
