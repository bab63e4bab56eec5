// tokenizer.json: any bytes, loaded as a tokenizer; one that loads must then encode and
// decode without failing on text (its own vocabulary included).
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include "core/error.h"
#include "tokenizer/tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const std::string_view json(reinterpret_cast<const char *>(data), size);
    try {
        const auto tokenizer = mst::Tokenizer::from_strings(json, "", "fuzz");
        const std::vector<int32_t> ids = tokenizer->encode("Hello, wörld! 123 <|im_end|>\n\t  x");
        tokenizer->decode(ids);
        for (int32_t id = 0; id < std::min<int32_t>(tokenizer->vocab_size(), 64); ++id) tokenizer->token_bytes(id);
    } catch (const mst::Error &) {
    }
    return 0;
}
