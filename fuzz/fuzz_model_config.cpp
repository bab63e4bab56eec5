// config.json: any bytes, parsed as a model config.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "core/error.h"
#include "format/model_config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    try {
        mst::parse_model_config(std::string_view(reinterpret_cast<const char *>(data), size), "fuzz");
    } catch (const mst::Error &) {
    }
    return 0;
}
