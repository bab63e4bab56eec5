#include "session/generate.h"

#include "core/error.h"
#include "session/text_stream.h"

namespace mst {

mst_stop_reason generate(Session &session, std::span<const int32_t> prompt, const GenerateOptions &options,
                         const TokenSink &sink) {
    if (options.max_tokens < 0) fail(MST_ERR_INVALID_ARGUMENT, "max_tokens must not be negative, got {}", options.max_tokens);
    validate_sampler_options(options.sampler);
    if (!prompt.empty()) session.eval(prompt, EvalKind::Prompt);
    if (session.n_past() == 0) fail(MST_ERR_INVALID_ARGUMENT, "generate needs a prompt or an existing context");

    const Tokenizer &tokenizer = *session.model().tokenizer;
    const int32_t eos = tokenizer.eos_id();
    TextStream text(options.stop);
    for (int32_t produced = 0;; ++produced) {
        if (produced == options.max_tokens) {
            const std::string rest = text.flush();
            if (!rest.empty() && sink) sink(-1, rest);
            return MST_STOP_MAX_TOKENS;
        }
        const int32_t token = sample_token(session.last_logits(), session.history(), options.sampler, session.rng());
        if (token == eos && !options.ignore_eos) {
            const std::string rest = text.flush();
            if (!rest.empty() && sink) sink(-1, rest);
            return MST_STOP_EOS;
        }
        const std::string piece = token < tokenizer.vocab_size() ? text.push(tokenizer.token_bytes(token)) : std::string();
        if (text.stopped()) {
            if (!piece.empty() && sink) sink(token, piece);
            return MST_STOP_STRING;
        }
        if (sink && sink(token, piece)) return MST_STOP_CALLBACK;
        if (session.n_past() >= session.n_ctx()) return MST_STOP_CONTEXT_FULL;
        const int32_t one[1] = {token};
        session.eval(one, EvalKind::Decode);
    }
}

}  // namespace mst
