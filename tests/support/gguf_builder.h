// Test tool: builds whole GGUF files in memory on top of the library's GGUF writer
// (format/gguf_writer.h, written from the specification, ggml/docs/gguf.md, apart from
// moestream's reader), so that the reader's tests and the fuzz seeds can make valid files
// and precise corruptions of them. Depends only on lib/format, so the fuzz seed writer
// can use it too.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "format/gguf_writer.h"

namespace mst::test {

// Little-endian appends, for hand-made (and broken) headers.
inline void put_u32(std::string &out, uint32_t v) { gguf_put_u32(out, v); }
inline void put_u64(std::string &out, uint64_t v) { gguf_put_u64(out, v); }
inline void put_str(std::string &out, std::string_view s) { gguf_put_str(out, s); }

class GgufBuilder : public GgufWriter {
public:
    // A tensor of ggml type `type` with dimensions `ne` (innermost first, as ggml orders
    // them) and its bytes, which must be the size the type and dimensions make
    // (std::invalid_argument otherwise).
    void add_tensor(std::string_view name, uint32_t type, std::vector<uint64_t> ne, std::string bytes);

    // The whole file: header, metadata, tensor infos, padding, data (each tensor padded
    // to the alignment).
    std::string build() const;
    // build() written to path; throws std::runtime_error when it cannot be written.
    void write(const std::string &path) const;

private:
    std::vector<std::string> data_;  // each tensor's bytes, in order
};

}  // namespace mst::test
