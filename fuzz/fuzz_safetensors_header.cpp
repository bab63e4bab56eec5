// The safetensors JSON header: any bytes, parsed as the header of a file with room for
// every data offset the header may name (bounds are the parser's job to check).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "core/error.h"
#include "format/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const std::string_view header(reinterpret_cast<const char *>(data), size);
    const uint64_t data_start = 8 + size;
    try {
        const mst::SafetensorsHeader parsed = mst::parse_safetensors_header(header, data_start, data_start + 4096, "fuzz");
        for (const mst::TensorInfo &t : parsed.tensors)
            if (t.offset < data_start || t.offset + t.nbytes > data_start + 4096) __builtin_trap();  // a range outside
    } catch (const mst::Error &) {
    }
    return 0;
}
