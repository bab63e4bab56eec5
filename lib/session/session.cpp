#include "session/session.h"

#include <algorithm>
#include <chrono>

#include "core/error.h"

namespace mst {

Session::Session(LoadedModel &model, const SessionOptions &options)
    : model_(model), all_logits_(options.all_logits), experts_per_token_(model.experts_per_token), rng_(options.seed) {
    const int64_t model_max = model.config.max_position_embeddings > 0 ? model.config.max_position_embeddings : 4096;
    if (options.n_ctx < 0) fail(MST_ERR_INVALID_ARGUMENT, "n_ctx must not be negative, got {}", options.n_ctx);
    if (options.n_ctx > model_max)
        fail(MST_ERR_INVALID_ARGUMENT, "n_ctx {} exceeds the model's maximum of {} positions", options.n_ctx, model_max);
    n_ctx_ = options.n_ctx ? options.n_ctx : int32_t(std::min<int64_t>(model_max, 4096));
    if (options.n_batch < 0) fail(MST_ERR_INVALID_ARGUMENT, "n_batch must not be negative, got {}", options.n_batch);
    n_batch_ = options.n_batch ? options.n_batch : 512;
    state_ = model.model->create_state(n_ctx_);
}

void Session::set_experts_per_token(int32_t k) {
    const int32_t n_experts = int32_t(model_.config.n_experts);
    if (k < 0 || k > n_experts)
        fail(MST_ERR_INVALID_ARGUMENT, "experts_per_token {} is outside 0..{}", k, n_experts);
    experts_per_token_ = k ? k : model_.experts_per_token;
}

void Session::set_budget_policy(const BudgetPolicy &policy) {
    validate_budget_policy(policy);
    budget_ = policy;
}

void Session::check_eval(std::span<const int32_t> tokens) const {
    if (tokens.empty()) fail(MST_ERR_INVALID_ARGUMENT, "eval needs at least one token");
    for (size_t i = 0; i < tokens.size(); ++i)
        if (tokens[i] < 0 || tokens[i] >= n_vocab())
            fail(MST_ERR_INVALID_ARGUMENT, "token id {} at index {} is outside the vocabulary (0..{})", tokens[i], i,
                 n_vocab() - 1);
    if (history_.size() + tokens.size() > size_t(n_ctx_))
        fail(MST_ERR_CONTEXT_FULL, "{} tokens in context + {} new exceed n_ctx {}", history_.size(),
             tokens.size(), n_ctx_);
}

ForwardOptions Session::forward_options() {
    ForwardOptions fo;
    fo.experts_per_token = experts_per_token_;
    fo.all_logits = all_logits_;
    fo.budget = budget_;
    fo.budget_stats = &stats_.budget;
    return fo;
}

void Session::eval(std::span<const int32_t> tokens, EvalKind kind) {
    check_eval(tokens);
    const size_t V = size_t(n_vocab());
    const auto start = std::chrono::steady_clock::now();
    std::vector<float> new_logits = take_logits_buffer(all_logits_ ? tokens.size() * V : V);
    const ForwardOptions fo = forward_options();
    for (size_t first = 0; first < tokens.size(); first += size_t(n_batch_)) {
        const size_t n = std::min(size_t(n_batch_), tokens.size() - first);
        float *out = all_logits_ ? new_logits.data() + first * V : new_logits.data();
        model_.model->forward(*state_, int32_t(history_.size() + first), tokens.subspan(first, n), fo, out, stats_.io);
    }
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    commit(tokens, std::move(new_logits), seconds, kind);
}

std::vector<float> Session::take_logits_buffer(size_t n) {
    // The previous step's buffer, not a fresh one: a fresh 600 KB vector is zero-filled
    // and page-faulted on every decode step. The forward pass writes every element.
    std::vector<float> buffer = std::move(spare_logits_);
    spare_logits_.clear();
    buffer.resize(n);
    return buffer;
}

void Session::commit(std::span<const int32_t> tokens, std::vector<float> new_logits, double seconds, EvalKind kind) {
    history_.insert(history_.end(), tokens.begin(), tokens.end());
    n_past_.store(int32_t(history_.size()), std::memory_order_relaxed);
    spare_logits_ = std::move(logits_);
    logits_ = std::move(new_logits);
    n_logit_rows_ = all_logits_ ? tokens.size() : 1;
    const bool is_prompt = kind == EvalKind::Prompt || (kind == EvalKind::Auto && tokens.size() > 1);
    if (is_prompt) {
        stats_.n_prompt_tokens += tokens.size();
        stats_.prompt_seconds += seconds;
    } else {
        stats_.n_decode_tokens += 1;
        stats_.decode_seconds += seconds;
    }
}

void Session::reset() {
    history_.clear();
    n_past_.store(0, std::memory_order_relaxed);
    n_logit_rows_ = 0;
}

void Session::trim(int32_t n_keep) {
    const int32_t n = n_past();
    if (n_keep < 0 || n_keep > n)
        fail(MST_ERR_INVALID_ARGUMENT, "cannot keep {} tokens: the context holds {}", n_keep, n);
    if (n_keep == n) return;
    if (n_keep == 0) {
        reset();
        return;
    }
    if (!state_->rewindable())
        fail(MST_ERR_UNSUPPORTED,
             "{} keeps a recurrent (linear-attention) state, which cannot be rewound to {} of {} tokens; keep 0 (reset) "
             "or restore a saved state instead",
             model_.config.model_type, n_keep, n);
    history_.resize(size_t(n_keep));
    n_past_.store(n_keep, std::memory_order_relaxed);
    n_logit_rows_ = 0;
}

std::span<const float> Session::last_logits() const {
    if (n_logit_rows_ == 0) fail(MST_ERR_INVALID_ARGUMENT, "no logits yet: evaluate at least one token first");
    const size_t V = size_t(n_vocab());
    return std::span<const float>(logits_).subspan((n_logit_rows_ - 1) * V, V);
}

std::span<const float> Session::all_logits(size_t *n_rows) const {
    if (!all_logits_) fail(MST_ERR_INVALID_ARGUMENT, "session was created without all_logits");
    if (n_logit_rows_ == 0) fail(MST_ERR_INVALID_ARGUMENT, "no logits yet: evaluate at least one token first");
    *n_rows = n_logit_rows_;
    return logits_;
}

}  // namespace mst
