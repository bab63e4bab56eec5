// mst_session_*: contexts, evaluation, logits, sampling, generation and statistics.
#include <algorithm>
#include <chrono>
#include <cstring>
#include <memory>
#include <span>
#include <vector>

#include "api/guard.h"
#include "api/handles.h"
#include "api/session_entry.h"
#include "core/file_io.h"
#include "core/log.h"
#include "core/output_file.h"
#include "session/generate.h"

using namespace mst;
using namespace mst::api;

namespace {

mst_session_params default_session_params() {
    mst_session_params p{};
    p.struct_size = sizeof(mst_session_params);
    p.n_ctx = 0;
    p.seed = 0x5eed;
    p.all_logits = 0;
    p.n_batch = 0;
    return p;
}

mst_sampler_params default_sampler_params() {
    const SamplerOptions d;
    mst_sampler_params p{};
    p.struct_size = sizeof(mst_sampler_params);
    p.temperature = d.temperature;
    p.top_k = d.top_k;
    p.top_p = d.top_p;
    p.min_p = d.min_p;
    p.repetition_penalty = d.repetition_penalty;
    p.repetition_last_n = d.repetition_last_n;
    return p;
}

mst_generate_params default_generate_params() {
    mst_generate_params p{};
    p.struct_size = sizeof(mst_generate_params);
    p.max_tokens = 256;
    p.sampler = default_sampler_params();
    p.stop = nullptr;
    p.n_stop = 0;
    p.ignore_eos = 0;
    p.batcher = nullptr;
    return p;
}

SamplerOptions to_sampler_options(const mst_sampler_params &given) {
    const mst_sampler_params p = read_params(&given, default_sampler_params(), "mst_sampler_params");
    SamplerOptions o;
    o.temperature = p.temperature;
    o.top_k = p.top_k;
    o.top_p = p.top_p;
    o.min_p = p.min_p;
    o.repetition_penalty = p.repetition_penalty;
    o.repetition_last_n = p.repetition_last_n;
    return o;
}

}  // namespace

