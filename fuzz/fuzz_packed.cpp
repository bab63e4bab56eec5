// A packed file held in memory: header, metadata and index parsed with checksums off, so
// that mutations reach the parsers instead of stopping at the first checksum. Whatever
// parses must describe ranges inside the image.
#include <cstddef>
#include <cstdint>
#include <span>

#include "core/error.h"
#include "format/packed_format.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    try {
        const mst::PackedContents c = mst::parse_packed_image(std::span<const uint8_t>(data, size), false, "fuzz");
        for (const mst::TensorInfo &t : c.tensors)
            if (t.offset > size || t.nbytes > size - t.offset) __builtin_trap();
        for (const auto &layer : c.experts)
            for (const mst::ExpertLayout &e : layer) {
                if (e.blob->offset > size || e.blob->stored_bytes > size - e.blob->offset) __builtin_trap();
                for (const mst::ExpertMatrix &m : e.parts)
                    if (m.offset + m.nbytes() > e.blob->raw_bytes) __builtin_trap();
            }
    } catch (const mst::Error &) {
    }
    return 0;
}
