// The safetensors container: an 8-byte little-endian header length, a JSON header
// naming each tensor's dtype, shape and byte range, then the raw tensor bytes.
// Only the header is read here; tensor bytes are read by offset by the callers.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "core/dtype.h"

namespace mst {

class File;

struct TensorInfo {
    std::string name;
    DType dtype = DType::F32;
    std::vector<int64_t> shape;  // empty for a 0-d (scalar) tensor
    uint32_t file_index = 0;     // which file of a checkpoint holds it
    uint64_t offset = 0;         // absolute byte offset in its file
    uint64_t nbytes = 0;
    // Product of the dimensions (1 for a 0-d tensor). Validated not to overflow.
    int64_t numel() const;
};

// "[2, 3]" ("[]" for a 0-d tensor), the form every shape appears in error messages.
std::string shape_to_string(const std::vector<int64_t> &shape);

struct SafetensorsHeader {
    std::vector<TensorInfo> tensors;  // sorted by name; file_index 0
    std::map<std::string, std::string> metadata;  // the "__metadata__" entry
};

// Largest header moestream reads; real checkpoints stay far below it (a shard of a
// 1T-parameter model has a header of a few hundred KiB).
inline constexpr uint64_t kMaxSafetensorsHeaderBytes = uint64_t(100) << 20;

// Parses the JSON header (the bytes after the 8-byte length). data_start is
// 8 + header length; file_size bounds every tensor's byte range. Every error is an
// mst::Error naming path_for_errors and the tensor: MST_ERR_BAD_FORMAT for malformed
// JSON, entries, shapes or offsets; MST_ERR_UNSUPPORTED for a dtype moestream lacks.
SafetensorsHeader parse_safetensors_header(std::string_view header_json, uint64_t data_start, uint64_t file_size,
                                           const std::string &path_for_errors);

// Reads and parses the header of an open safetensors file.
SafetensorsHeader read_safetensors_header(const File &file);

}  // namespace mst
