// mst_tokenize / mst_detokenize / mst_token_text.
#include <algorithm>
#include <span>
#include <string>
#include <vector>

#include "api/guard.h"
#include "api/handles.h"

using namespace mst;
using namespace mst::api;

namespace {

// The model's output rows can outnumber the tokenizer's ids (a vocabulary padded to a
// round size); the model may generate any row, and those without a token decode to
// nothing. Ids outside the rows are an error naming them.
std::string decode_model_ids(const LoadedModel &m, std::span<const int32_t> ids) {
    const int64_t n_rows = int64_t(m.config.vocab_size);
    const int32_t n_tokens = m.tokenizer->vocab_size();
    std::vector<int32_t> known;
    known.reserve(ids.size());
    for (size_t i = 0; i < ids.size(); ++i) {
        if (ids[i] < 0 || ids[i] >= n_rows)
            fail(MST_ERR_INVALID_ARGUMENT, "token id {} at index {} is outside the model's vocabulary (0..{})", ids[i],
                 i, n_rows - 1);
        if (ids[i] < n_tokens) known.push_back(ids[i]);
    }
    return m.tokenizer->decode(known);
}

}  // namespace

extern "C" {

mst_status mst_tokenize(const mst_model *model, const char *text, size_t len, int32_t *out, size_t capacity,
                        size_t *n_out) {
    return guard([&] {
        require_arg(model, "model");
        require_arg(n_out, "n_out");
        require_span(text, len, "text", "len");
        require_span(out, capacity, "out", "capacity");
        const std::vector<int32_t> ids = model->impl->tokenizer->encode(std::string_view(text ? text : "", len));
        *n_out = ids.size();
        std::copy_n(ids.begin(), std::min(capacity, ids.size()), out);
        if (ids.size() > capacity)
            fail(MST_ERR_BUFFER_TOO_SMALL, "the text is {} tokens, but the buffer holds {}", ids.size(), capacity);
    });
}

mst_status mst_detokenize(const mst_model *model, const int32_t *tokens, size_t n, char *out, size_t capacity,
                          size_t *n_bytes) {
    return guard([&] {
        require_arg(model, "model");
        require_arg(n_bytes, "n_bytes");
        require_span(tokens, n, "tokens", "n");
        require_span(out, capacity, "out", "capacity");
        const std::string text = decode_model_ids(*model->impl, std::span<const int32_t>(tokens, n));
        write_text(text, out, capacity, n_bytes);
    });
}

const char *mst_token_text(const mst_model *model, int32_t token) {
    if (!model || token < 0 || token >= int32_t(model->impl->config.vocab_size)) return nullptr;
    if (token >= model->impl->tokenizer->vocab_size()) return "";  // a row without a token
    const char *text = nullptr;
    if (guard([&] { text = model->impl->tokenizer->token_text(token).c_str(); }) != MST_OK) return nullptr;
    return text;
}

}  // extern "C"
