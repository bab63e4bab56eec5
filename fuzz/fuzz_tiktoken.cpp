// A tiktoken checkpoint in Kimi's layout: the input is the rank file, or a
// tokenizer_config.json, a NUL byte and the rank file. One that loads must then encode and
// decode text (its special tokens included) without failing.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include "core/error.h"
#include "tokenizer/tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    std::string_view input(reinterpret_cast<const char *>(data), size);
    std::string_view config = R"({"added_tokens_decoder": {"0": {"content": "[BOS]"}}, "eos_token": "[EOS]"})";
    const size_t nul = input.find('\0');
    if (nul != std::string_view::npos) {
        config = input.substr(0, nul);
        input.remove_prefix(nul + 1);
    }
    try {
        const auto tokenizer = mst::Tokenizer::kimi_tiktoken_from_strings(input, config, "fuzz");
        const std::vector<int32_t> ids =
            tokenizer->encode("Hello, wörld! 中文 123 [BOS]<|reserved_token_300|>\n\t  x's \xFF\xC3");
        tokenizer->decode(ids);
        for (int32_t id = 0; id < std::min<int32_t>(tokenizer->vocab_size(), 64); ++id)
            if (tokenizer->token_id(tokenizer->token_text(id))) tokenizer->token_bytes(id);
    } catch (const mst::Error &) {
    }
    return 0;
}