extern "C" {

void mst_session_default_params(mst_session_params *params) {
    if (params) *params = default_session_params();
}
void mst_sampler_default_params(mst_sampler_params *params) {
    if (params) *params = default_sampler_params();
}
void mst_generate_default_params(mst_generate_params *params) {
    if (params) *params = default_generate_params();
}

mst_status mst_session_create(mst_model *model, const mst_session_params *params, mst_session **out) {
    return guard([&] {
        require_arg(out, "out");
        *out = nullptr;
        require_arg(model, "model");
        const mst_session_params p = read_params(params, default_session_params(), "mst_session_params");
        if (p.n_ctx > uint32_t(INT32_MAX) || p.n_batch > uint32_t(INT32_MAX))
            fail(MST_ERR_INVALID_ARGUMENT, "n_ctx / n_batch out of range");
        SessionOptions o;
        o.n_ctx = int32_t(p.n_ctx);
        o.seed = p.seed;
        o.all_logits = p.all_logits != 0;
        o.n_batch = int32_t(p.n_batch);
        auto session = std::make_unique<mst_session>();
        session->model = model->impl;
        session->impl = std::make_unique<Session>(*session->model, o);
        *out = session.release();
    });
}

void mst_session_free(mst_session *session) { delete session; }

mst_status mst_session_eval(mst_session *session, const int32_t *tokens, size_t n) {
    return guard([&] {
        require_arg(session, "session");
        require_arg(tokens, "tokens");
        const SessionEntry entry(*session, SessionAccess::Write);
        session->impl->eval(std::span<const int32_t>(tokens, n));
    });
}

mst_status mst_session_logits(mst_session *session, const float **logits, size_t *n_vocab) {
    return guard([&] {
        require_arg(session, "session");
        require_arg(logits, "logits");
        require_arg(n_vocab, "n_vocab");
        const SessionEntry entry(*session, SessionAccess::Read);
        const std::span<const float> row = session->impl->last_logits();
        *logits = row.data();
        *n_vocab = row.size();
    });
}

mst_status mst_session_all_logits(mst_session *session, const float **logits, size_t *n_rows, size_t *n_vocab) {
    return guard([&] {
        require_arg(session, "session");
        require_arg(logits, "logits");
        require_arg(n_rows, "n_rows");
        require_arg(n_vocab, "n_vocab");
        const SessionEntry entry(*session, SessionAccess::Read);
        const std::span<const float> all = session->impl->all_logits(n_rows);
        *logits = all.data();
        *n_vocab = size_t(session->impl->n_vocab());
    });
}

size_t mst_session_n_past(const mst_session *session) { return session ? size_t(session->impl->n_past()) : 0; }

void mst_session_reset(mst_session *session) {
    if (!session) return;
    const mst_status status = guard([&] {
        const SessionEntry entry(*session, SessionAccess::Write);
        session->impl->reset();
    });
    if (status != MST_OK) log(MST_LOG_WARN, "mst_session_reset did nothing: {}", mst_last_error());
}

mst_status mst_session_set_seed(mst_session *session, uint64_t seed) {
    return guard([&] {
        require_arg(session, "session");
        const SessionEntry entry(*session, SessionAccess::Write);
        session->impl->rng().seed(seed);
    });
}

mst_status mst_session_trim(mst_session *session, size_t n_keep) {
    return guard([&] {
        require_arg(session, "session");
        const SessionEntry entry(*session, SessionAccess::Write);
        if (n_keep > size_t(session->impl->n_past()))
            fail(MST_ERR_INVALID_ARGUMENT, "cannot keep {} tokens: the context holds {}", n_keep,
                 session->impl->n_past());
        session->impl->trim(int32_t(n_keep));
    });
}

mst_status mst_session_state_save(mst_session *session, void *out, size_t capacity, size_t *n_bytes) {
    return guard([&] {
        require_arg(session, "session");
        require_arg(n_bytes, "n_bytes");
        require_span(out, capacity, "out", "capacity");
        const SessionEntry entry(*session, SessionAccess::Read);
        const std::vector<uint8_t> state = session->impl->save_state();
        *n_bytes = state.size();
        if (capacity < state.size())
            fail(MST_ERR_BUFFER_TOO_SMALL, "the session state takes {} bytes; the buffer holds {}", state.size(),
                 capacity);
        std::memcpy(out, state.data(), state.size());
    });
}

mst_status mst_session_state_load(mst_session *session, const void *data, size_t n_bytes) {
    return guard([&] {
        require_arg(session, "session");
        require_arg(data, "data");
        const SessionEntry entry(*session, SessionAccess::Write);
        session->impl->restore_state(std::span<const uint8_t>(static_cast<const uint8_t *>(data), n_bytes));
    });
}

mst_status mst_session_state_save_file(mst_session *session, const char *path) {
    return guard([&] {
        require_arg(session, "session");
        require_arg(path, "path");
        const SessionEntry entry(*session, SessionAccess::Read);
        const std::vector<uint8_t> state = session->impl->save_state();
        OutputFile file(path);
        file.write(state.data(), state.size());
        file.commit(/*replace=*/true);
    });
}

mst_status mst_session_state_load_file(mst_session *session, const char *path) {
    return guard([&] {
        require_arg(session, "session");
        require_arg(path, "path");
        const SessionEntry entry(*session, SessionAccess::Write);
        // A state is the context's KV cache: bounded by what a file may reasonably hold.
        const std::string bytes = read_text_file(path, size_t(1) << 40);
        session->impl->restore_state(
            std::span<const uint8_t>(reinterpret_cast<const uint8_t *>(bytes.data()), bytes.size()));
    });
}

mst_status mst_sessions_eval_batch(mst_session *const *sessions, const int32_t *const *tokens, const size_t *n_tokens,
                                   size_t n_sessions) {
    return guard([&] {
        require_arg(sessions, "sessions");
        require_arg(tokens, "tokens");
        require_arg(n_tokens, "n_tokens");
        if (n_sessions == 0) fail(MST_ERR_INVALID_ARGUMENT, "n_sessions is 0: nothing to evaluate");
        std::vector<Session *> impls(n_sessions);
        std::vector<std::span<const int32_t>> lists(n_sessions);
        for (size_t i = 0; i < n_sessions; ++i) {
            if (!sessions[i]) fail(MST_ERR_INVALID_ARGUMENT, "sessions[{}] is NULL", i);
            if (!tokens[i] && n_tokens[i]) fail(MST_ERR_INVALID_ARGUMENT, "tokens[{}] is NULL but n_tokens[{}] is {}", i, i, n_tokens[i]);
            // Entering a session twice on this thread would read as BUSY: name the mistake.
            for (size_t j = 0; j < i; ++j)
                if (sessions[j] == sessions[i])
                    fail(MST_ERR_INVALID_ARGUMENT, "sessions[{}] is sessions[{}] again: a session once per batch", i, j);
            if (sessions[i]->model != sessions[0]->model)
                fail(MST_ERR_INVALID_ARGUMENT, "sessions[{}] belongs to another model than sessions[0]", i);
            impls[i] = sessions[i]->impl.get();
            lists[i] = std::span<const int32_t>(tokens[i], n_tokens[i]);
        }
        std::vector<std::unique_ptr<SessionEntry>> entries;
        for (size_t i = 0; i < n_sessions; ++i)
            entries.push_back(std::make_unique<SessionEntry>(*sessions[i], SessionAccess::Write));
        Session::eval_batch(impls, lists);
    });
}

void mst_expert_budget_default(mst_expert_budget *budget) {
    if (!budget) return;
    const BudgetPolicy d;
    *budget = mst_expert_budget{sizeof(mst_expert_budget), 0, d.min_weight, d.mass, d.cache_skip_below, d.substitute_min_ratio};
}

mst_status mst_session_set_expert_budget(mst_session *session, const mst_expert_budget *budget) {
    return guard([&] {
        require_arg(session, "session");
        require_arg(budget, "budget");
        mst_expert_budget defaults;
        mst_expert_budget_default(&defaults);
        const mst_expert_budget b = read_params(budget, defaults, "mst_expert_budget");
        BudgetPolicy policy;
        policy.min_weight = b.min_weight;
        policy.mass = b.mass;
        policy.cache_skip_below = b.cache_skip_below;
        policy.substitute_min_ratio = b.cache_substitute;
        validate_budget_policy(policy);
        const SessionEntry entry(*session, SessionAccess::Write);
        session->impl->set_experts_per_token(b.experts_per_token);
        session->impl->set_budget_policy(policy);
    });
}

mst_status mst_session_get_expert_budget(const mst_session *session, mst_expert_budget *budget) {
    return guard([&] {
        require_arg(session, "session");
        require_arg(budget, "budget");
        mst_expert_budget defaults;
        mst_expert_budget_default(&defaults);
        write_result(budget, defaults, "mst_expert_budget", [&](mst_expert_budget &out) {
            const SessionEntry entry(*session, SessionAccess::Read);
            const BudgetPolicy &p = session->impl->budget_policy();
            out.experts_per_token = session->impl->experts_per_token();
            out.min_weight = p.min_weight;
            out.mass = p.mass;
            out.cache_skip_below = p.cache_skip_below;
            out.cache_substitute = p.substitute_min_ratio;
        });
    });
}

mst_status mst_session_sample(mst_session *session, const mst_sampler_params *params, int32_t *token) {
    return guard([&] {
        require_arg(session, "session");
        require_arg(token, "token");
        const SamplerOptions o = params ? to_sampler_options(*params) : SamplerOptions{};
        const SessionEntry entry(*session, SessionAccess::Write);  // advances the random generator
        Session &s = *session->impl;
        *token = sample_token(s.last_logits(), s.history(), o, s.rng(), s.sampler_scratch());
    });
}

mst_status mst_generate(mst_session *session, const int32_t *prompt, size_t n_prompt, const mst_generate_params *params,
                        mst_token_callback callback, void *user_data, mst_stop_reason *reason) {
    if (reason) *reason = MST_STOP_NONE;
    return guard([&] {
        require_arg(session, "session");
        require_span(prompt, n_prompt, "prompt", "n_prompt");
        const mst_generate_params p = read_params(params, default_generate_params(), "mst_generate_params");
        require_span(p.stop, p.n_stop, "stop", "n_stop");
        GenerateOptions o;
        o.max_tokens = p.max_tokens;
        o.sampler = to_sampler_options(p.sampler);
        for (size_t i = 0; i < p.n_stop; ++i)
            if (p.stop[i]) o.stop.emplace_back(p.stop[i]);
        o.ignore_eos = p.ignore_eos != 0;
        if (p.batcher && p.batcher->model != session->model)
            fail(MST_ERR_INVALID_ARGUMENT, "the batcher serves another model than the session's");
        o.batcher = p.batcher ? p.batcher->impl.get() : nullptr;
        TokenSink sink;
        if (callback)
            sink = [&](int32_t token, std::string_view piece) {
                return callback(token, piece.data(), piece.size(), user_data) != 0;
            };
        const SessionEntry entry(*session, SessionAccess::Write);
        const mst_stop_reason why = generate(*session->impl, std::span<const int32_t>(prompt, n_prompt), o, sink);
        if (reason) *reason = why;
    });
}

void mst_batcher_default_params(mst_batcher_params *params) {
    if (params) *params = mst_batcher_params{sizeof(mst_batcher_params), 2000};
}

mst_status mst_batcher_create(mst_model *model, const mst_batcher_params *params, mst_batcher **out) {
    return guard([&] {
        require_arg(out, "out");
        *out = nullptr;
        require_arg(model, "model");
        mst_batcher_params defaults;
        mst_batcher_default_params(&defaults);
        const mst_batcher_params p = read_params(params, defaults, "mst_batcher_params");
        auto batcher = std::make_unique<mst_batcher>();
        batcher->model = model->impl;
        batcher->impl = std::make_unique<StepBatcher>(*batcher->model, std::chrono::microseconds(p.gather_wait_us));
        *out = batcher.release();
    });
}

void mst_batcher_free(mst_batcher *batcher) { delete batcher; }

mst_status mst_batcher_get_stats(const mst_batcher *batcher, mst_batcher_stats *stats) {
    return guard([&] {
        require_arg(batcher, "batcher");
        require_arg(stats, "stats");
        write_result(stats, "mst_batcher_stats", [&](mst_batcher_stats &out) {
            const StepBatcherStats s = batcher->impl->stats();
            out.steps = s.steps;
            out.sequences = s.sequences;
            out.tokens = s.tokens;
            out.max_sequences = s.max_sequences;
            std::copy(std::begin(s.steps_by_size), std::end(s.steps_by_size), out.steps_by_size);
        });
    });
}

mst_status mst_session_get_stats(const mst_session *session, mst_session_stats *stats) {
    return guard([&] {
        require_arg(session, "session");
        require_arg(stats, "stats");
        write_result(stats, "mst_session_stats", [&](mst_session_stats &out) {
            const SessionEntry entry(*session, SessionAccess::Read);
            const SessionStats &s = session->impl->stats();
            out.n_prompt_tokens = s.n_prompt_tokens;
            out.n_decode_tokens = s.n_decode_tokens;
            out.prompt_seconds = s.prompt_seconds;
            out.decode_seconds = s.decode_seconds;
            out.prompt_tokens_per_second = s.prompt_seconds > 0 ? double(s.n_prompt_tokens) / s.prompt_seconds : 0.0;
            out.decode_tokens_per_second = s.decode_seconds > 0 ? double(s.n_decode_tokens) / s.decode_seconds : 0.0;
            out.expert_bytes_read = s.io.bytes_read;
            out.expert_cache_hits = s.io.hits;
            out.expert_cache_misses = s.io.misses;
            out.expert_read_seconds = s.io.read_seconds;
            out.experts_chosen = s.budget.experts_chosen;
            out.experts_skipped = s.budget.experts_skipped;
            out.skipped_weight_mass = s.budget.skipped_mass;
            out.experts_substituted = s.budget.experts_substituted;
        });
    });
}

}  // extern "C"
