// A GGUF file (llama.cpp's model container, spec: ggml/docs/gguf.md): a header, typed
// metadata key/value pairs, and tensor infos whose data lies after them at an aligned
// offset. Only the part before the tensor data is read here; tensor bytes are read by
// offset by the callers, as for safetensors.
//
// Every field comes from an untrusted file: counts are bounded by the file's size,
// every string and tensor byte range is checked to lie inside it, and each error is an
// mst::Error naming the file and the key, tensor or offset involved.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "format/gguf_types.h"

namespace mst {

class File;

// One metadata value. Arrays keep their elements in the form that costs least memory
// per element, so that a large array (a 150k-token vocabulary) stays near its file size.
struct GgufValue {
    GgufValueType type = GgufValueType::UInt8;
    uint64_t bits = 0;   // a fixed-size scalar's little-endian bytes, zero-extended
    std::string string;  // a String
    // An Array: `count` elements of element_type, in one of the three vectors below.
    GgufValueType element_type = GgufValueType::UInt8;
    uint64_t count = 0;
    std::vector<uint8_t> fixed;        // fixed-size elements, as stored (little-endian)
    std::vector<std::string> strings;  // String elements
    std::vector<GgufValue> arrays;     // Array elements (nested arrays)

    // Element i of a fixed-size array as an integer / a double (bit pattern decoded by
    // element_type). i must be below count.
    int64_t int_at(uint64_t i) const;
    double float_at(uint64_t i) const;
};

struct GgufTensor {
    std::string name;
    uint32_t type = 0;          // ggml type number (gguf_types.h)
    std::vector<uint64_t> ne;   // dimensions, innermost (the row length) first, as ggml orders them
    uint64_t offset = 0;        // absolute byte offset in the file
    uint64_t nbytes = 0;
    uint32_t file = 0;          // which shard of a split model holds it (gguf_split.h); 0 otherwise
    // The dimensions outermost first, as safetensors and moestream order them.
    std::vector<int64_t> shape() const;
};

struct GgufFile {
    std::string path;  // for error messages
    uint32_t version = 0;
    uint32_t alignment = 32;  // general.alignment, or the default 32
    uint64_t data_offset = 0;  // absolute offset of the tensor data section
    std::vector<std::pair<std::string, GgufValue>> metadata;  // in file order
    std::vector<GgufTensor> tensors;                          // in file order

    const GgufValue *find(std::string_view key) const;
    const GgufTensor *find_tensor(std::string_view name) const;

    // Typed lookups. require_* throw MST_ERR_BAD_FORMAT naming the file and key when the
    // key is missing; every lookup throws it when the value has another type.
    // Integers: any integer type with a value in range (a negative one is an error for
    // the unsigned lookups). Floats: FLOAT32 or FLOAT64.
    std::optional<uint64_t> find_uint(std::string_view key) const;
    uint64_t require_uint(std::string_view key) const;
    std::optional<double> find_float(std::string_view key) const;
    double require_float(std::string_view key) const;
    std::optional<bool> find_bool(std::string_view key) const;
    std::optional<std::string> find_string(std::string_view key) const;
    std::string require_string(std::string_view key) const;
    // An ARRAY of STRING.
    const std::vector<std::string> &require_string_array(std::string_view key) const;
    // An ARRAY of an integer type, widened.
    std::vector<int64_t> find_int_array(std::string_view key) const;

    // Built by the reader: key -> index in metadata, name -> index in tensors.
    std::map<std::string, size_t, std::less<>> key_index;
    std::map<std::string, size_t, std::less<>> tensor_index;
};

// The four bytes every GGUF file starts with.
inline constexpr char kGgufMagic[4] = {'G', 'G', 'U', 'F'};
bool has_gguf_magic(std::span<const uint8_t> first_bytes);

// Deepest nesting of arrays in arrays accepted; real files nest at most once.
inline constexpr int kGgufMaxArrayDepth = 8;
// Most dimensions of a tensor (ggml's GGML_MAX_DIMS).
inline constexpr uint32_t kGgufMaxDims = 4;

// Parses the header, metadata and tensor infos of the file. Errors (all naming the
// file): MST_ERR_BAD_FORMAT for a bad magic, truncation, a count the file cannot hold,
// a string or tensor past the end, a misaligned offset, an unknown value type, a
// duplicated key or tensor, a bad general.alignment, overlapping tensors;
// MST_ERR_UNSUPPORTED for GGUF version 1, a big-endian file or an unknown ggml type.
GgufFile read_gguf(const File &file);
// The same over a file held in memory (tests, the fuzz target).
GgufFile parse_gguf(std::span<const uint8_t> bytes, const std::string &origin);

}  // namespace mst
