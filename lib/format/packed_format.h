// The packed streaming format (.mst): one file written once by `moestream convert` and
// read many times. docs/packed_format.md specifies every field; in short:
//
//   [0, 4096)        fixed header: magic, format version, file size, the sections'
//                    offsets, sizes and xxHash64s, and the header's own xxHash64
//   metadata         config.json, tokenizer.json, ... as named byte strings
//   resident         every non-expert tensor, 64-byte aligned, Hugging Face names
//   experts          one blob per (layer, expert): its parts back to back, 4 KiB aligned
//   index            the resident tensor table and the expert blob table
//
// All integers are little-endian. Sections start on 4 KiB boundaries and the file ends
// on one, so an expert blob can be read with O_DIRECT straight into an aligned buffer.
#pragma once

#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <vector>

#include "experts/expert_layout.h"
#include "format/safetensors.h"

namespace mst {

class File;

namespace packed {

// PNG-style: a non-ASCII first byte, then a name, then CR LF, ^Z, LF, which text-mode
// transfers mangle, so a damaged copy is recognised at once.
inline constexpr uint8_t kMagic[8] = {0x89, 'M', 'S', 'T', '\r', '\n', 0x1a, '\n'};
// Bumped on any change an older reader would misread; readers refuse other versions.
inline constexpr uint32_t kFormatVersion = 1;
inline constexpr uint64_t kHeaderBytes = 128;      // the fixed header's encoded size
inline constexpr uint64_t kAlignment = 4096;       // sections, expert blobs, file end
inline constexpr uint64_t kTensorAlignment = 64;   // resident tensors and blob parts
// Bounds on the sections read whole into memory at load.
inline constexpr uint64_t kMaxMetadataBytes = uint64_t(1) << 30;
inline constexpr uint64_t kMaxIndexBytes = uint64_t(1) << 30;

// Metadata keys the loader uses.
inline constexpr const char *kConfigKey = "config.json";
inline constexpr const char *kTokenizerKey = "tokenizer.json";
inline constexpr const char *kTokenizerConfigKey = "tokenizer_config.json";
inline constexpr const char *kConversionKey = "moestream.json";  // how the file was made (JSON)

}  // namespace packed

struct PackedSection {
    uint64_t offset = 0;
    uint64_t bytes = 0;
    uint64_t xxh64 = 0;  // of the section's bytes (unused for the expert section: each blob has its own)
};

struct PackedHeader {
    uint32_t version = packed::kFormatVersion;
    uint64_t file_size = 0;
    uint64_t flags = 0;  // none defined in version 1; must be 0
    PackedSection metadata, resident, index, experts;
};

struct PackedContents {
    PackedHeader header;
    std::map<std::string, std::string> metadata;
    std::vector<TensorInfo> tensors;                 // resident, sorted by name, file_index 0
    std::vector<std::vector<ExpertLayout>> experts;  // [layer][expert]; an empty layer has none
    // The metadata entry `key`, or nullptr.
    const std::string *find_metadata(const std::string &key) const;
};

// Encoding, for the writer. encode_packed_header computes the header's own checksum.
std::string encode_packed_header(const PackedHeader &header);
std::string encode_packed_metadata(const std::map<std::string, std::string> &metadata);
std::string encode_packed_index(const std::vector<TensorInfo> &tensors,
                                const std::vector<std::vector<ExpertLayout>> &experts);

// Whether `bytes` begins with the packed magic.
bool has_packed_magic(std::span<const uint8_t> bytes);

// Decoding. Every error is an mst::Error naming `path` and the field: MST_ERR_BAD_FORMAT
// for malformed or inconsistent data, a size that disagrees with the file (naming both
// sizes) or a section outside it; MST_ERR_UNSUPPORTED for another format version;
// MST_ERR_CHECKSUM when verify_checksum is set and the header's xxHash64 differs.
PackedHeader parse_packed_header(std::span<const uint8_t> bytes, uint64_t file_size, bool verify_checksum,
                                 const std::string &path);
std::map<std::string, std::string> parse_packed_metadata(std::span<const uint8_t> bytes, const std::string &path);
// Fills out.tensors and out.experts, checking every range against out.header's sections.
void parse_packed_index(std::span<const uint8_t> bytes, const std::string &path, PackedContents &out);

// A whole file held in memory: header, metadata and index, each checksum checked only
// when verify_checksums is set (the fuzzer turns it off to reach the parsers).
PackedContents parse_packed_image(std::span<const uint8_t> image, bool verify_checksums, const std::string &path);

// Reads and checks the header, metadata and index of an open packed file, verifying
// their xxHash64s (MST_ERR_CHECKSUM naming the file and section).
PackedContents read_packed_contents(const File &file);


}  // namespace mst
