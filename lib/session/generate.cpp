#include "session/generate.h"

#include "core/error.h"
#include "session/text_stream.h"

namespace mst {

mst_stop_reason generate(Session &session, std::span<const int32_t> prompt, const GenerateOptions &options,
                         const TokenSink &sink) {
    if (options.max_tokens < 0) fail(MST_ERR_INVALID_ARGUMENT, "max_tokens must not be negative, got {}", options.max_tokens);
    validate_sampler_options(options.sampler);
    if (options.batcher && &options.batcher->model() != &session.model())
        fail(MST_ERR_INVALID_ARGUMENT, "the batcher serves another model than the session's");
    const StepBatcherMembership member(options.batcher);
    const auto eval = [&](std::span<const int32_t> tokens, EvalKind kind) {
        if (options.batcher) options.batcher->eval(session, tokens, kind);
        else session.eval(tokens, kind);
    };
    if (!prompt.empty()) eval(prompt, EvalKind::Prompt);
    if (session.n_past() == 0) fail(MST_ERR_INVALID_ARGUMENT, "generate needs a prompt or an existing context");

    const Tokenizer &tokenizer = *session.model().tokenizer;
    TextStream text(options.stop);
    for (int32_t produced = 0; produced < options.max_tokens; ++produced) {
        // Room first: every token shown to the caller is evaluated into the context, so a
        // continued conversation sees exactly what was generated.
        if (session.n_past() >= session.n_ctx()) return MST_STOP_CONTEXT_FULL;
        const int32_t token = sample_token(session.last_logits(), session.history(), options.sampler, session.rng(),
                                           session.sampler_scratch());
        const bool eos = !options.ignore_eos && session.model().is_eos(token);
        // Rows past the tokenizer's ids (a padded vocabulary) have no text.
        std::string piece = !eos && token < tokenizer.vocab_size() ? text.push(tokenizer.token_bytes(token)) : "";
        // The last token carries whatever text is still held back, so none is lost and no
        // callback needs an id that is not a token.
        const bool last = eos || produced + 1 == options.max_tokens || session.n_past() + 1 >= session.n_ctx();
        if (last) piece += text.flush();
        const bool stop_string = text.stopped();
        const bool stop_asked = sink && sink(token, piece);
        const int32_t one[1] = {token};
        eval(one, EvalKind::Decode);
        if (eos) return MST_STOP_EOS;
        if (stop_string) return MST_STOP_STRING;
        if (stop_asked) return MST_STOP_CALLBACK;
    }
    return MST_STOP_MAX_TOKENS;
}

}  // namespace mst
