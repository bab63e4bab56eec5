// Reading a packed file's header, metadata and index, from disk or from memory.
#include <xxhash.h>

#include <algorithm>
#include <memory>
#include <vector>

#include "core/error.h"
#include "core/file_io.h"
#include "format/packed_format.h"

namespace mst {
namespace {

void check_section_hash(std::span<const uint8_t> bytes, const PackedSection &s, const char *name,
                        const std::string &path) {
    const uint64_t computed = XXH64(bytes.data(), bytes.size(), 0);
    if (computed != s.xxh64)
        fail(MST_ERR_CHECKSUM, "{}: {} section checksum mismatch at offset {} ({} bytes): stored xxh64 {:016x}, "
             "computed {:016x}", path, name, s.offset, s.bytes, s.xxh64, computed);
}

std::span<const uint8_t> section_of(std::span<const uint8_t> image, const PackedSection &s) {
    return image.subspan(size_t(s.offset), size_t(s.bytes));  // in bounds: checked by parse_packed_header
}

}  // namespace

PackedContents parse_packed_image(std::span<const uint8_t> image, bool verify_checksums, const std::string &path) {
    if (image.size() < packed::kHeaderBytes)
        fail(MST_ERR_BAD_FORMAT, "{}: truncated: {} bytes is too short for the {}-byte header", path, image.size(),
             packed::kHeaderBytes);
    PackedContents c;
    c.header = parse_packed_header(image, image.size(), verify_checksums, path);
    const std::span<const uint8_t> metadata = section_of(image, c.header.metadata);
    const std::span<const uint8_t> index = section_of(image, c.header.index);
    if (verify_checksums) {
        check_section_hash(metadata, c.header.metadata, "metadata", path);
        check_section_hash(index, c.header.index, "index", path);
    }
    c.metadata = parse_packed_metadata(metadata, path);
    parse_packed_index(index, path, c);
    return c;
}

PackedContents read_packed_contents(const File &file) {
    const std::string &path = file.path();
    if (file.size() < packed::kHeaderBytes)
        fail(MST_ERR_BAD_FORMAT, "{}: truncated: {} bytes is too short for the {}-byte header", path, file.size(),
             packed::kHeaderBytes);
    std::vector<uint8_t> header_bytes(packed::kHeaderBytes);
    file.pread_exact(header_bytes.data(), header_bytes.size(), 0);
    PackedContents c;
    c.header = parse_packed_header(header_bytes, file.size(), true, path);
    const auto read_section = [&](const PackedSection &s, const char *name) {
        std::vector<uint8_t> bytes(size_t(s.bytes));
        file.pread_exact(bytes.data(), bytes.size(), s.offset);
        check_section_hash(bytes, s, name, path);
        return bytes;
    };
    const std::vector<uint8_t> metadata = read_section(c.header.metadata, "metadata");
    const std::vector<uint8_t> index = read_section(c.header.index, "index");
    c.metadata = parse_packed_metadata(metadata, path);
    parse_packed_index(index, path, c);
    return c;
}

}  // namespace mst
