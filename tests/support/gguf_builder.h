// Test tool: writes GGUF files byte by byte from the specification (ggml/docs/gguf.md),
// independently of moestream's reader, so that the reader's tests and the fuzz seeds can
// make valid files and precise corruptions of them. Depends only on lib/format's type
// tables, so the fuzz seed writer can use it too.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "format/gguf_types.h"

namespace mst::test {

// Little-endian appends, for hand-made (and broken) headers.
void put_u32(std::string &out, uint32_t v);
void put_u64(std::string &out, uint64_t v);
void put_str(std::string &out, std::string_view s);  // uint64 length, then the bytes

class GgufBuilder {
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
    // Sets general.alignment (a UINT32) and pads the data to it.
    void set_alignment(uint32_t alignment);

    // A tensor of ggml type `type` with dimensions `ne` (innermost first, as ggml orders
    // them) and its bytes, which must be the size the type and dimensions make.
    void add_tensor(std::string_view name, uint32_t type, std::vector<uint64_t> ne, std::string bytes);

    // The whole file: header, metadata, tensor infos, padding, data (each tensor padded
    // to the alignment).
    std::string build() const;
    // build() written to path; throws std::runtime_error when it cannot be written.
    void write(const std::string &path) const;

private:
    struct Tensor {
        std::string name;
        uint32_t type;
        std::vector<uint64_t> ne;
        std::string bytes;
    };
    std::vector<std::string> kvs_;  // each key/value pair encoded
    std::vector<Tensor> tensors_;
    uint32_t alignment_ = 32;
};

}  // namespace mst::test
