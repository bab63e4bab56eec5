// Writes GGUF files (llama.cpp's model format, version 3, ggml/docs/gguf.md) in two steps,
// so that a file of many GiB never sits in memory: metadata and tensor declarations
// first, from which header() encodes everything up to the data section; then the caller
// appends each tensor's bytes in the order declared, each padded to the alignment.
// Used by the GGUF export (convert/gguf_export.h) and by the tests' GGUF builder.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "format/gguf_types.h"

namespace mst {

// Little-endian encodings of GGUF's scalars and strings (uint64 length, then the bytes).
void gguf_put_u32(std::string &out, uint32_t v);
void gguf_put_u64(std::string &out, uint64_t v);
void gguf_put_str(std::string &out, std::string_view s);

class GgufWriter {
public:
    uint32_t version = 3;

    // Metadata, in the order added. add_raw takes an already encoded value of `type`.
    void add_raw(std::string_view key, GgufValueType type, std::string encoded_value);
    void add_u32(std::string_view key, uint32_t v);
    void add_i32(std::string_view key, int32_t v);
    void add_u64(std::string_view key, uint64_t v);
    void add_f32(std::string_view key, float v);
    void add_bool(std::string_view key, bool v);
    void add_string(std::string_view key, std::string_view v);
    void add_string_array(std::string_view key, const std::vector<std::string> &v);
    void add_i32_array(std::string_view key, const std::vector<int32_t> &v);
    void add_f32_array(std::string_view key, const std::vector<float> &v);
    void add_bool_array(std::string_view key, const std::vector<bool> &v);
    // Sets general.alignment (a UINT32) and pads the data to it.
    void set_alignment(uint32_t alignment);
    uint32_t alignment() const { return alignment_; }

    // Declares a tensor of ggml type `type` with dimensions `ne` (innermost first, as
    // ggml orders them) and returns its size in bytes (elements / block elements * block
    // bytes; the caller keeps rows whole blocks, or makes a broken file on purpose).
    // MST_ERR_INVALID_ARGUMENT for an unknown type.
    uint64_t add_tensor(std::string_view name, uint32_t type, const std::vector<uint64_t> &ne);

    // Header, metadata, tensor infos, then zeros up to the alignment: the data section
    // starts right after, with the tensors in the order declared, each padded.
    std::string header() const;
    // Zero bytes that follow a tensor of `bytes` bytes.
    uint64_t padding(uint64_t bytes) const { return (alignment_ - bytes % alignment_) % alignment_; }

private:
    struct TensorInfo {
        std::string name;
        uint32_t type;
        std::vector<uint64_t> ne;
        uint64_t bytes;
    };
    std::vector<std::string> kvs_;  // each key/value pair encoded
    std::vector<TensorInfo> tensors_;
    uint32_t alignment_ = 32;
};

}  // namespace mst
