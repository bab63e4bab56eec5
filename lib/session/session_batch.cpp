// Session::eval_batch: several sessions' tokens through Model::forward_batch.
#include <algorithm>
#include <chrono>
#include <map>
#include <set>

#include "core/error.h"
#include "session/session.h"

namespace mst {
namespace {

// Shares a step's expert I/O among its sequences in proportion to their tokens (the
// reads served them all), so that the sessions' counts add up to what was read.
void share_io(const ExpertIoStats &step_io, std::span<const size_t> tokens, std::span<ExpertIoStats *const> out) {
    uint64_t total = 0;
    for (size_t n : tokens) total += n;
    ExpertIoStats given;
    for (size_t i = 0; i < out.size(); ++i) {
        const bool last = i + 1 == out.size();
        const auto part = [&](uint64_t value, uint64_t already) {
            return last ? value - already : value * tokens[i] / total;
        };
        ExpertIoStats share;
        share.hits = part(step_io.hits, given.hits);
        share.misses = part(step_io.misses, given.misses);
        share.bytes_read = part(step_io.bytes_read, given.bytes_read);
        share.read_seconds = step_io.read_seconds * double(tokens[i]) / double(total);
        given.hits += share.hits;
        given.misses += share.misses;
        given.bytes_read += share.bytes_read;
        out[i]->hits += share.hits;
        out[i]->misses += share.misses;
        out[i]->bytes_read += share.bytes_read;
        out[i]->read_seconds += share.read_seconds;
    }
}

}  // namespace

void Session::eval_batch(std::span<Session *const> sessions, std::span<const std::span<const int32_t>> tokens,
                         std::span<const EvalKind> kinds) {
    if (sessions.empty()) fail(MST_ERR_INVALID_ARGUMENT, "a batch evaluation needs at least one session");
    if (tokens.size() != sessions.size())
        fail(MST_ERR_INVALID_ARGUMENT, "{} sessions but {} token lists", sessions.size(), tokens.size());
    if (!kinds.empty() && kinds.size() != sessions.size())
        fail(MST_ERR_INTERNAL, "{} sessions but {} evaluation kinds", sessions.size(), kinds.size());
    std::set<const Session *> seen;
    for (size_t i = 0; i < sessions.size(); ++i) {
        const Session *s = sessions[i];
        if (!s) fail(MST_ERR_INVALID_ARGUMENT, "session {} of the batch is NULL", i);
        if (&s->model_ != &sessions[0]->model_)
            fail(MST_ERR_INVALID_ARGUMENT, "session {} of the batch belongs to another model than session 0", i);
        if (!seen.insert(s).second)
            fail(MST_ERR_INVALID_ARGUMENT, "session {} of the batch appears twice (once per batch)", i);
        try {
            s->check_eval(tokens[i]);
        } catch (const Error &e) {
            fail(e.code(), "session {} of the batch: {}", i, e.what());
        }
    }

    const auto start = std::chrono::steady_clock::now();
    Model &model = *sessions[0]->model_.model;
    const size_t V = size_t(sessions[0]->n_vocab());
    std::vector<std::vector<float>> new_logits(sessions.size());
    for (size_t i = 0; i < sessions.size(); ++i)
        new_logits[i] = sessions[i]->take_logits_buffer(sessions[i]->all_logits_ ? tokens[i].size() * V : V);
    // One batch per experts_per_token (the routed top-k is one for all rows of a step).
    std::map<int32_t, std::vector<size_t>> by_k;
    for (size_t i = 0; i < sessions.size(); ++i) by_k[sessions[i]->experts_per_token_].push_back(i);
    for (const auto &[k, members] : by_k) {
        // Round r takes tokens [r * n_batch, (r + 1) * n_batch) of each session that has them.
        for (size_t first_of = 0;; ++first_of) {
            std::vector<SequenceStep> steps;
            std::vector<size_t> step_tokens;
            std::vector<ExpertIoStats *> step_io;
            for (const size_t i : members) {
                Session &s = *sessions[i];
                const size_t first = first_of * size_t(s.n_batch_);
                if (first >= tokens[i].size()) continue;
                const size_t n = std::min(size_t(s.n_batch_), tokens[i].size() - first);
                SequenceStep step;
                step.state = s.state_.get();
                step.n_past = int32_t(s.history_.size() + first);
                step.tokens = tokens[i].subspan(first, n);
                step.all_logits = s.all_logits_;
                step.budget = s.budget_;
                step.budget_stats = &s.stats_.budget;
                step.logits = s.all_logits_ ? new_logits[i].data() + first * V : new_logits[i].data();
                steps.push_back(step);
                step_tokens.push_back(n);
                step_io.push_back(&s.stats_.io);
            }
            if (steps.empty()) break;
            ExpertIoStats io;
            model.forward_batch(steps, k, io);
            share_io(io, step_tokens, step_io);
        }
    }
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    for (size_t i = 0; i < sessions.size(); ++i)
        sessions[i]->commit(tokens[i], std::move(new_logits[i]), seconds, kinds.empty() ? EvalKind::Auto : kinds[i]);
}

}  // namespace mst
