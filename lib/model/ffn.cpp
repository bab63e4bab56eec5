#include "model/ffn.h"

#include <algorithm>
#include <vector>

#include "backends/device_expert_cache.h"
#include "backends/device_experts.h"
#include "core/error.h"
#include "router/cache_substitution.h"

namespace mst {

void swiglu_mlp(Backend &backend, const SwigluWeights &w, const float *h, int64_t n_tokens, float *out) {
    const int64_t inter = w.gate.rows;
    BackendVector gate(backend, size_t(n_tokens * inter)), up(backend, size_t(n_tokens * inter));
    {
        // One input: a backend may run them as one product (one parallel region on the CPU).
        const WeightView ws[] = {w.gate, w.up};
        float *const ys[] = {gate.data(), up.data()};
        backend.matmuls_one_input(ws, ys, h, n_tokens);
    }
    backend.silu_mul(gate.data(), up.data(), gate.data(), n_tokens * inter);
    backend.matmul(w.down, gate.data(), out, n_tokens);
}

void swiglu_expert(Backend &backend, const ExpertWeights &expert, const float *x, int64_t m, float *y) {
    swiglu_mlp(backend, SwigluWeights{expert.parts[swiglu_part::kGate], expert.parts[swiglu_part::kUp],
                                      expert.parts[swiglu_part::kDown]},
               x, m, y);
}

namespace {

// Offers SwiGLU experts just fetched to a backend that chooses experts on the device
// (DeviceExperts). When its expert budget holds the layer it takes them, and the layer's
// other experts are fetched once now (in groups of the size just fetched, as the cache
// allows), so that the layer's next decode steps run there by id.
void offer_experts(Backend &backend, ExpertStore &store, int32_t layer, std::span<const int32_t> ids,
                   const std::vector<ExpertHandle> &weights, ExpertIoStats &io) {
    DeviceExperts *device = device_experts(backend);
    if (!device || ids.empty()) return;
    const int32_t n_experts = int32_t(store.n_experts(layer));
    // Every expert of the model, taking each layer's experts as the size of its first.
    uint64_t model_bytes = 0;
    for (int l = 0; l < store.n_layers(); ++l)
        if (store.n_experts(l) > 0) model_bytes += uint64_t(store.n_experts(l)) * store.layout(l, 0).nbytes();
    static_assert(swiglu_part::kGate == 0 && swiglu_part::kUp == 1 && swiglu_part::kDown == 2);
    std::vector<WeightView> parts[3];
    auto offer = [&](std::span<const int32_t> some, const std::vector<ExpertHandle> &handles) {
        for (std::vector<WeightView> &p : parts) p.assign(size_t(n_experts), WeightView{});
        for (size_t i = 0; i < some.size(); ++i)
            for (int p = 0; p < 3; ++p) parts[p][size_t(some[i])] = handles[i]->parts[size_t(p)];
        return device->make_experts_resident(
            SwigluExpertSet{layer, n_experts, parts[0].data(), parts[1].data(), parts[2].data(), model_bytes});
    };
    if (!offer(ids, weights) || device->experts_resident(layer, n_experts)) return;
    std::vector<int32_t> rest;
    for (int32_t e = 0; e < n_experts; ++e)
        if (std::find(ids.begin(), ids.end(), e) == ids.end()) rest.push_back(e);
    for (size_t first = 0; first < rest.size(); first += ids.size()) {
        const std::span<const int32_t> group(rest.data() + first, std::min(ids.size(), rest.size() - first));
        if (!offer(group, store.fetch(layer, group, io))) return;
    }
}

// Decode: one token's experts, each computed as soon as its weights are in memory (hits at
// once, reads as they land), so the compute of some overlaps the reads of the others.
// Each expert's output goes to a row of its own, and the rows are added in ascending
// expert id afterwards: the same additions in the same order as the group path, so the
// result is the same bit for bit whatever order the reads land in.
void one_token_experts(Backend &backend, ExpertStore &store, int32_t layer, const float *h, int64_t hidden,
                       const std::vector<int32_t> &active, const std::vector<std::vector<float>> &weight_of, float *out,
                       ExpertIoStats &io, const ExpertFn &expert_fn) {
    std::vector<PendingExpert> pending = store.fetch_async(layer, active, io);
    const size_t n = active.size();
    const size_t row = size_t(hidden);
    const bool all_ready = std::all_of(pending.begin(), pending.end(), [](const PendingExpert &p) { return p.ready(); });
    const bool one_use_each =
        std::all_of(weight_of.begin(), weight_of.end(), [](const std::vector<float> &w) { return w.size() == 1; });
    if (!expert_fn && all_ready && one_use_each) {
        // Every expert in memory already (the resident case): one group call that adds the
        // weighted outputs itself, in ascending id as below (the same sums on the CPU), so
        // that a device backend keeps h and out on the device inside the caller's batch.
        std::vector<ExpertHandle> weights(n);
        std::vector<SwigluExpertUse> group(n);
        const int64_t token = 0;
        for (size_t i = 0; i < n; ++i) {
            weights[i] = pending[i].get(io);
            const ExpertWeights &e = *weights[i];
            group[i] = SwigluExpertUse{e.parts[swiglu_part::kGate], e.parts[swiglu_part::kUp],
                                       e.parts[swiglu_part::kDown], &token, weight_of[i].data(), 1};
        }
        offer_experts(backend, store, layer, active, weights, io);
        backend.routed_swiglu(h, out, 1, hidden, group.data(), n);
        return;
    }
    std::vector<float> rows(n * row, 0.0f);
    // routed_swiglu reads token i of h and adds into row i of out: one copy of h per
    // expert lets each write a row of its own, with weight 1 (exact) until the sum.
    std::vector<float> h_rows;
    if (!expert_fn) {
        const Backend::HostSpan read{h, row * sizeof(float)};  // the host copies h itself
        backend.sync_reads({&read, 1});
        for (size_t i = 0; i < n; ++i) h_rows.insert(h_rows.end(), h, h + row);
    }
    std::vector<int64_t> token_of(n);
    const std::vector<float> unit(n, 1.0f);
    for (size_t i = 0; i < n; ++i) token_of[i] = int64_t(i);

    std::vector<bool> done(n, false);
    std::vector<size_t> ready;
    std::vector<ExpertHandle> weights(n);
    std::vector<SwigluExpertUse> batch;
    for (size_t n_done = 0; n_done < n; n_done += ready.size()) {
        ready.clear();
        for (size_t i = 0; i < n; ++i)
            if (!done[i] && pending[i].ready()) ready.push_back(i);
        if (ready.empty()) {
            // Wait for the read that started first: reads ahead of need were queued before
            // this layer's own.
            size_t first = n;
            for (size_t i = 0; i < n; ++i)
                if (!done[i] && (first == n || (pending[i].read_ahead() && !pending[first].read_ahead()))) first = i;
            ready.push_back(first);
        }
        for (size_t i : ready) {
            weights[i] = pending[i].get(io);
            done[i] = true;
        }
        if (expert_fn) {
            for (size_t i : ready) expert_fn(backend, *weights[i], h, 1, rows.data() + i * row);
        } else {
            batch.clear();
            for (size_t i : ready) {
                const ExpertWeights &e = *weights[i];
                batch.push_back(SwigluExpertUse{e.parts[swiglu_part::kGate], e.parts[swiglu_part::kUp],
                                                e.parts[swiglu_part::kDown], &token_of[i], &unit[i], 1});
            }
            backend.routed_swiglu(h_rows.data(), rows.data(), int64_t(n), hidden, batch.data(), batch.size());
        }
        for (size_t i : ready) weights[i].reset();  // an evicted expert's memory goes back now
    }
    backend.sync();  // the rows are read on the host (this may be part of a caller's batch)
    for (size_t i = 0; i < n; ++i)
        for (float w : weight_of[i]) add_scaled(out, w, rows.data() + i * row, hidden);
}

}  // namespace

void routed_experts(Backend &backend, ExpertStore &store, int32_t layer, const float *h, int64_t hidden,
                    const Routing &routing, float *out, ExpertIoStats &io, const ExpertFn &expert_fn) {
    // Invert the routing: for each expert, the (token, weight) pairs that use it.
    struct Use {
        int64_t token;
        float weight;
    };
    const size_t slots = size_t(routing.n_tokens) * size_t(routing.k);
    std::vector<std::vector<Use>> uses(size_t(store.n_experts(layer)));
    for (size_t slot = 0; slot < slots; ++slot)
        if (routing.ids[slot] >= 0)
            uses[size_t(routing.ids[slot])].push_back(Use{int64_t(slot) / routing.k, routing.weights[slot]});
    std::vector<int32_t> active;
    for (size_t e = 0; e < uses.size(); ++e)
        if (!uses[e].empty()) active.push_back(int32_t(e));
    if (active.empty()) return;
    if (routing.n_tokens == 1) {
        std::vector<std::vector<float>> weight_of(active.size());
        for (size_t i = 0; i < active.size(); ++i)
            for (const Use &u : uses[size_t(active[i])]) weight_of[i].push_back(u.weight);
        one_token_experts(backend, store, layer, h, hidden, active, weight_of, out, io, expert_fn);
        return;
    }

    const uint64_t expert_bytes = store.layout(layer, active.front()).nbytes();
    const size_t budget_experts = expert_bytes ? size_t(store.cache_budget() / expert_bytes) : 0;
    const size_t group = std::max<size_t>(size_t(routing.k), budget_experts);

    std::vector<float> x, y;
    std::vector<SwigluExpertUse> batch;
    std::vector<std::vector<int64_t>> tokens;
    std::vector<std::vector<float>> token_weights;
    for (size_t first = 0; first < active.size(); first += group) {
        const size_t n_group = std::min(group, active.size() - first);
        const std::vector<ExpertHandle> weights =
            store.fetch(layer, std::span<const int32_t>(active.data() + first, n_group), io);
        if (!expert_fn) {
            // The whole group in one backend call (a device backend submits it at once).
            batch.resize(n_group);
            tokens.resize(n_group);
            token_weights.resize(n_group);
            for (size_t g = 0; g < n_group; ++g) {
                const std::vector<Use> &u = uses[size_t(active[first + g])];
                tokens[g].resize(u.size());
                token_weights[g].resize(u.size());
                for (size_t i = 0; i < u.size(); ++i) {
                    tokens[g][i] = u[i].token;
                    token_weights[g][i] = u[i].weight;
                }
                const ExpertWeights &e = *weights[g];
                batch[g] = SwigluExpertUse{e.parts[swiglu_part::kGate], e.parts[swiglu_part::kUp],
                                           e.parts[swiglu_part::kDown], tokens[g].data(), token_weights[g].data(),
                                           int64_t(u.size())};
            }
            offer_experts(backend, store, layer, std::span<const int32_t>(active.data() + first, n_group), weights, io);
            backend.routed_swiglu(h, out, routing.n_tokens, hidden, batch.data(), n_group);
            // A group per submission, as when each call ran alone: the GPU expert cache may
            // evict a group's experts only after the submission that used them.
            if (first + group < active.size()) backend.sync();
            continue;
        }
        for (size_t g = 0; g < n_group; ++g) {
            const std::vector<Use> &u = uses[size_t(active[first + g])];
            const int64_t m = int64_t(u.size());
            x.resize(size_t(m * hidden));
            for (int64_t i = 0; i < m; ++i)
                std::copy_n(h + u[size_t(i)].token * hidden, hidden, x.data() + i * hidden);
            y.resize(size_t(m * hidden));
            expert_fn(backend, *weights[g], x.data(), m, y.data());
            for (int64_t i = 0; i < m; ++i)
                add_scaled(out + u[size_t(i)].token * hidden, u[size_t(i)].weight, y.data() + i * hidden, hidden);
        }
    }
}

namespace {

// Whether a decode step of `layer` may run by id on the device: the backend holds every
// expert of the layer, the architecture routes on the device, and nothing needs the host's
// view of the routing (traces, prefetch, budget rules, expert_fn).
bool by_id_step(Backend &backend, ExpertStore &store, const LayerRouting &routing, size_t layer,
                std::span<const RowsBudget> budgets, const ExpertFn &expert_fn) {
    if (expert_fn || !routing.route_on_device || routing.trace.chosen || routing.trace.predicted ||
        routing.trace.ranked || store.prefetch_enabled())
        return false;
    for (const RowsBudget &b : budgets)
        if (b.policy && (b.policy->active() || b.policy->substitute_min_ratio > 0.0f)) return false;
    DeviceExperts *device = device_experts(backend);
    return device && device->experts_resident(int64_t(layer), int32_t(store.n_experts(int32_t(layer))));
}

// What the prefetcher would guess for every row of h, reported to the trace; the same
// routers on the same hidden state as in sparse_feed_forward's prefetch below.
void trace_predictions(const LayerRouting &routing, size_t layer, const float *h, int64_t n, int32_t k) {
    std::vector<int32_t> ids(size_t(n * k));
    std::vector<float> weights(size_t(n * k));
    int ahead = 0;
    for (size_t next = layer + 1; next < routing.n_layers && ahead < routing.trace.predict_layers; ++next) {
        if (!routing.is_sparse(next)) continue;
        routing.route(next, h, n, k, ids.data(), weights.data());
        routing.trace.predicted(layer, next, n, k, ids.data(), weights.data());
        ++ahead;
    }
}

// The guessed experts of `layer` that are in host memory now copied into the backend's
// device expert cache behind the current layer's recorded work (DeviceExpertCache), so
// that the layer finds them there after its router's wait. Guesses still being read are
// left to the layer itself; nothing here waits or counts as a host cache hit.
void prefetch_into_device(Backend &backend, const ExpertStore &store, int32_t layer, std::span<const int32_t> guesses) {
    DeviceExpertCache *device = device_expert_cache(backend);
    if (!device || !device->expert_prefetch_enabled()) return;
    std::vector<ExpertHandle> held;  // alive until the copies are recorded
    std::vector<WeightView> parts;
    for (int32_t e : guesses) {
        ExpertHandle w = store.peek_cached(layer, e);
        if (!w) continue;
        parts.insert(parts.end(), w->parts.begin(), w->parts.end());
        held.push_back(std::move(w));
    }
    if (!parts.empty()) device->prefetch_experts(parts);
}

}  // namespace

void sparse_feed_forward(Backend &backend, ExpertStore &store, const LayerRouting &routing, size_t layer,
                         const float *h, int64_t n, int64_t hidden, int32_t k, const BudgetPolicy *budget,
                         BudgetStats *budget_stats, float *out, ExpertIoStats &io, const ExpertFn &expert_fn) {
    const RowsBudget all{n, budget, budget_stats};
    sparse_feed_forward(backend, store, routing, layer, h, n, hidden, k, {&all, 1}, out, io, expert_fn);
}

bool sparse_feed_forward(Backend &backend, ExpertStore &store, const LayerRouting &routing, size_t layer,
                         const float *h, int64_t n, int64_t hidden, int32_t k, std::span<const RowsBudget> budgets,
                         float *out, ExpertIoStats &io, const ExpertFn &expert_fn, float *residual) {
    // A decode step, or a prefill's tokens grouped by expert on the device (batch_by_id).
    if (by_id_step(backend, store, routing, layer, budgets, expert_fn) &&
        (n == 1 ||
         device_experts(backend)->batch_by_id(int64_t(layer), int32_t(store.n_experts(int32_t(layer))), n))) {
        // Routed and computed on the device: the ids and weights never reach the host.
        // Scratch whose pending results die with it; the ids are 32-bit words that only the
        // device reads, so a float vector's memory names them as well as any.
        BackendVector ids(backend, size_t(n * k));
        BackendVector weights(backend, size_t(n * k));
        auto *id_words = reinterpret_cast<int32_t *>(ids.data());
        if (routing.route_on_device(layer, h, n, k, id_words, weights.data())) {
            backend.drop_results(out, size_t(n * hidden) * sizeof(float));
            bool added = false;
            if (n == 1) {
                // The sum added into the residual stream by the experts' last dispatch, or
                // (a backend without it) written into out for the caller's add.
                added = residual && device_experts(backend)->routed_swiglu_by_id_add(
                                        int64_t(layer), h, residual, hidden, id_words, weights.data(), k);
                if (!added) {
                    std::fill(out, out + hidden, 0.0f);
                    device_experts(backend)->routed_swiglu_by_id(int64_t(layer), h, out, hidden, id_words,
                                                                 weights.data(), k);
                }
            } else {
                device_experts(backend)->routed_swiglu_batch_by_id(int64_t(layer), h, out, n, hidden, id_words,
                                                                   weights.data(), k);
            }
            for (const RowsBudget &b : budgets)  // as apply_budget_policy counts them
                if (b.stats) b.stats->experts_chosen += uint64_t(n * k);
            return added;
        }
    }
    std::vector<int32_t> ids(size_t(n * k));
    std::vector<float> weights(size_t(n * k));
    // With prefetch, a decode token's guess for the nearest sparse layer comes with the
    // layer's own ids, at one wait, where the architecture can (route_with_next).
    size_t first_next = routing.n_layers;
    if (n == 1 && store.prefetch_enabled() && store.prefetch_layers() > 0 && routing.route_with_next)
        for (size_t next = layer + 1; next < routing.n_layers && first_next == routing.n_layers; ++next)
            if (routing.is_sparse(next)) first_next = next;
    std::vector<int32_t> first_next_ids(static_cast<size_t>(k));
    std::vector<float> first_next_weights(static_cast<size_t>(k));
    const bool routed_with_next = first_next < routing.n_layers &&
                                  routing.route_with_next(layer, first_next, h, k, ids.data(), weights.data(),
                                                          first_next_ids.data(), first_next_weights.data());
    if (!routed_with_next) routing.route(layer, h, n, k, ids.data(), weights.data());
    if (routing.trace.chosen) routing.trace.chosen(layer, n, k, ids.data(), weights.data());
    if (routing.trace.predicted) trace_predictions(routing, layer, h, n, k);
    if (routing.trace.ranked && routing.trace.ranked_k > k) {
        const int32_t m = std::min<int32_t>(routing.trace.ranked_k, int32_t(store.n_experts(int32_t(layer))));
        std::vector<int32_t> ranked_ids(size_t(n * m));
        std::vector<float> ranked_weights(size_t(n * m));
        routing.route(layer, h, n, m, ranked_ids.data(), ranked_weights.data());
        routing.trace.ranked(layer, n, m, ranked_ids.data(), ranked_weights.data());
    }
    // The nearest sparse layer's guesses, for the device expert cache once this layer's
    // experts are recorded (-1: none).
    int32_t device_guess_layer = -1;
    std::vector<int32_t> device_guesses;
    if (n == 1 && store.prefetch_enabled()) {
        // The nearest layer first: the I/O threads read predictions in the order they come.
        int ahead = 0;
        std::vector<int32_t> next_ids(static_cast<size_t>(k));
        std::vector<float> next_weights(static_cast<size_t>(k));
        for (size_t next = layer + 1; next < routing.n_layers && ahead < store.prefetch_layers(); ++next) {
            if (!routing.is_sparse(next)) continue;
            if (routed_with_next && next == first_next) {
                next_ids = first_next_ids;
                next_weights = first_next_weights;
            } else {
                routing.route(next, h, 1, k, next_ids.data(), next_weights.data());
            }
            store.prefetch(int32_t(next), next_ids, next_weights);
            if (ahead == 0) {
                device_guess_layer = int32_t(next);
                device_guesses = next_ids;
            }
            ++ahead;
        }
    }
    // Before any expert is fetched, so that a dropped or replaced expert is never read.
    const auto resident = [&](int32_t e) { return store.is_cached(int32_t(layer), e); };
    int64_t row0 = 0;
    for (const RowsBudget &b : budgets) {
        if (b.policy && b.stats && b.policy->substitute_min_ratio > 0.0f) {
            // The next-ranked experts are the router's top-2k: one more router pass over these rows.
            const int32_t k2 = std::min<int32_t>(2 * k, int32_t(store.n_experts(int32_t(layer))));
            std::vector<int32_t> cand(size_t(b.n_rows * k2));
            std::vector<float> cand_w(size_t(b.n_rows * k2));
            routing.route(layer, h + row0 * hidden, b.n_rows, k2, cand.data(), cand_w.data());
            b.stats->experts_substituted +=
                substitute_cached_experts(b.policy->substitute_min_ratio, b.n_rows, k, ids.data() + row0 * k,
                                          weights.data() + row0 * k, k2, cand.data(), cand_w.data(), resident);
        }
        row0 += b.n_rows;
    }
    row0 = 0;
    for (const RowsBudget &b : budgets) {
        if (b.policy && b.stats)
            apply_budget_policy(*b.policy, b.n_rows, k, ids.data() + row0 * k, weights.data() + row0 * k,
                                routing.renormalized, resident, *b.stats);
        row0 += b.n_rows;
    }
    if (row0 != n) fail(MST_ERR_INTERNAL, "layer {}: budgets cover {} of {} rows", layer, row0, n);
    backend.drop_results(out, size_t(n * hidden) * sizeof(float));  // its old value may still be on the device
    std::fill(out, out + n * hidden, 0.0f);
    routed_experts(backend, store, int32_t(layer), h, hidden, Routing{n, k, ids.data(), weights.data()}, out, io,
                   expert_fn);
    if (device_guess_layer >= 0 && !expert_fn) prefetch_into_device(backend, store, device_guess_layer, device_guesses);
    return false;
}

}  // namespace mst
