// A session: one conversation's context (KV cache) over a shared model, its logits,
// random generator and statistics. Not thread-safe; sessions of a model may run on
// different threads (the expert cache they share is thread-safe).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <random>
#include <span>
#include <vector>

#include "experts/expert_store.h"
#include "model/loaded_model.h"
#include "session/sampler.h"

namespace mst {

struct SessionOptions {
    int32_t n_ctx = 0;  // 0 = min(model maximum, 4096)
    uint64_t seed = 0;
    bool all_logits = false;
    int32_t n_batch = 512;
};

// How an evaluation counts in the statistics: a prompt (prefill) or one decode step.
// Auto counts a batch of more than one token as prompt.
enum class EvalKind { Auto, Prompt, Decode };

struct SessionStats {
    uint64_t n_prompt_tokens = 0, n_decode_tokens = 0;
    double prompt_seconds = 0.0, decode_seconds = 0.0;
    ExpertIoStats io;
    BudgetStats budget;
};

class Session {
public:
    Session(LoadedModel &model, const SessionOptions &options);

    // Append tokens and run the model. Throws INVALID_ARGUMENT (bad id) or CONTEXT_FULL
    // before touching the context; on a failure midway the context is left as it was.
    void eval(std::span<const int32_t> tokens, EvalKind kind = EvalKind::Auto);

    // Evaluate several sessions of one model together: tokens[i] is appended to
    // sessions[i], and every round of the batch (each session's next n_batch tokens) is
    // one Model::forward_batch, so that an expert read for one sequence serves all that
    // route to it. Sessions with another experts_per_token run in batches of their own.
    // Each session ends as eval(tokens[i]) would leave it, within float reassociation (the
    // same rows summed in another order where a kernel blocks rows differently). Everything
    // is checked before anything runs (INVALID_ARGUMENT for sessions of another model, a
    // session twice, an empty list or a bad id; CONTEXT_FULL naming the session that
    // overflows); on a failure midway every context is left as it was. The expert reads
    // of a step are counted to its sessions in proportion to their tokens.
    // kinds[i] (empty: Auto) says how session i counts the evaluation in its statistics.
    static void eval_batch(std::span<Session *const> sessions, std::span<const std::span<const int32_t>> tokens,
                           std::span<const EvalKind> kinds = {});

    std::span<const float> last_logits() const;
    // All rows of the last eval (all_logits sessions only).
    std::span<const float> all_logits(size_t *n_rows) const;
    int32_t n_vocab() const { return int32_t(model_.config.vocab_size); }
    int32_t n_ctx() const { return n_ctx_; }
    // Safe to call while another thread evaluates (it reads a counter, not the history).
    int32_t n_past() const { return n_past_.load(std::memory_order_relaxed); }
    const std::vector<int32_t> &history() const { return history_; }
    void reset();
    // Keep the first n_keep tokens and forget the rest, so that a conversation can be
    // rewound or a shared prompt prefix reused; the logits are gone until the next eval.
    // MST_ERR_INVALID_ARGUMENT past n_past; MST_ERR_UNSUPPORTED when the model's state is
    // recurrent (it cannot be rewound) and 0 < n_keep < n_past.
    void trim(int32_t n_keep);
    // The session's context, last logits and random generator as bytes, and back
    // (session/session_state.h has the format and the checks).
    std::vector<uint8_t> save_state();
    void restore_state(std::span<const uint8_t> bytes);

    int32_t experts_per_token() const { return experts_per_token_; }
    void set_experts_per_token(int32_t k);
    const BudgetPolicy &budget_policy() const { return budget_; }
    void set_budget_policy(const BudgetPolicy &policy);

    std::mt19937_64 &rng() { return rng_; }
    // Memory for sampling this session's logits, reused token after token.
    SamplerScratch &sampler_scratch() { return sampler_scratch_; }
    const SessionStats &stats() const { return stats_; }
    LoadedModel &model() { return model_; }

private:
    // eval's checks of tokens, before anything changes.
    void check_eval(std::span<const int32_t> tokens) const;
    // What an eval leaves once its forward passes are done: the tokens in the history,
    // the new logits, the statistics.
    void commit(std::span<const int32_t> tokens, std::vector<float> new_logits, double seconds, EvalKind kind);
    ForwardOptions forward_options();
    // A buffer of n floats for an eval's logits, reusing the one the eval before last
    // filled (its contents are overwritten); commit keeps the replaced logits for it.
    std::vector<float> take_logits_buffer(size_t n);

    LoadedModel &model_;
    std::unique_ptr<ModelState> state_;
    int32_t n_ctx_ = 0;
    int32_t n_batch_ = 512;
    bool all_logits_ = false;
    int32_t experts_per_token_ = 0;
    BudgetPolicy budget_;
    std::vector<int32_t> history_;
    std::atomic<int32_t> n_past_{0};  // history_.size()
    std::vector<float> logits_;  // last eval: [n_logit_rows_][n_vocab]
    std::vector<float> spare_logits_;  // the eval before's, reused by the next eval
    size_t n_logit_rows_ = 0;
    std::mt19937_64 rng_;
    SamplerScratch sampler_scratch_;
    SessionStats stats_;
};

}  // namespace mst
