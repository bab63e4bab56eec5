// Decode and prefill speed of a Qwen3-30B-A3B-shaped MoE model (the real shapes: hidden
// 2048, 32 query / 4 KV heads of 128, 128 experts of 768, top-8, vocab 151936; random
// weights: bf16 dense weights, q4 experts) on the Vulkan backend and on the CPU backend,
// each against its roofline.
//
// The model is built in memory at the block level and runs the same Backend calls in the
// same order as lib/model's Qwen3-MoE forward pass: gqa_attention (the library's own),
// the router product, softmax top-k on the host (lib/router), and the routed experts as
// one Backend::routed_swiglu per layer, as lib/model/ffn.cpp calls it when every expert
// of the step is in the expert cache. Expert bytes come from host memory (the host-side
// expert cache, as if it held every expert), never from disk: this measures compute and
// the host-to-GPU path, not the SSD.
//
// Scenarios:
//   resident: every weight on the GPU (a GPU expert budget that holds all experts), warm.
//   streamed: a GPU expert budget of a quarter of the experts; misses are copied by the
//             device straight from the host expert store, imported where the device has
//             VK_EXT_external_memory_host, else (or with MST_VULKAN_HOST_IMPORT=0) through
//             the staging ring.
//   cpu:      the CPU backend, all cores.
// Rooflines: resident = bytes read per token / device-memory bandwidth (measured here by
// a device-to-device copy); streamed adds the expert bytes missed per token / host-to-
// device bandwidth (measured here through a host-visible buffer); cpu = bytes per token /
// host memory bandwidth (measured here by a multi-threaded read).
//
// With --layers L < 48 the per-token time of the layers is scaled by 48 / L (the
// lm_head is counted once), and the output says so.
//
// --matvec-sweep [--config ../shared/configs/qwen3-30b-a3b.json] [--layers 4] [--rounds 5]
//                [--grid 8x1,...,64x8,32x4x2,...] [--bound 1e-3] [--no-other-q4-unit]
// times only the one-token product kernels of a resident decode step at the config's
// shapes under each LANESxROWS[xPER_LANE] of the grid (bench/matvec_sweep.h; docs/gpu_decode_kernels.md
// "Choosing the one-token kernels' shapes") and prints the best MST_VULKAN_MATVEC_TUNING
// (the line BEST_MATVEC_TUNING=...).
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <numeric>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "backends/backend.h"
#include "backends/device_expert_cache.h"
#include "backends/device_experts.h"
#include "backends/device_routing.h"
#include "backends/vulkan/matvec_tuning.h"
#include "backends/vulkan/vulkan_backend.h"
#include "backends/vulkan/vulkan_bandwidth.h"
#include "bench/matvec_sweep.h"
#include "core/aligned_buffer.h"
#include "core/dtype.h"
#include "core/op_profile.h"
#include "core/quant.h"
#include "format/model_config.h"
#include "model/gqa_attention.h"
#include "model/kv_cache.h"
#include "router/softmax_topk.h"

namespace {

using namespace mst;
using Clock = std::chrono::steady_clock;

constexpr int64_t kHidden = 2048, kHeads = 32, kKvHeads = 4, kHeadDim = 128, kExperts = 128, kTopK = 8,
                  kInter = 768, kVocab = 151936, kModelLayers = 48;

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

std::vector<uint16_t> random_bf16(size_t n, uint32_t seed, float scale) {
    std::vector<uint16_t> v(n);
    uint64_t s = seed * 0x9E3779B97F4A7C15ull + 1;
    for (auto &x : v) {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        const float f = (float(s >> 40) / float(1 << 24) * 2.0f - 1.0f) * scale;
        x = f32_to_bf16(f);
    }
    return v;
}

// Q4 bytes of a [rows][cols] matrix: random codes, scale and minimum chosen so that the
// values are about +-scale.
std::vector<uint8_t> random_q4(int64_t rows, int64_t cols, uint32_t seed, float scale) {
    const int64_t blocks = rows * (cols / 32);
    std::vector<uint8_t> out(size_t(blocks) * sizeof(BlockQ4));
    uint64_t s = seed * 0x9E3779B97F4A7C15ull + 7;
    auto *b = reinterpret_cast<BlockQ4 *>(out.data());
    const uint16_t d = float_to_half(scale / 7.5f), m = float_to_half(-scale);
    for (int64_t i = 0; i < blocks; ++i) {
        b[i].d = d;
        b[i].m = m;
        for (int j = 0; j < 16; j += 8) {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            std::memcpy(b[i].q + j, &s, 8);
        }
    }
    return out;
}

struct Layer {
    std::vector<uint16_t> q, k, v, o, router, q_norm, k_norm, in_norm, post_norm;
    GqaWeights attention;
    WeightView router_view, in_norm_view, post_norm_view;
};

// The experts of one layer; the layers share these bytes (keys differ per layer, so a
// GPU holds a copy per layer, as it would for a real model). One page-aligned block, as
// the host expert cache's buffers are (AlignedBuffer), so that the backend can import it
// and copy missed experts from it directly (VulkanBackend::import_host_memory).
struct ExpertBytes {
    AlignedBuffer store;
    std::vector<const uint8_t *> gate, up, down;
};

WeightView bf16_view(const std::vector<uint16_t> &v, int64_t rows, int64_t cols) {
    WeightView w{DType::BF16, v.data(), rows, cols};
    w.stable = true;
    return w;
}

struct Model {
    int layers = 0;
    std::vector<Layer> layer;
    ExpertBytes experts;
    // Every expert's views of each layer (keys per layer), for DeviceExperts.
    std::vector<std::vector<WeightView>> gate_views, up_views, down_views;
    std::vector<uint16_t> lm_head, final_norm;
    WeightView lm_head_view, final_norm_view;
    RopeTable rope;

    uint64_t dense_bytes_per_layer() const {
        return uint64_t((2 * kHeads * kHeadDim + 2 * kKvHeads * kHeadDim) * kHidden + kExperts * kHidden) * 2;
    }
    static uint64_t expert_bytes() { return uint64_t(3 * kInter * kHidden / 32) * sizeof(BlockQ4); }
};

void build(Model &m, int layers) {
    m.layers = layers;
    m.layer.resize(size_t(layers));
    const float dense_scale = 1.0f / std::sqrt(float(kHidden));
    for (int l = 0; l < layers; ++l) {
        Layer &L = m.layer[size_t(l)];
        const uint32_t s = uint32_t(l * 16);
        L.q = random_bf16(size_t(kHeads * kHeadDim * kHidden), s + 1, dense_scale);
        L.k = random_bf16(size_t(kKvHeads * kHeadDim * kHidden), s + 2, dense_scale);
        L.v = random_bf16(size_t(kKvHeads * kHeadDim * kHidden), s + 3, dense_scale);
        L.o = random_bf16(size_t(kHidden * kHeads * kHeadDim), s + 4, dense_scale);
        L.router = random_bf16(size_t(kExperts * kHidden), s + 5, 4.0f * dense_scale);
        L.q_norm = random_bf16(size_t(kHeadDim), s + 6, 1.0f);
        L.k_norm = random_bf16(size_t(kHeadDim), s + 7, 1.0f);
        L.in_norm = random_bf16(size_t(kHidden), s + 8, 1.0f);
        L.post_norm = random_bf16(size_t(kHidden), s + 9, 1.0f);
        L.attention.q = bf16_view(L.q, kHeads * kHeadDim, kHidden);
        L.attention.k = bf16_view(L.k, kKvHeads * kHeadDim, kHidden);
        L.attention.v = bf16_view(L.v, kKvHeads * kHeadDim, kHidden);
        L.attention.o = bf16_view(L.o, kHidden, kHeads * kHeadDim);
        L.attention.q_norm = bf16_view(L.q_norm, 1, kHeadDim);
        L.attention.k_norm = bf16_view(L.k_norm, 1, kHeadDim);
        L.router_view = bf16_view(L.router, kExperts, kHidden);
        L.in_norm_view = bf16_view(L.in_norm, 1, kHidden);
        L.post_norm_view = bf16_view(L.post_norm, 1, kHidden);
    }
    const float es = 1.0f / std::sqrt(float(kHidden));
    const size_t part = size_t(Model::expert_bytes() / 3);
    m.experts.store = AlignedBuffer(part * 3 * size_t(kExperts), "bench_vulkan experts");
    for (int64_t e = 0; e < kExperts; ++e) {
        uint8_t *at = m.experts.store.data() + size_t(e) * 3 * part;
        const std::vector<uint8_t> g = random_q4(kInter, kHidden, uint32_t(1000 + 3 * e), es);
        const std::vector<uint8_t> u = random_q4(kInter, kHidden, uint32_t(1001 + 3 * e), es);
        const std::vector<uint8_t> d = random_q4(kHidden, kInter, uint32_t(1002 + 3 * e), 1.0f / std::sqrt(float(kInter)));
        std::memcpy(at, g.data(), part);
        std::memcpy(at + part, u.data(), part);
        std::memcpy(at + 2 * part, d.data(), part);
        m.experts.gate.push_back(at);
        m.experts.up.push_back(at + part);
        m.experts.down.push_back(at + 2 * part);
    }
    for (int l = 0; l < layers; ++l) {
        std::vector<WeightView> g, u, d;
        for (int64_t e = 0; e < kExperts; ++e) {
            g.push_back(WeightView{DType::Q4, m.experts.gate[size_t(e)], kInter, kHidden});
            u.push_back(WeightView{DType::Q4, m.experts.up[size_t(e)], kInter, kHidden});
            d.push_back(WeightView{DType::Q4, m.experts.down[size_t(e)], kHidden, kInter});
            g.back().expert_key = make_expert_key(l, e, 0);
            u.back().expert_key = make_expert_key(l, e, 1);
            d.back().expert_key = make_expert_key(l, e, 2);
        }
        m.gate_views.push_back(std::move(g));
        m.up_views.push_back(std::move(u));
        m.down_views.push_back(std::move(d));
    }
    m.lm_head = random_bf16(size_t(kVocab * kHidden), 99, dense_scale);
    m.final_norm = random_bf16(size_t(kHidden), 98, 1.0f);
    m.lm_head_view = bf16_view(m.lm_head, kVocab, kHidden);
    m.final_norm_view = bf16_view(m.final_norm, 1, kHidden);
    m.rope.rotary_dim = int32_t(kHeadDim);
    for (int64_t i = 0; i < kHeadDim / 2; ++i)
        m.rope.inv_freq.push_back(float(1.0 / std::pow(1e6, double(2 * i) / double(kHeadDim))));
}

// Which execution the forward pass uses: `device` is MoeDecoder::forward's today (the
// whole step one backend batch, residual adds, the KV append and the router's top-k as
// backend ops, a wait only for each layer's expert ids; docs/device_graph.md); `host` is
// the one before it (a batch per piece, residual adds and top-k on the host), kept to
// compare in the same run.
enum class Path { device, host };
Path g_path = Path::device;
// --guess: a streamed decode layer also applies the next layer's router to its hidden state,
// read back at the same wait as its own ids, and once its experts are recorded hands the
// guessed experts to DeviceExpertCache::prefetch_experts (copied ahead into the GPU cache,
// on the transfer queue where there is one): what the library's --prefetch does, without
// the library's second wait for the guess (docs/device_graph.md "Expert copies on a
// transfer queue"). Off by default, so that the streamed case measures what it did before.
bool g_guess = false;

// One forward pass of n tokens at pos0 (Qwen3-MoE: MoeDecoder::forward's calls).
void forward(Backend &b, const Model &m, KvCache &cache, const float *x_in, int64_t n, int32_t pos0, float *logits) {
    const int64_t H = kHidden;
    std::vector<float> x(x_in, x_in + n * H), h(size_t(n * H)), y(size_t(n * H)), router(size_t(n * kExperts));
    std::vector<int32_t> ids(size_t(n * kTopK)), next_ids(static_cast<size_t>(kTopK));
    std::vector<float> weights(size_t(n * kTopK)), next_router(static_cast<size_t>(kExperts)),
        next_weights(static_cast<size_t>(kTopK));
    const GqaShape shape{int32_t(kHeads), int32_t(kKvHeads), int32_t(kHeadDim), 1e-6f, 0.0f, 0};
    const bool device = g_path == Path::device;
    BackendBatch step(b, device);
    auto residual_add = [&] {
        if (device) b.add(x.data(), y.data(), int64_t(x.size()));
        else for (size_t i = 0; i < x.size(); ++i) x[i] += y[i];
    };
    for (int l = 0; l < m.layers; ++l) {
        const Layer &L = m.layer[size_t(l)];
        gqa_attention_normed(b, L.attention, shape, m.rope, cache, l, x.data(), L.in_norm_view, 1e-6f, h.data(), n,
                             pos0, y.data());
        residual_add();
        // As MoeDecoder::forward: on the device path the top-k runs on the backend when it
        // offers DeviceRouting (under --profile too: the wrapper passes it on).
        DeviceRouting *routing = device ? device_routing(b) : nullptr;
        // As MoeDecoder::forward: when the backend keeps every expert of the layer on the
        // device (a GPU expert budget that holds them; MST_VULKAN_EXPERTS_BY_ID=0 says no),
        // a decode step's experts are chosen there and the step has no wait per layer.
        DeviceExperts *by_id = routing ? device_experts(b) : nullptr;
        if (by_id) {
            const SwigluExpertSet set{l, int32_t(kExperts), m.gate_views[size_t(l)].data(), m.up_views[size_t(l)].data(),
                                      m.down_views[size_t(l)].data(),
                                      uint64_t(kExperts * m.layers) * Model::expert_bytes()};
            if (!by_id->make_experts_resident(set)) by_id = nullptr;
        }
        // A prefill's tokens too, grouped by expert on the device (MST_VULKAN_DEVICE_GROUPING=0:
        // the wait for the ids and the host grouping below, to compare).
        if (by_id && (n == 1 || by_id->batch_by_id(l, int32_t(kExperts), n))) {
            b.rms_norm(x.data(), L.post_norm_view, 0.0f, 1e-6f, h.data(), n, H);
            b.matmul(L.router_view, h.data(), router.data(), n);
            routing->softmax_topk(router.data(), n, int32_t(kExperts), int32_t(kTopK), true, ids.data(), weights.data());
            b.drop_results(y.data(), y.size() * sizeof(float));
            // As MoeDecoder: a decode step's sum goes into x in the experts' last dispatch
            // where the backend fuses it (MST_VULKAN_MOE_FUSION=0: into y, then the add).
            if (n == 1 && by_id->routed_swiglu_by_id_add(l, h.data(), x.data(), H, ids.data(), weights.data(),
                                                         int32_t(kTopK)))
                continue;
            if (n == 1) {
                std::fill(y.begin(), y.end(), 0.0f);
                by_id->routed_swiglu_by_id(l, h.data(), y.data(), H, ids.data(), weights.data(), int32_t(kTopK));
            } else {
                by_id->routed_swiglu_batch_by_id(l, h.data(), y.data(), n, H, ids.data(), weights.data(), int32_t(kTopK));
            }
            residual_add();
            continue;
        }
        DeviceExpertCache *ahead = g_guess && n == 1 && l + 1 < m.layers && routing ? device_expert_cache(b) : nullptr;
        {
            BackendBatch batch(b);
            b.rms_norm(x.data(), L.post_norm_view, 0.0f, 1e-6f, h.data(), n, H);
            b.matmul(L.router_view, h.data(), router.data(), n);
            if (ahead) b.matmul(m.layer[size_t(l + 1)].router_view, h.data(), next_router.data(), 1);
            if (routing) {
                routing->softmax_topk(router.data(), n, int32_t(kExperts), int32_t(kTopK), true, ids.data(),
                                      weights.data());
                if (ahead)
                    routing->softmax_topk(next_router.data(), 1, int32_t(kExperts), int32_t(kTopK), true,
                                          next_ids.data(), next_weights.data());
                // The host reads the ids and weights only (and the guess); the rest stays on the device.
                const Backend::HostSpan reads[] = {{ids.data(), ids.size() * sizeof(int32_t)},
                                                   {weights.data(), weights.size() * sizeof(float)},
                                                   {next_ids.data(), ahead ? next_ids.size() * sizeof(int32_t) : 0}};
                b.sync_reads(reads);
            } else {
                b.sync();
            }
        }
        if (!routing)
            route_softmax_topk(router.data(), n, int32_t(kExperts), int32_t(kTopK), true, ids.data(), weights.data());
        // Invert the routing as ffn.cpp does: experts in ascending id, their tokens.
        std::vector<std::vector<int64_t>> tok(static_cast<size_t>(kExperts));
        std::vector<std::vector<float>> wt(static_cast<size_t>(kExperts));
        for (int64_t s = 0; s < n * kTopK; ++s) {
            tok[size_t(ids[size_t(s)])].push_back(s / kTopK);
            wt[size_t(ids[size_t(s)])].push_back(weights[size_t(s)]);
        }
        std::vector<SwigluExpertUse> uses;
        for (int64_t e = 0; e < kExperts; ++e) {
            if (tok[size_t(e)].empty()) continue;
            SwigluExpertUse u;
            u.gate = m.gate_views[size_t(l)][size_t(e)];
            u.up = m.up_views[size_t(l)][size_t(e)];
            u.down = m.down_views[size_t(l)][size_t(e)];
            u.tokens = tok[size_t(e)].data();
            u.weights = wt[size_t(e)].data();
            u.n = int64_t(tok[size_t(e)].size());
            uses.push_back(u);
        }
        b.drop_results(y.data(), y.size() * sizeof(float));  // y's old value may still be on the device
        std::fill(y.begin(), y.end(), 0.0f);
        b.routed_swiglu(h.data(), y.data(), n, H, uses.data(), uses.size());
        if (ahead) {
            std::vector<WeightView> parts;
            for (const int32_t e : next_ids)
                parts.insert(parts.end(), {m.gate_views[size_t(l + 1)][size_t(e)], m.up_views[size_t(l + 1)][size_t(e)],
                                           m.down_views[size_t(l + 1)][size_t(e)]});
            ahead->prefetch_experts(parts);
        }
        residual_add();
    }
    b.rms_norm(x.data() + (n - 1) * H, m.final_norm_view, 0.0f, 1e-6f, h.data(), 1, H);
    b.matmul(m.lm_head_view, h.data(), logits, 1);
    // As MoeDecoder: the activations are not read on the host, only the logits.
    for (const std::vector<float> *v : {&x, &h, &y}) b.drop_results(v->data(), v->size() * sizeof(float));
}

// Wall time per op (synchronous ops: host work, submission and device time together; a
// batch's ops are charged to end_batch), to see what a decode step is made of.
// It offers the Vulkan backend's device routing and expert selection as the backend does,
// so that a profiled step takes the path an unprofiled one takes.
class ProfilingBackend final : public Backend, public DeviceRouting, public DeviceExperts {
public:
    explicit ProfilingBackend(VulkanBackend &inner) : b_(inner), vk_(&inner) {}
    struct Stat {
        uint64_t calls = 0, submissions = 0;
        double seconds = 0, device_seconds = 0;
    };
    std::map<std::string, Stat> stats;

    const char *name() const override { return b_.name(); }
    int n_threads() const override { return b_.n_threads(); }
#define MST_PROFILED(label, call)            \
    do {                                     \
        const auto t0_ = Clock::now();       \
        const uint64_t n0_ = vk_ ? vk_->submissions() : 0; \
        const double g0_ = vk_ ? vk_->gpu_seconds() : 0; \
        call;                                \
        Stat &s_ = stats[label];             \
        ++s_.calls;                          \
        s_.submissions += vk_ ? vk_->submissions() - n0_ : 0; \
        s_.device_seconds += vk_ ? vk_->gpu_seconds() - g0_ : 0; \
        s_.seconds += seconds_since(t0_);    \
    } while (0)
    void matmul(const WeightView &w, const float *x, float *y, int64_t n) override {
        MST_PROFILED(w.rows == kVocab ? "matmul lm_head" : "matmul " + std::string(dtype_name(w.dtype)), b_.matmul(w, x, y, n));
    }
    void rms_norm(const float *x, const WeightView &w, float o, float e, float *y, int64_t r, int64_t d) override {
        MST_PROFILED("rms_norm", b_.rms_norm(x, w, o, e, y, r, d));
    }
    // Passed on whole: a backend may run the products of one x together (the Vulkan
    // backend folds a deferred norm into all of them).
    void matmuls_one_input(std::span<const WeightView> w, std::span<float *const> y, const float *x,
                           int64_t n) override {
        MST_PROFILED("matmuls_one_input", b_.matmuls_one_input(w, y, x, n));
    }
    void rope(float *x, int64_t n, int64_t h, int64_t d, const int32_t *p, const RopeParams &r) override {
        MST_PROFILED("rope", b_.rope(x, n, h, d, p, r));
    }
    void attention(const float *q, const float *k, const float *v, float *o, const AttentionParams &p) override {
        MST_PROFILED("attention", b_.attention(q, k, v, o, p));
    }
    void silu_mul(const float *g, const float *u, float *o, int64_t n) override { MST_PROFILED("silu_mul", b_.silu_mul(g, u, o, n)); }
    void matmul_xw(const WeightView &w, const float *x, float *y, int64_t n) override { MST_PROFILED("matmul_xw", b_.matmul_xw(w, x, y, n)); }
    void clamped_swiglu(const float *g, float *o, int64_t r, int64_t n, float a, float l) override {
        MST_PROFILED("clamped_swiglu", b_.clamped_swiglu(g, o, r, n, a, l));
    }
    void causal_conv1d(const float *x, const WeightView &w, const float *si, float *so, float *y, int64_t n, int64_t c,
                       bool s) override {
        MST_PROFILED("causal_conv1d", b_.causal_conv1d(x, w, si, so, y, n, c, s));
    }
    void l2_norm(float *x, int64_t r, int64_t d, float e) override { MST_PROFILED("l2_norm", b_.l2_norm(x, r, d, e)); }
    void gated_delta_rule(const float *q, const float *k, const float *v, const float *g, const float *beta,
                          const float *si, float *so, float *o, const DeltaRuleShape &s) override {
        MST_PROFILED("gated_delta_rule", b_.gated_delta_rule(q, k, v, g, beta, si, so, o, s));
    }
    void rms_norm_gated(const float *x, const float *g, const WeightView &w, float e, float *y, int64_t r,
                        int64_t d) override {
        MST_PROFILED("rms_norm_gated", b_.rms_norm_gated(x, g, w, e, y, r, d));
    }
    void sigmoid_mul(float *x, const float *g, int64_t r, int64_t d, int64_t gd) override {
        MST_PROFILED("sigmoid_mul", b_.sigmoid_mul(x, g, r, d, gd));
    }
    void matmul_transposed(const WeightView &w, const float *x, float *y, int64_t n) override {
        MST_PROFILED("matmul_transposed", b_.matmul_transposed(w, x, y, n));
    }
    void matmul_block_fp8(const WeightView &w, const WeightView &s, int32_t br, int32_t bc, const float *x, float *y,
                          int64_t n) override {
        MST_PROFILED("matmul_block_fp8", b_.matmul_block_fp8(w, s, br, bc, x, y, n));
    }
    void latent_attention(const float *q, const float *c, float *o, const LatentAttentionParams &p) override {
        MST_PROFILED("latent_attention", b_.latent_attention(q, c, o, p));
    }
    void routed_swiglu(const float *h, float *out, int64_t n, int64_t hd, const SwigluExpertUse *e, size_t ne) override {
        MST_PROFILED("routed_swiglu", b_.routed_swiglu(h, out, n, hd, e, ne));
    }
    void begin_batch() override { MST_PROFILED("begin_batch", b_.begin_batch()); }
    void end_batch() override { MST_PROFILED("end_batch (runs the batch)", b_.end_batch()); }
    void sync() override { MST_PROFILED("sync (runs the batch so far)", b_.sync()); }
    void drop_results(const void *p, size_t bytes) override { b_.drop_results(p, bytes); }
    bool zeroed_scratch_vectors() const override { return b_.zeroed_scratch_vectors(); }
    void sync_reads(std::span<const HostSpan> reads) override {
        MST_PROFILED("sync_reads (runs the batch so far)", b_.sync_reads(reads));
    }
    void add(float *x, const float *y, int64_t n) override { MST_PROFILED("add", b_.add(x, y, n)); }
    void copy_rows(const float *s, int64_t ss, float *d, int64_t r, int64_t l) override {
        MST_PROFILED("copy_rows", b_.copy_rows(s, ss, d, r, l));
    }
    void softmax_topk(const float *l, int64_t n, int32_t e, int32_t k, bool r, int32_t *ids, float *w) override {
        MST_PROFILED("softmax_topk", vk_->softmax_topk(l, n, e, k, r, ids, w));
    }
    bool make_experts_resident(const SwigluExpertSet &set) override { return vk_->make_experts_resident(set); }
    bool experts_resident(int64_t l, int32_t e) override { return vk_->experts_resident(l, e); }
    void routed_swiglu_by_id(int64_t l, const float *h, float *o, int64_t hd, const int32_t *ids, const float *w,
                             int32_t k) override {
        MST_PROFILED("routed_swiglu_by_id", vk_->routed_swiglu_by_id(l, h, o, hd, ids, w, k));
    }
    bool routed_swiglu_by_id_add(int64_t l, const float *h, float *x, int64_t hd, const int32_t *ids, const float *w,
                                 int32_t k) override {
        bool added = false;
        MST_PROFILED("routed_swiglu_by_id_add", added = vk_->routed_swiglu_by_id_add(l, h, x, hd, ids, w, k));
        return added;
    }
    bool batch_by_id(int64_t l, int32_t e, int64_t n) override { return vk_->batch_by_id(l, e, n); }
    void routed_swiglu_batch_by_id(int64_t l, const float *h, float *o, int64_t n, int64_t hd, const int32_t *ids,
                                   const float *w, int32_t k) override {
        MST_PROFILED("routed_swiglu_batch_by_id", vk_->routed_swiglu_batch_by_id(l, h, o, n, hd, ids, w, k));
    }
#undef MST_PROFILED

private:
    VulkanBackend &b_;
    VulkanBackend *vk_;
};

// Device time by kernel (MST_VULKAN_PROFILE=2: a timestamp after every command of a
// submission) for decode steps of the path being measured, run on the backend itself so
// that every command is timed.
void print_dispatch_profile(VulkanBackend &gpu, const Model &m, int steps) {
    KvCache cache(m.layers, 300, int32_t(kKvHeads), int32_t(kHeadDim), int32_t(kHeadDim));
    std::vector<float> tok(static_cast<size_t>(kHidden), 0.5f), logits(static_cast<size_t>(kVocab));
    for (int t = 0; t < 2; ++t) forward(gpu, m, cache, tok.data(), 1, t, logits.data());
    CommandStream &stream = gpu.stream();
    stream.clear_dispatch_profile();
    const double gpu0 = gpu.gpu_seconds();
    const uint64_t barriers0 = stream.barriers(), subs0 = gpu.submissions();
    const auto t0 = Clock::now();
    for (int t = 0; t < steps; ++t) forward(gpu, m, cache, tok.data(), 1, 2 + t, logits.data());
    const double wall = seconds_since(t0) / steps;
    std::vector<std::pair<std::string, CommandStream::DispatchStat>> rows(stream.dispatch_profile().begin(),
                                                                          stream.dispatch_profile().end());
    std::sort(rows.begin(), rows.end(), [](const auto &a, const auto &b) { return a.second.seconds > b.second.seconds; });
    const double device = (gpu.gpu_seconds() - gpu0) / steps;
    const bool per_command = !rows.empty();
    std::printf("decode step on the backend itself (%s): %.2f ms wall, %.2f ms device, %.1f submissions, %.1f "
                "barriers; per layer: %.1f us device, %.1f barriers\n",
                per_command ? "MST_VULKAN_PROFILE=2: a timestamp after every command, which may serialize them"
                            : "MST_VULKAN_PROFILE=2 adds device time per command",
                wall * 1e3, device * 1e3, double(gpu.submissions() - subs0) / steps,
                double(stream.barriers() - barriers0) / steps, device / m.layers * 1e6,
                double(stream.barriers() - barriers0) / steps / m.layers);
    if (!per_command) return;
    std::printf("  %-44s %9s %10s %9s %7s\n", "command (shader grid)", "calls/stp", "us/step", "us/call", "share");
    for (const auto &[label, st] : rows)
        std::printf("  %-44s %9.1f %10.1f %9.2f %6.1f%%\n", label.c_str(), double(st.calls) / steps,
                    st.seconds / steps * 1e6, st.seconds / double(st.calls) * 1e6, 100.0 * st.seconds / steps / device);
}

const char *barrier_scope_name(CommandStream::BarrierScope s) {
    switch (s) {
        case CommandStream::BarrierScope::wide: return "wide";
        case CommandStream::BarrierScope::stages: return "stages";
        case CommandStream::BarrierScope::ranges: return "ranges";
    }
    return "?";
}

// --level-profile: where a normal run's device time goes, level by level (a level: the
// commands between two barriers), beside what the same commands cost serialized. Decode
// steps at `context` positions run on the backend itself, first with a timestamp after
// every command (CommandStream::Profile::commands: kicks and replay off, every command
// drained), then with timestamps only where a barrier already drains the device and at each
// command buffer's ends (Profile::levels: kicks and replay as in a normal run). Each level
// is printed with its real time and the sum of its commands' serialized times: a level of
// independent commands whose real time is below that sum ran them side by side; the rest
// of a step's wall time is device idle between command buffers (the host behind) or host
// time after the last one. docs/gpu_decode_kernels.md, "Where a real run's overlap goes".
void print_level_profile(VulkanBackend &gpu, const Model &m, int context, int steps) {
    CommandStream &stream = gpu.stream();
    const CommandStream::Profile was = stream.profile();
    KvCache cache(m.layers, context + 2 * steps + 8, int32_t(kKvHeads), int32_t(kHeadDim), int32_t(kHeadDim));
    std::vector<float> tok(static_cast<size_t>(kHidden), 0.5f), logits(static_cast<size_t>(kVocab));
    int32_t pos = context;
    // Steps under `p` after one step to record (replay's first recordings, the profile's
    // first command buffers); returns the wall time per step.
    auto profiled = [&](CommandStream::Profile p) {
        if (!stream.set_profile(p)) return -1.0;
        forward(gpu, m, cache, tok.data(), 1, pos++, logits.data());
        stream.clear_dispatch_profile();
        stream.clear_level_profile();
        const auto t0 = Clock::now();
        for (int t = 0; t < steps; ++t) forward(gpu, m, cache, tok.data(), 1, pos++, logits.data());
        return seconds_since(t0) / steps;
    };
    const double serialized_wall = profiled(CommandStream::Profile::commands);
    if (serialized_wall < 0) {
        std::printf("level profile: the device has no timestamps on its compute queue\n");
        return;
    }
    std::map<std::string, double> per_call;  // serialized seconds a call, by command label
    double serialized = 0;
    for (const auto &[label, st] : stream.dispatch_profile()) {
        per_call[label] = st.seconds / double(st.calls);
        if (label != "(end of submission)") serialized += st.seconds / steps;
    }
    const uint64_t subs0 = gpu.submissions(), kicks0 = stream.kicks(), barriers0 = stream.barriers();
    const double levels_wall = profiled(CommandStream::Profile::levels);
    const double subs = double(gpu.submissions() - subs0) / (steps + 1), kicks = double(stream.kicks() - kicks0) / (steps + 1);
    const double barriers = double(stream.barriers() - barriers0) / (steps + 1);
    stream.set_profile(was);
    struct Row {
        std::string label;
        double calls, real, serialized;  // per step; serialized < 0: a command not in the serialized run
    };
    std::vector<Row> rows;
    double real = 0, real_known = 0, serialized_known = 0;
    for (const auto &[label, st] : stream.level_profile()) {
        double sum = 0;
        bool known = true;
        for (size_t from = 0; from < label.size();) {
            const size_t to = std::min(label.find(" + ", from), label.size());
            const auto it = per_call.find(label.substr(from, to - from));
            if (it == per_call.end()) known = false;
            else sum += it->second;
            from = to + 3;
        }
        const double calls = double(st.calls) / steps;
        rows.push_back({label, calls, st.seconds / steps, known ? sum * calls : -1.0});
        real += st.seconds / steps;
        if (known) {
            real_known += st.seconds / steps;
            serialized_known += sum * calls;
        }
    }
    std::sort(rows.begin(), rows.end(), [](const Row &a, const Row &b) { return a.real > b.real; });
    const CommandStream::SubmissionProfile &sp = stream.submission_profile();
    std::printf("level profile of a resident decode step (%d layers, context %d, %d steps): wall %.3f ms a step with "
                "level timestamps (kicks every %u, barriers %s), %.3f ms with a timestamp after every command\n",
                m.layers, context, steps, levels_wall * 1e3, stream.kick_every(),
                barrier_scope_name(stream.barrier_scope()), serialized_wall * 1e3);
    std::printf("  per step: %.1f waited submissions + %.1f kicked, %.1f barriers; device busy %.3f ms in %.1f command "
                "buffers, idle between them %.3f ms (%.1f gaps; %.1f started before the one before ended)\n",
                subs, kicks, barriers, sp.busy_seconds / steps * 1e3, double(sp.timed) / steps,
                sp.idle_seconds / steps * 1e3, double(sp.idle_gaps) / steps, double(sp.queued_ahead) / steps);
    std::printf("  per layer (the head's included): levels' real time %.1f us against the serialized commands' %.1f us (levels whose "
                "commands were all timed: %.1f us real against %.1f us serialized, real/serialized %.2f)\n",
                real / m.layers * 1e6, serialized / m.layers * 1e6, real_known / m.layers * 1e6,
                serialized_known / m.layers * 1e6, serialized_known > 0 ? real_known / serialized_known : 0.0);
    std::printf("  %9s %11s %11s %9s  %s\n", "calls/stp", "real us/stp", "serial us", "real/ser", "level (its commands)");
    for (const Row &r : rows) {
        const std::string ser = r.serialized < 0 ? "-" : fmt::format("{:.1f}", r.serialized * 1e6);
        const std::string ratio = r.serialized <= 0 ? "-" : fmt::format("{:.2f}", r.real / r.serialized);
        std::printf("  %9.1f %11.1f %11s %9s  %s\n", r.calls, r.real * 1e6, ser.c_str(), ratio.c_str(), r.label.c_str());
    }
}

// Device time of one resident prefill of n tokens by shader (MST_VULKAN_PROFILE=2; grids
// folded together, since every expert's GEMM has its own), to find what a prefill waits on.
// The timestamps between commands serialize them: the sum is the device time the commands
// would take one after another, an upper bound on the overlapped run.
void print_prefill_profile(VulkanBackend &gpu, const Model &m, int n) {
    std::mt19937 rng(7);
    std::normal_distribution<float> dist(0.0f, 1.0f);
    std::vector<float> prompt(size_t(n) * kHidden), logits(static_cast<size_t>(kVocab));
    for (float &f : prompt) f = dist(rng);
    CommandStream &stream = gpu.stream();
    KvCache warm(m.layers, n + 8, int32_t(kKvHeads), int32_t(kHeadDim), int32_t(kHeadDim));
    forward(gpu, m, warm, prompt.data(), n, 0, logits.data());
    KvCache cache(m.layers, n + 8, int32_t(kKvHeads), int32_t(kHeadDim), int32_t(kHeadDim));
    stream.clear_dispatch_profile();
    const double gpu0 = gpu.gpu_seconds();
    const uint64_t subs0 = gpu.submissions();
    const auto t0 = Clock::now();
    forward(gpu, m, cache, prompt.data(), n, 0, logits.data());
    const double wall = seconds_since(t0), device = gpu.gpu_seconds() - gpu0;
    std::map<std::string, CommandStream::DispatchStat> by_shader;
    for (const auto &[label, st] : stream.dispatch_profile()) {
        CommandStream::DispatchStat &s = by_shader[label.substr(0, label.find(' '))];
        s.calls += st.calls;
        s.seconds += st.seconds;
    }
    std::vector<std::pair<std::string, CommandStream::DispatchStat>> rows(by_shader.begin(), by_shader.end());
    std::sort(rows.begin(), rows.end(), [](const auto &a, const auto &b) { return a.second.seconds > b.second.seconds; });
    std::printf("prefill of %d tokens on the backend itself (%d layers): %.2f ms wall (%.0f tok/s), %.2f ms device, "
                "%llu submissions; per layer %.1f us device\n",
                n, m.layers, wall * 1e3, n / wall, device * 1e3, (unsigned long long)(gpu.submissions() - subs0),
                device / m.layers * 1e6);
    if (!rows.empty()) {
        std::printf("  %-28s %11s %10s %9s %7s\n", "shader", "calls/layer", "us/layer", "us/call", "share");
        for (const auto &[name, st] : rows)
            std::printf("  %-28s %11.1f %10.1f %9.2f %6.1f%%\n", name.c_str(), double(st.calls) / m.layers,
                        st.seconds / m.layers * 1e6, st.seconds / double(st.calls) * 1e6, 100.0 * st.seconds / device);
    }
    // Wall time per backend op of the same prefill (host work, waits and device time of
    // synchronous ops together; a batch's ops charged to its sync), to split the time a
    // layer spends outside the kernels (the same path: the wrapper passes DeviceRouting and
    // DeviceExperts on).
    ProfilingBackend prof(gpu);
    KvCache cache2(m.layers, n + 8, int32_t(kKvHeads), int32_t(kHeadDim), int32_t(kHeadDim));
    const double gpu1 = gpu.gpu_seconds();
    const auto t1 = Clock::now();
    forward(prof, m, cache2, prompt.data(), n, 0, logits.data());
    const double wall1 = seconds_since(t1);
    std::printf("the same prefill by backend op (wall): %.2f ms wall, %.2f ms device\n", wall1 * 1e3,
                (gpu.gpu_seconds() - gpu1) * 1e3);
    for (const auto &[name, st] : prof.stats)
        std::printf("  %-28s %6.1f calls/layer %8.3f ms/layer (device %7.3f ms)\n", name.c_str(),
                    double(st.calls) / m.layers, st.seconds / m.layers * 1e3, st.device_seconds / m.layers * 1e3);
}

struct Result {
    double decode_tok_s = 0, prefill_tok_s = 0, decode_ms_layers = 0, decode_ms_head = 0;
    double hit_rate = -1, miss_bytes_per_token = 0, submissions_per_token = 0, kicks_per_token = 0;
    double by_id_layers_per_token = 0;  // layers whose experts the device chose (DeviceExperts)
    double decode_wait_ms = 0;          // per token, the host blocked on the device (CommandStream::wait_seconds)
    // Per token, CPU time of the thread that runs the forward pass: its host work, whatever
    // else shares the cores (on lavapipe the device's own threads run beside it).
    double decode_host_cpu_ms = 0;
    // Per decode token: upload bytes through the staging ring and the host ms of their
    // memcpy into it, and bytes the device copied straight from imported host memory.
    double decode_staged_bytes = 0, decode_memcpy_ms = 0, decode_direct_bytes = 0;
    // Per decode token, submissions whose command buffer was recorded earlier and run
    // again, and those recorded afresh (CommandStream::replayed/recorded).
    double replayed_per_token = 0, recorded_per_token = 0, record_ms = 0;
    // Bytes of results copied to host memory (CommandStream::delivered_bytes) and carried on
    // the device past a sync instead, per layer of the timed prefill and of a decode token.
    double prefill_delivered_per_layer = 0, prefill_carried_per_layer = 0;
    // The timed prefill: CPU time of the forward pass's thread (recording the ops, its own
    // code; on a GPU also the spin of its one wait, at most 5 ms), the host's time blocked
    // on the device, and FNV-1a of its logits (equal between two settings: the same bits).
    double prefill_host_cpu_ms = 0, prefill_wait_ms = 0, prefill_wall_ms = 0;
    uint64_t prefill_logits_hash = 0xcbf29ce484222325ull;
    double decode_delivered_per_layer = 0, decode_carried_per_layer = 0;
    // Device commands (dispatches, copies, fills) and barriers per layer of a decode token,
    // the head's included (what MST_VULKAN_DECODE_FUSION cuts).
    double decode_commands_per_layer = 0, decode_barriers_per_layer = 0;
    // Per decode token: batches submitted on the transfer lane, their bytes, and compute
    // submissions that waited on its semaphore (CommandStream::transfer, semaphore_waits).
    double transfer_batches_per_token = 0, transfer_bytes_per_token = 0, semaphore_waits_per_token = 0;
    // Per decode token: host seconds from a wait's return to the lane's first batch after it
    // (a streamed layer: the router's ids in host memory to its first copy submitted), summed,
    // and the waits so followed; compute command buffers kicked without a wait.
    double first_copy_delay_s_per_token = 0, first_copies_per_token = 0;
    // FNV-1a of every timed decode step's logits: equal between two settings means the
    // same results bit for bit (MST_VULKAN_TRANSFER_QUEUE=0 against 1, say).
    uint64_t logits_hash = 0xcbf29ce484222325ull;
    // Per decode token: waited submissions by what made them wait (CommandStream::waits).
    double waits_per_token[CommandStream::kWaitCauses] = {};
    std::map<std::string, uint64_t> partial_waits;  // over the timed decode (CommandStream::partial_waits)
    // Per decode token with --guess: expert parts copied ahead, then used, and evicted unused.
    double prefetched_per_token = 0, prefetch_used_per_token = 0, prefetch_wasted_per_token = 0;
};

void hash_bytes(uint64_t &h, const void *data, size_t n) {
    const auto *p = static_cast<const uint8_t *>(data);
    for (size_t i = 0; i < n; ++i) h = (h ^ p[i]) * 0x100000001b3ull;
}

// Decode n_decode tokens after a prompt of n_prefill, timing both; the lm_head's share
// is timed apart so that the layer time can be scaled to 48 layers.
// --mark-decode: lines on stderr where the timed decode starts and ends, so that a profiler
// attached to the forward pass's thread (perf record -t) covers only that.
bool g_mark_decode = false;

Result run(Backend &b, const Model &m, int n_prefill, int n_decode, int warmup_tokens) {
    Result r;
    KvCache cache(m.layers, n_prefill + n_decode + warmup_tokens + 8, int32_t(kKvHeads), int32_t(kHeadDim),
                  int32_t(kHeadDim));
    std::mt19937 rng(5);
    std::normal_distribution<float> dist(0.0f, 1.0f);
    std::vector<float> prompt(size_t(n_prefill) * kHidden), logits(static_cast<size_t>(kVocab)), tok(static_cast<size_t>(kHidden));
    for (float &f : prompt) f = dist(rng);
    auto *vk = dynamic_cast<VulkanBackend *>(&b);

    // Warm-up: pipelines and first uploads. A prefill touches nearly every expert, so in
    // the resident case everything is on the GPU afterwards.
    {
        KvCache warm(m.layers, n_prefill + warmup_tokens + 8, int32_t(kKvHeads), int32_t(kHeadDim), int32_t(kHeadDim));
        forward(b, m, warm, prompt.data(), n_prefill, 0, logits.data());
        for (int t = 0; t < warmup_tokens; ++t) {
            for (float &f : tok) f = dist(rng);
            forward(b, m, warm, tok.data(), 1, n_prefill + t, logits.data());
        }
    }
    const auto delivered = [&] { return vk ? double(vk->stream().delivered_bytes()) : 0.0; };
    const auto carried = [&] { return vk ? double(vk->stream().carried_bytes()) : 0.0; };
    double delivered0 = delivered(), carried0 = carried();
    const double prefill_wait0 = vk ? vk->stream().wait_seconds() : 0.0;
    const double prefill_cpu0 = op_profile_thread_cpu_seconds();
    auto t0 = Clock::now();
    forward(b, m, cache, prompt.data(), n_prefill, 0, logits.data());
    r.prefill_wall_ms = seconds_since(t0) * 1e3;
    r.prefill_tok_s = n_prefill / (r.prefill_wall_ms * 1e-3);
    r.prefill_host_cpu_ms = (op_profile_thread_cpu_seconds() - prefill_cpu0) * 1e3;
    r.prefill_wait_ms = vk ? (vk->stream().wait_seconds() - prefill_wait0) * 1e3 : 0.0;
    hash_bytes(r.prefill_logits_hash, logits.data(), logits.size() * sizeof(float));
    r.prefill_delivered_per_layer = (delivered() - delivered0) / m.layers;
    r.prefill_carried_per_layer = (carried() - carried0) / m.layers;
    delivered0 = delivered();
    carried0 = carried();

    const uint64_t subs0 = vk ? vk->submissions() : 0, kicks0 = vk ? vk->stream().kicks() : 0;
    const uint64_t by_id0 = vk ? vk->experts_by_id_calls() : 0;
    const double wait0 = vk ? vk->stream().wait_seconds() : 0.0;
    const double staged0 = vk ? double(vk->stream().staged_bytes()) : 0.0;
    const double direct0 = vk ? double(vk->stream().direct_bytes()) : 0.0;
    const double memcpy0 = vk ? vk->stream().staging_memcpy_seconds() : 0.0;
    const uint64_t replayed0 = vk ? vk->stream().replayed() : 0, recorded0 = vk ? vk->stream().recorded() : 0;
    const double record0 = vk ? vk->stream().record_seconds() : 0.0;
    const uint64_t commands0 = vk ? vk->stream().commands() : 0, barriers0 = vk ? vk->stream().barriers() : 0;
    const uint64_t hits0 = vk ? vk->expert_cache_stats().hits : 0, misses0 = vk ? vk->expert_cache_stats().misses : 0;
    const uint64_t lane_batches0 = vk ? vk->stream().transfer().submissions() : 0;
    const uint64_t lane_bytes0 = vk ? vk->stream().transfer().bytes() : 0;
    const uint64_t sem_waits0 = vk ? vk->stream().semaphore_waits() : 0;
    const double first_delay0 = vk ? vk->stream().transfer().first_copy_delay_seconds() : 0.0;
    const uint64_t first_copies0 = vk ? vk->stream().transfer().first_copies() : 0;
    const DeviceExpertCacheStats ahead0 = vk ? vk->device_expert_cache_stats() : DeviceExpertCacheStats{};
    uint64_t waits0[CommandStream::kWaitCauses] = {};
    for (size_t c = 0; vk && c < CommandStream::kWaitCauses; ++c) waits0[c] = vk->stream().waits(CommandStream::WaitCause(c));
    const std::map<std::string, uint64_t> partial0 = vk ? vk->stream().partial_waits() : std::map<std::string, uint64_t>{};
    t0 = Clock::now();
    double cpu_in_rng = 0;
    if (g_mark_decode) std::fprintf(stderr, "timed decode starts\n");
    const double cpu0 = op_profile_thread_cpu_seconds();
    for (int t = 0; t < n_decode; ++t) {
        const double c = op_profile_thread_cpu_seconds();
        for (float &f : tok) f = dist(rng);
        cpu_in_rng += op_profile_thread_cpu_seconds() - c;
        forward(b, m, cache, tok.data(), 1, n_prefill + t, logits.data());
        const double h0 = op_profile_thread_cpu_seconds();
        hash_bytes(r.logits_hash, logits.data(), logits.size() * sizeof(float));
        cpu_in_rng += op_profile_thread_cpu_seconds() - h0;
    }
    r.decode_host_cpu_ms = (op_profile_thread_cpu_seconds() - cpu0 - cpu_in_rng) / n_decode * 1e3;
    if (g_mark_decode) std::fprintf(stderr, "timed decode ends\n");
    const double decode_s = seconds_since(t0) / n_decode;
    // Before the head's own timing below, whose submissions are not a decode step's.
    const uint64_t decode_submissions = vk ? vk->submissions() - subs0 : 0;
    const uint64_t decode_kicks = vk ? vk->stream().kicks() - kicks0 : 0;
    for (size_t c = 0; vk && c < CommandStream::kWaitCauses; ++c)
        r.waits_per_token[c] = double(vk->stream().waits(CommandStream::WaitCause(c)) - waits0[c]) / n_decode;
    if (vk)
        for (const auto &[what, count] : vk->stream().partial_waits()) {
            const auto it = partial0.find(what);
            if (const uint64_t n = count - (it == partial0.end() ? 0 : it->second)) r.partial_waits[what] = n;
        }
    if (vk) {
        r.transfer_batches_per_token = double(vk->stream().transfer().submissions() - lane_batches0) / n_decode;
        r.transfer_bytes_per_token = double(vk->stream().transfer().bytes() - lane_bytes0) / n_decode;
        r.semaphore_waits_per_token = double(vk->stream().semaphore_waits() - sem_waits0) / n_decode;
        r.first_copy_delay_s_per_token = (vk->stream().transfer().first_copy_delay_seconds() - first_delay0) / n_decode;
        r.first_copies_per_token = double(vk->stream().transfer().first_copies() - first_copies0) / n_decode;
        const DeviceExpertCacheStats ahead1 = vk->device_expert_cache_stats();
        r.prefetched_per_token = double(ahead1.prefetched - ahead0.prefetched) / n_decode;
        r.prefetch_used_per_token = double(ahead1.prefetch_used - ahead0.prefetch_used) / n_decode;
        r.prefetch_wasted_per_token = double(ahead1.prefetch_wasted - ahead0.prefetch_wasted) / n_decode;
    }
    r.by_id_layers_per_token = vk ? double(vk->experts_by_id_calls() - by_id0) / n_decode : 0.0;
    r.decode_wait_ms = vk ? (vk->stream().wait_seconds() - wait0) / n_decode * 1e3 : 0.0;
    if (vk) {
        r.decode_staged_bytes = (double(vk->stream().staged_bytes()) - staged0) / n_decode;
        r.decode_direct_bytes = (double(vk->stream().direct_bytes()) - direct0) / n_decode;
        r.decode_memcpy_ms = (vk->stream().staging_memcpy_seconds() - memcpy0) / n_decode * 1e3;
    }
    r.replayed_per_token = vk ? double(vk->stream().replayed() - replayed0) / n_decode : 0.0;
    r.recorded_per_token = vk ? double(vk->stream().recorded() - recorded0) / n_decode : 0.0;
    r.record_ms = vk ? (vk->stream().record_seconds() - record0) / n_decode * 1e3 : 0.0;
    if (vk) {
        r.decode_commands_per_layer = double(vk->stream().commands() - commands0) / n_decode / m.layers;
        r.decode_barriers_per_layer = double(vk->stream().barriers() - barriers0) / n_decode / m.layers;
    }
    r.decode_delivered_per_layer = (delivered() - delivered0) / n_decode / m.layers;
    r.decode_carried_per_layer = (carried() - carried0) / n_decode / m.layers;
    // The head alone: final norm and the vocab product.
    std::vector<float> h(static_cast<size_t>(kHidden));
    t0 = Clock::now();
    for (int i = 0; i < 5; ++i) {
        b.rms_norm(tok.data(), m.final_norm_view, 0.0f, 1e-6f, h.data(), 1, kHidden);
        b.matmul(m.lm_head_view, h.data(), logits.data(), 1);
    }
    r.decode_ms_head = seconds_since(t0) / 5 * 1e3;
    r.decode_ms_layers = decode_s * 1e3 - r.decode_ms_head;
    if (vk) {
        const uint64_t hits = vk->expert_cache_stats().hits - hits0, misses = vk->expert_cache_stats().misses - misses0;
        r.hit_rate = hits + misses ? double(hits) / double(hits + misses) : 0.0;
        r.miss_bytes_per_token = double(misses) / n_decode * double(Model::expert_bytes()) / 3.0;
        r.submissions_per_token = double(decode_submissions) / n_decode;
        r.kicks_per_token = double(decode_kicks) / n_decode;
    }
    const double scaled_ms = r.decode_ms_layers * double(kModelLayers) / m.layers + r.decode_ms_head;
    r.decode_tok_s = 1e3 / scaled_ms;
    return r;
}

// --ab-overlap: the resident run again under each overlap setting of the stream (which kicks
// submit, what a barrier names), the settings interleaved over `rounds` rounds in this one
// process (one model, one backend): decode tok/s min / median / max, the commands, barriers,
// waits and kicks, and whether the decode logits are the same bits as the first setting's
// (the one the process started with). docs/gpu_decode_kernels.md, "Where a real run's
// overlap goes".
void ab_overlap(VulkanBackend &gpu, const Model &m, int n_prefill, int n_decode, int rounds) {
    CommandStream &stream = gpu.stream();
    struct Setting {
        std::string name;
        uint32_t kick_every;
        CommandStream::BarrierScope scope;
        std::vector<double> tok_s;
        Result last;
    };
    using Scope = CommandStream::BarrierScope;
    const uint32_t kick0 = stream.kick_every();
    const Scope scope0 = stream.barrier_scope();
    std::vector<Setting> settings = {
        {fmt::format("as started (kick every {}, barriers {})", kick0, barrier_scope_name(scope0)), kick0, scope0, {}, {}},
        {"MST_VULKAN_KICK_EVERY=2", 2, Scope::wide, {}, {}},
        {"MST_VULKAN_KICK_EVERY=4", 4, Scope::wide, {}, {}},
        {"MST_VULKAN_KICK_EVERY=0", 0, Scope::wide, {}, {}},
        {"MST_VULKAN_BARRIERS=stages", 1, Scope::stages, {}, {}},
        {"MST_VULKAN_BARRIERS=ranges", 1, Scope::ranges, {}, {}},
    };
    for (int r = 0; r < rounds; ++r)
        for (Setting &st : settings) {
            stream.set_kick_every(st.kick_every);
            stream.set_barrier_scope(st.scope);
            st.last = run(gpu, m, n_prefill, n_decode, 4);
            st.tok_s.push_back(st.last.decode_tok_s);
            std::printf("  overlap round %d, %-44s decode %.1f tok/s\n", r + 1, st.name.c_str(), st.last.decode_tok_s);
        }
    stream.set_kick_every(kick0);
    stream.set_barrier_scope(scope0);
    auto median = [](std::vector<double> v) {
        std::sort(v.begin(), v.end());
        return v.size() % 2 ? v[v.size() / 2] : 0.5 * (v[v.size() / 2 - 1] + v[v.size() / 2]);
    };
    const double base = median(settings[0].tok_s);
    std::printf("overlap settings, %d rounds interleaved (decode tok/s at 48 layers; per layer: commands, barriers; per "
                "token: waited submissions, kicks; logits against the first setting's):\n",
                rounds);
    for (const Setting &st : settings) {
        const auto [lo, hi] = std::minmax_element(st.tok_s.begin(), st.tok_s.end());
        std::printf("  %-44s %7.1f / %7.1f / %7.1f tok/s (x%.3f by median)  %5.1f cmd %5.1f bar  %4.1f waits %5.1f "
                    "kicks  %s\n",
                    st.name.c_str(), *lo, median(st.tok_s), *hi, median(st.tok_s) / base, st.last.decode_commands_per_layer,
                    st.last.decode_barriers_per_layer, st.last.submissions_per_token, st.last.kicks_per_token,
                    st.last.logits_hash == settings[0].last.logits_hash ? "same bits" : "LOGITS DIFFER");
    }
}

// Host memory bandwidth as the CPU backend sees it: every core reading its own part of a
// 2 GiB buffer with 64-bit loads (bytes read per second, the best of three).
double host_read_bandwidth() {
    const size_t n = size_t(1) << 28;  // 2 GiB of uint64
    std::vector<uint64_t> a(n);
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; ++i) a[i] = i;
    double best = 0;
    for (int rep = 0; rep < 3; ++rep) {
        const auto t0 = Clock::now();
        uint64_t x = 0;
#pragma omp parallel for reduction(^ : x) schedule(static)
        for (size_t i = 0; i < n; ++i) x ^= a[i];
        const double s = seconds_since(t0);
        if (x == 42) std::printf(" ");
        best = std::max(best, double(n) * 8 / s);
    }
    return best;
}

// The expert store imported into the backend (the device copies misses from it directly),
// or why not: the staging ring then (MST_VULKAN_HOST_IMPORT=0 to compare).
std::string import_experts(VulkanBackend &b, const Model &m) {
    std::string why;
    if (b.import_host_memory(m.experts.store.data(), m.experts.store.size(), why)) return "imported host memory";
    return "staging ring (" + why + ")";
}

// The options bench_vulkan takes: each valued one is followed by its value. Anything else
// on the command line is an error, so that a misspelt or retired option (a GPU call's
// script written for another branch) cannot silently measure the defaults.
struct ValuedOption {
    const char *name, *value;
};
constexpr ValuedOption kValuedOptions[] = {{"--layers", "1..48"},       {"--prefill", "N"},
                                           {"--decode", "N"},           {"--cpu-decode", "N"},
                                           {"--cpu-prefill", "N"},      {"--path", "device|host|both"}};
constexpr const char *kFlags[] = {"--no-cpu",        "--profile",      "--no-streamed", "--no-resident", "--mark-decode",
                                  "--guess",         "--ab-prefill-host", "--level-profile", "--ab-overlap"};
// --matvec-sweep's own.
constexpr ValuedOption kSweepValuedOptions[] = {
    {"--config", "CONFIG.json"}, {"--layers", "N"}, {"--rounds", "N"}, {"--bound", "E"}, {"--grid", "LxR,..."}};
constexpr const char *kSweepFlags[] = {"--matvec-sweep", "--no-other-q4-unit"};

template <size_t NV, size_t NF>
void check_options(int argc, char **argv, const ValuedOption (&valued_options)[NV], const char *const (&flags)[NF]) {
    auto flag = [&](const char *a) {
        return std::any_of(std::begin(flags), std::end(flags), [&](const char *n) { return std::strcmp(a, n) == 0; });
    };
    auto valued = [&](const char *a) {
        return std::any_of(std::begin(valued_options), std::end(valued_options),
                           [&](const ValuedOption &o) { return std::strcmp(a, o.name) == 0; });
    };
    for (int i = 1; i < argc; ++i) {
        if (flag(argv[i])) continue;
        if (!valued(argv[i])) {
            std::string known;
            for (const ValuedOption &o : valued_options) known += std::string(" ") + o.name + " " + o.value;
            for (const char *n : flags) known += std::string(" ") + n;
            throw std::runtime_error(std::string("unknown option '") + argv[i] + "'; bench_vulkan" +
                                     (flag("--matvec-sweep") ? " --matvec-sweep" : "") + " takes" + known);
        }
        if (i + 1 >= argc) throw std::runtime_error(std::string(argv[i]) + " needs a value");
        ++i;
    }
}

// The value of option `name` (a whole number in lo..hi), or def where it is not given.
int arg_int(int argc, char **argv, const char *name, int def, int lo, int hi) {
    for (int i = 1; i + 1 < argc; ++i)
        if (std::strcmp(argv[i], name) == 0) {
            char *end = nullptr;
            const long v = std::strtol(argv[i + 1], &end, 10);
            if (end == argv[i + 1] || *end != '\0' || v < lo || v > hi)
                throw std::runtime_error(std::string(name) + " must be a whole number in " + std::to_string(lo) +
                                         ".." + std::to_string(hi) + ", not '" + argv[i + 1] + "'");
            return int(v);
        }
    return def;
}
bool has_flag(int argc, char **argv, const char *name) {
    for (int i = 1; i < argc; ++i)
        if (std::strcmp(argv[i], name) == 0) return true;
    return false;
}

const char *arg_string(int argc, char **argv, const char *name, const char *def) {
    for (int i = 1; i + 1 < argc; ++i)
        if (std::strcmp(argv[i], name) == 0) return argv[i + 1];
    return def;
}

// --grid's comma-separated LANESxROWS[xPER_LANE] shapes (MatvecShape), each checked as
// MST_VULKAN_MATVEC_TUNING's are.
std::vector<MatvecShape> parse_grid(const std::string &list) {
    std::vector<MatvecShape> out;
    for (size_t at = 0; at <= list.size();) {
        const size_t comma = std::min(list.find(',', at), list.size());
        MatvecTuning t;
        std::string why;
        if (!parse_matvec_tuning("dense=" + list.substr(at, comma - at), MatvecTuning{}, t, why))
            throw std::runtime_error("--grid: " + why);
        out.push_back(t.dense);
        at = comma + 1;
    }
    return out;
}

// --matvec-sweep: the one-token product kernels' shapes at the config's shapes
// (bench/matvec_sweep.h), and the best tuning for MST_VULKAN_MATVEC_TUNING.
int matvec_sweep_main(int argc, char **argv) {
    check_options(argc, argv, kSweepValuedOptions, kSweepFlags);
    const std::string config = arg_string(argc, argv, "--config", "../shared/configs/qwen3-30b-a3b.json");
    const ModelConfig c = parse_model_config_file(config);
    matvec_sweep::ModelShape s;
    s.hidden = c.hidden_size;
    s.q_rows = c.n_heads * c.head_dim;
    s.kv_rows = c.n_kv_heads * c.head_dim;
    s.experts = c.n_experts;
    s.inter = c.moe_intermediate_size;
    s.top_k = c.n_experts_per_tok;
    s.vocab = c.vocab_size;
    if (s.experts < 1 || s.top_k < 1 || s.hidden % 32 != 0 || s.inter % 32 != 0)
        throw std::runtime_error(config + ": the sweep needs an MoE model (experts and top-k) whose hidden size (" +
                                 std::to_string(s.hidden) + ") and expert width (" + std::to_string(s.inter) +
                                 ") are whole q4 blocks of 32");
    matvec_sweep::Options opt;
    opt.layers = arg_int(argc, argv, "--layers", 4, 1, 1000);
    opt.model_layers = int(c.n_layers);
    opt.rounds = arg_int(argc, argv, "--rounds", 5, 1, 1000);
    opt.bound = std::atof(arg_string(argc, argv, "--bound", "1e-3"));
    if (const char *g = arg_string(argc, argv, "--grid", nullptr)) opt.grid = parse_grid(g);
    opt.other_q4_unit_row = !has_flag(argc, argv, "--no-other-q4-unit");
    // The sweep times each dispatch from the per-command profile, read when the backend is made.
    ::setenv("MST_VULKAN_PROFILE", "2", 1);
    std::setvbuf(stdout, nullptr, _IOLBF, 0);
    const uint64_t expert = uint64_t(3 * s.inter * (s.hidden / 32) * int64_t(sizeof(BlockQ4)));
    BackendOptions o;
    o.gpu_expert_cache_bytes = uint64_t(s.experts * opt.layers) * expert + (64ull << 20);
    VulkanBackend gpu(o, false);
    const auto t0 = Clock::now();
    const matvec_sweep::Model m(gpu, s, opt.layers);
    const MatvecTuning defaults = gpu.default_matvec_tuning();
    std::printf("matvec sweep on %s: %s (hidden %lld, q %lld, k/v %lld, %lld experts of %lld, top-%lld, vocab %lld), "
                "bf16 dense, q4 experts (%s units), %d of %d layers made in %.1f s\n",
                gpu.device_name().c_str(), config.c_str(), (long long)s.hidden, (long long)s.q_rows,
                (long long)s.kv_rows, (long long)s.experts, (long long)s.inter, (long long)s.top_k, (long long)s.vocab,
                gpu.q4_block() ? "whole-block" : "quarter-block (MST_VULKAN_Q4_BLOCK=0)", opt.layers, opt.model_layers,
                seconds_since(t0));
    std::printf("%zu shapes (default %s), %d rounds interleaved; device us per %d-layer token (the layers' time "
                "scaled, lm_head once; MST_VULKAN_PROFILE=2, a timestamp after every command); a shape whose results "
                "differ from the default's by more than %.0e (max |diff| / max |default|, per output) is wrong and "
                "not timed\n",
                opt.grid.size(), defaults.dense.name().c_str(), opt.rounds, opt.model_layers, opt.bound);
    const matvec_sweep::Report rep = matvec_sweep::run(gpu, m, opt);
    const char *what[matvec_sweep::kFamilies] = {
        "dense: q/k/v (norm folded), o (+ add), router (norm folded), lm_head, unfolded norms",
        "swiglu: the experts' gate+up+SwiGLU (matvec_id_swiglu)",
        "combine: the experts' down products and sum (matvec_id + combine_id, or matvec_id_combine with MST_VULKAN_COMBINE_IN_DOWN=1)"};
    for (int f = 0; f < matvec_sweep::kFamilies; ++f) {
        std::printf("\n%s\n  %-9s %8s %10s %10s %10s %8s  %s\n", what[f], "shape", "max err", "min us", "median us",
                    "max us", "vs def", "status");
        const double def = matvec_sweep::median(rep.rows[0].us[f]);
        for (const matvec_sweep::Row &r : rep.rows) {
            if (!r.ok()) {
                std::printf("  %-9s %8.1e %10s %10s %10s %8s  %s\n", r.name().c_str(), r.max_error, "-", "-", "-",
                            "-", r.status == "wrong" ? "WRONG (not timed)" : r.status.c_str());
                continue;
            }
            const double med = matvec_sweep::median(r.us[f]);
            const auto [lo, hi] = std::minmax_element(r.us[f].begin(), r.us[f].end());
            std::printf("  %-9s %8.1e %10.1f %10.1f %10.1f %7.2fx  ok\n", r.name().c_str(), r.max_error, *lo, med,
                        *hi, def / med);
        }
    }
    double def_total = 0, best_total = 0;
    const MatvecShape *best[matvec_sweep::kFamilies] = {&rep.best.dense, &rep.best.swiglu, &rep.best.combine};
    for (int f = 0; f < matvec_sweep::kFamilies; ++f) {
        def_total += matvec_sweep::median(rep.rows[0].us[f]);
        for (const matvec_sweep::Row &r : rep.rows)
            if (r.shape == *best[f] && !r.other_q4_unit && r.ok()) best_total += matvec_sweep::median(r.us[f]);
    }
    std::printf("\nbest tuning: %s: %.1f us of these kernels a token against the default's %.1f (%.2fx); its results "
                "against the default's: max error %.1e (%s)\n",
                rep.best.name().c_str(), best_total, def_total, def_total / best_total, rep.best_error,
                rep.best_error <= opt.bound ? "ok" : "WRONG");
    std::printf("BEST_MATVEC_TUNING=%s\n", rep.best_error <= opt.bound ? rep.best.name().c_str() : "default");
    return 0;
}

}  // namespace

int main(int argc, char **argv) try {
    if (has_flag(argc, argv, "--matvec-sweep")) return matvec_sweep_main(argc, argv);  // its own options
    check_options(argc, argv, kValuedOptions, kFlags);
    const int layers = arg_int(argc, argv, "--layers", 48, 1, 48);
    const int n_prefill = arg_int(argc, argv, "--prefill", 128, 1, 4096);
    const int n_decode = arg_int(argc, argv, "--decode", 32, 1, 4096);
    const int cpu_decode = arg_int(argc, argv, "--cpu-decode", 4, 1, 4096);
    const int cpu_prefill = arg_int(argc, argv, "--cpu-prefill", 32, 1, 4096);
    const bool skip_cpu = has_flag(argc, argv, "--no-cpu");
    const bool profile = has_flag(argc, argv, "--profile");
    const bool skip_streamed = has_flag(argc, argv, "--no-streamed");  // GPU minutes are scarce
    // --no-resident: the streamed scenario only (its roofline still takes the bandwidths
    // measured on the resident backend), for a GPU call that compares streamed settings.
    const bool skip_resident = has_flag(argc, argv, "--no-resident");
    g_mark_decode = has_flag(argc, argv, "--mark-decode");
    g_guess = has_flag(argc, argv, "--guess");
    // --ab-prefill-host: after the resident run, the same run four more times in this
    // process with the prefill's host work as before and as now (set_prefill_host: false,
    // true, true, false; MST_VULKAN_PREFILL_HOST's two settings), one model built for all.
    const bool ab_prefill_host = has_flag(argc, argv, "--ab-prefill-host");
    // --level-profile: after the resident run, its decode step level by level, real time
    // against the serialized commands' (print_level_profile).
    const bool level_profile = has_flag(argc, argv, "--level-profile");
    // --ab-overlap: after the resident run, the same run under each overlap setting,
    // interleaved over three rounds (ab_overlap).
    const bool overlap_ab = has_flag(argc, argv, "--ab-overlap");
    // --path device|host|both: the forward pass's execution (see Path); both compares them
    // in one run, the device path first.
    std::vector<Path> paths{Path::device};
    for (int i = 1; i + 1 < argc; ++i)
        if (std::strcmp(argv[i], "--path") == 0) {
            const std::string p = argv[i + 1];
            if (p == "host") paths = {Path::host};
            else if (p == "both") paths = {Path::device, Path::host};
            else if (p != "device") throw std::runtime_error("--path must be device, host or both, not '" + p + "'");
        }
    auto path_name = [](Path p) { return p == Path::device ? "device" : "host"; };
    Model m;
    auto t0 = Clock::now();
    build(m, layers);
    const double scale = double(kModelLayers) / layers;
    const uint64_t expert = Model::expert_bytes();
    // Bytes a decode step reads: dense weights and the top-k experts of every layer, the
    // lm_head once (norm vectors and the KV cache are small at these lengths).
    const double layer_bytes = double(m.dense_bytes_per_layer()) + double(kTopK) * double(expert);
    const double token_bytes = layer_bytes * kModelLayers + double(kVocab * kHidden * 2);
    std::printf("Qwen3-30B-A3B shapes, %d of %lld layers built (%.1f s); per-token times of the layers scaled by "
                "%.2f to 48 layers\n",
                layers, (long long)kModelLayers, seconds_since(t0), scale);
    std::printf("bytes per decode token (48 layers): %.2f GB (dense %.1f MB/layer, experts %d x %.2f MB/layer, "
                "lm_head %.0f MB)\n",
                token_bytes / 1e9, m.dense_bytes_per_layer() / 1e6, int(kTopK), expert / 1e6,
                kVocab * kHidden * 2 / 1e6);

    BackendOptions o;
    o.gpu_expert_cache_bytes = uint64_t(kExperts * layers) * expert + (64ull << 20);
    auto gpu = std::make_unique<VulkanBackend>(o, false);
    const std::string resident_uploads = import_experts(*gpu, m);
    const VulkanBandwidth bw = vulkan_measure_bandwidth(*gpu);
    std::printf("device: %s; device-memory bandwidth %.0f GB/s (shader copy, read + write), host-to-device %.1f GB/s, submit+wait %.1f us\n",
                gpu->device_name().c_str(), bw.device_bytes_per_s / 1e9, bw.host_to_device_bytes_per_s / 1e9,
                bw.submit_wait_us);
    std::printf("prefill GEMMs: tiling %s (MST_VULKAN_COOP_TUNING), f16 staging %s (MST_VULKAN_COOPMAT_PRECISION=split|exact|f16)\n",
                gemm_tunings_name(gpu->gemm_tuning(), gpu->gemm_tuning_grouped()).c_str(),
                coop_precision_name(gpu->coop_precision()));

    const double roof_res = bw.device_bytes_per_s / token_bytes;
    Result res;
    for (const Path path : skip_resident ? std::vector<Path>{} : paths) {
    g_path = path;
    const uint64_t split0 = gpu->split_attention_dispatches(), combined0 = gpu->fused_attention_combines();
    const uint64_t flash0 = gpu->flash_attention_dispatches(), blocked0 = gpu->blocked_attention_dispatches();
    res = run(*gpu, m, n_prefill, n_decode, 4);
    std::printf("vulkan resident (%s path): decode %.1f tok/s (%.2f ms layers x%.2f + %.2f ms head; %.0f submissions/token "
                "+ %.0f kicked without a wait at %d layers), roofline %.0f tok/s (%.1f%%); prefill %d tokens %.1f tok/s\n",
                path_name(path), res.decode_tok_s, res.decode_ms_layers, scale, res.decode_ms_head, res.submissions_per_token,
                res.kicks_per_token, layers,
                roof_res, 100.0 * res.decode_tok_s / roof_res, n_prefill, res.prefill_tok_s);
    std::printf("  expert uploads from %s\n", resident_uploads.c_str());
    std::printf("  routed experts chosen on the device (slot table, matvec_id): %.0f of %d layers per decode token%s\n",
                res.by_id_layers_per_token, layers,
                std::getenv("MST_VULKAN_EXPERTS_BY_ID") ? " (MST_VULKAN_EXPERTS_BY_ID set)" : "");
    // Where a decode token's wall time goes on the host: blocked on the device, or not
    // (recording, the forward pass's own code, while the kicked work runs).
    // The decode steps' logits hash: a switch that must keep the bits (MST_VULKAN_QKV_FUSION
    // and the other fusions) compares it across processes.
    std::printf("  decode token (unscaled, %d layers): %.2f ms wall, %.2f ms of it waiting for the device, %.2f ms "
                "host work beside it; decode logits hash %016llx\n",
                layers, res.decode_ms_layers + res.decode_ms_head, res.decode_wait_ms,
                res.decode_ms_layers + res.decode_ms_head - res.decode_wait_ms, (unsigned long long)res.logits_hash);
    // The submitting thread's own CPU time: on a loaded machine (or lavapipe, whose threads
    // compete for the cores) the wall time beside the wait also counts time not scheduled.
    std::printf("  decode token host CPU (the forward pass's thread): %.3f ms, %.1f us per layer\n",
                res.decode_host_cpu_ms, res.decode_host_cpu_ms * 1e3 / layers);
    std::printf("  command buffers per decode token: %.1f replayed, %.1f recorded afresh in %.3f ms of host time "
                "(replay %s; MST_VULKAN_REPLAY=0 records every one)\n",
                res.replayed_per_token, res.recorded_per_token, res.record_ms, gpu->stream().replay() ? "on" : "off");
    // What each waited submission of a decode token waited for, and the overlap settings
    // (docs/gpu_decode_kernels.md, "Where a real run's overlap goes").
    std::string causes;
    for (size_t c = 0; c < CommandStream::kWaitCauses; ++c)
        if (res.waits_per_token[c] > 0)
            causes += fmt::format("{}{} {:.2f}", causes.empty() ? "" : ", ",
                                  CommandStream::wait_cause_name(CommandStream::WaitCause(c)), res.waits_per_token[c]);
    std::printf("  waited submissions per decode token by cause: %s; kicks submit every %u (MST_VULKAN_KICK_EVERY), "
                "barriers %s (MST_VULKAN_BARRIERS)\n",
                causes.empty() ? "none" : causes.c_str(), gpu->stream().kick_every(),
                barrier_scope_name(gpu->stream().barrier_scope()));
    for (const auto &[what, count] : res.partial_waits)
        std::printf("    %.2f per decode token: %s\n", double(count) / n_decode, what.c_str());
    std::printf("  device work per layer of a decode token (the head's included): %.1f commands, %.1f barriers "
                "(decode fusion %s, attention fusion %s, MoE fusion %s, KV append fusion %s, router top-k fusion %s, "
                "q/k/v fusion %s; MST_VULKAN_DECODE_FUSION=0, MST_VULKAN_ATTENTION_FUSION=0, MST_VULKAN_MOE_FUSION=0, "
                "MST_VULKAN_KV_APPEND_FUSION=0, MST_VULKAN_ROUTER_TOPK_FUSION=0 and MST_VULKAN_QKV_FUSION=0 turn them "
                "off; L2 warm-up %s on %u workgroups, MST_VULKAN_L2_WARM=0|1|o|qkv, MST_VULKAN_L2_WARM_GROUPS=N)\n",
                res.decode_commands_per_layer, res.decode_barriers_per_layer, gpu->decode_fusion() ? "on" : "off",
                gpu->attention_fusion() ? "on" : "off", gpu->moe_fusion() ? "on" : "off",
                gpu->kv_append_fusion() ? "on" : "off", gpu->router_topk_fusion() ? "on" : "off",
                gpu->qkv_fusion() ? "on" : "off", VulkanBackend::l2_warm_name(gpu->l2_warm()), gpu->l2_warm_groups());
    // Which decode attention ran: split over blocks of positions (op_attention_split.cpp)
    // unless MST_VULKAN_SPLIT_ATTENTION=0 or the context is one block.
    // Item 1 of issue 17's third pass: only what the host reads goes to host memory
    // (MST_VULKAN_DELIVER_ALL=1 delivers every pending result at each sync, as before).
    // Where the timed prefill's wall time goes: the thread's CPU (host work) against the
    // device (MST_VULKAN_PREFILL_HOST=0 restores the host work this item cut, to compare).
    std::printf("  prefill (unscaled, %d layers): %.2f ms wall, %.2f ms of it waiting for the device; host CPU of the "
                "forward pass's thread %.2f ms, %.3f ms per layer; logits hash %016llx\n",
                layers, res.prefill_wall_ms, res.prefill_wait_ms, res.prefill_host_cpu_ms,
                res.prefill_host_cpu_ms / layers, (unsigned long long)res.prefill_logits_hash);
    std::printf("  results to host memory per layer: prefill %.0f bytes (%.0f carried on the device), decode %.0f "
                "bytes (%.0f carried)\n",
                res.prefill_delivered_per_layer, res.prefill_carried_per_layer, res.decode_delivered_per_layer,
                res.decode_carried_per_layer);
    std::printf("  decode attention split over positions: %llu calls, %llu of them merging the blocks in the first pass "
                "(MST_VULKAN_SPLIT_ATTENTION=0 for attention.comp, MST_VULKAN_ATTENTION_COMBINE_FUSION=0 for a combine "
                "dispatch)\n",
                (unsigned long long)(gpu->split_attention_dispatches() - split0),
                (unsigned long long)(gpu->fused_attention_combines() - combined0));
    // Which prefill attention ran: the cooperative-matrix kernel where the device has it
    // (op_attention_flash.cpp) unless MST_VULKAN_FLASH_ATTENTION=off, else the blocked one.
    std::printf("  prefill attention: %llu calls on cooperative matrices (attention_flash), %llu blocked "
                "(MST_VULKAN_FLASH_ATTENTION=auto|emulated|off)\n",
                (unsigned long long)(gpu->flash_attention_dispatches() - flash0),
                (unsigned long long)(gpu->blocked_attention_dispatches() - blocked0));
    if (ab_prefill_host && path == Path::device) {
        const bool was = gpu->prefill_host();
        for (const bool on : {false, true, true, false}) {
            gpu->set_prefill_host(on);
            const Result ab = run(*gpu, m, n_prefill, n_decode, 4);
            std::printf("  prefill host %s (MST_VULKAN_PREFILL_HOST=%d): prefill %d tokens %.1f tok/s, %.2f ms wall, %.2f "
                        "ms waiting, host CPU %.2f ms (%.3f per layer); logits hash %016llx; decode %.1f tok/s\n",
                        on ? "on " : "off", on ? 1 : 0, n_prefill, ab.prefill_tok_s, ab.prefill_wall_ms,
                        ab.prefill_wait_ms, ab.prefill_host_cpu_ms, ab.prefill_host_cpu_ms / layers,
                        (unsigned long long)ab.prefill_logits_hash, ab.decode_tok_s);
        }
        gpu->set_prefill_host(was);
    }
    if (level_profile && path == Path::device) print_level_profile(*gpu, m, n_prefill, 8);
    if (overlap_ab && path == Path::device) ab_overlap(*gpu, m, n_prefill, n_decode, 3);
    if (profile) {
        // Where a resident decode step's time goes (MST_VULKAN_PROFILE=1 adds device time,
        // 2 device time per command).
        ProfilingBackend prof(*gpu);
        KvCache cache(m.layers, 300, int32_t(kKvHeads), int32_t(kHeadDim), int32_t(kHeadDim));
        std::vector<float> tok(static_cast<size_t>(kHidden), 0.5f), logits(static_cast<size_t>(kVocab));
        for (int t = 0; t < 2; ++t) forward(prof, m, cache, tok.data(), 1, t, logits.data());
        prof.stats.clear();
        const double gpu0 = gpu->gpu_seconds();
        const int steps = 8;
        const auto profile_start = Clock::now();
        for (int t = 0; t < steps; ++t) forward(prof, m, cache, tok.data(), 1, 2 + t, logits.data());
        const double wall = seconds_since(profile_start) / steps;
        std::printf("profile of a resident decode step (%d layers): %.2f ms wall, %.2f ms device time\n", layers,
                    wall * 1e3, (gpu->gpu_seconds() - gpu0) / steps * 1e3);
        for (const auto &[name, st] : prof.stats)
            std::printf("  %-28s %6.1f calls %6.1f submissions %8.3f ms (device %7.3f ms)  %7.1f us/call\n",
                        name.c_str(), double(st.calls) / steps, double(st.submissions) / steps,
                        st.seconds / steps * 1e3, st.device_seconds / steps * 1e3, st.seconds / double(st.calls) * 1e6);
        print_dispatch_profile(*gpu, m, steps);
        if (n_prefill > 1) print_prefill_profile(*gpu, m, n_prefill);
    }
    }
    gpu.reset();

    o.gpu_expert_cache_bytes = uint64_t(kExperts * layers / 4) * expert;
    for (const Path path : skip_streamed ? std::vector<Path>{} : paths) {
    g_path = path;
    auto streamed = std::make_unique<VulkanBackend>(o, false);
    const std::string uploads = import_experts(*streamed, m);
    const Result st = run(*streamed, m, n_prefill, n_decode, 4);
    const double miss_bytes = st.miss_bytes_per_token * kModelLayers / layers;
    const double roof_st = 1.0 / (token_bytes / bw.device_bytes_per_s + miss_bytes / bw.host_to_device_bytes_per_s);
    std::printf("vulkan streamed (%s path): GPU expert budget %d of %lld experts/layer; hit rate %.1f%%, %.2f GB/token from "
                "host; decode %.1f tok/s, roofline %.1f tok/s (%.1f%%); prefill %.1f tok/s\n",
                path_name(path), int(kExperts / 4), (long long)kExperts, 100 * st.hit_rate, miss_bytes / 1e9, st.decode_tok_s, roof_st,
                100.0 * st.decode_tok_s / roof_st, st.prefill_tok_s);
    // Where a streamed layer's time goes (item 1 of issue 17's streamed part): the host
    // blocked on the device (the router's ids, and the layer's copies and compute before
    // them), the memcpy of missed experts into the staging ring, the rest of the host's
    // work (recording); the device's share of the copies at the measured bandwidth.
    const double per_layer = 1.0 / layers, wall_ms = st.decode_ms_layers + st.decode_ms_head;
    std::printf("  misses from %s; per layer of a decode token (unscaled, %d layers): %.3f ms wall, %.3f ms waiting "
                "for the device, %.3f ms memcpy into staging (%.1f MB staged, %.1f MB copied straight from host "
                "memory), %.3f ms other host work; the copies alone at %.1f GB/s: %.3f ms\n",
                uploads.c_str(), layers, wall_ms * per_layer, st.decode_wait_ms * per_layer, st.decode_memcpy_ms * per_layer,
                st.decode_staged_bytes * per_layer / 1e6, st.decode_direct_bytes * per_layer / 1e6,
                (wall_ms - st.decode_wait_ms - st.decode_memcpy_ms) * per_layer, bw.host_to_device_bytes_per_s / 1e9,
                (st.decode_staged_bytes + st.decode_direct_bytes) * per_layer / bw.host_to_device_bytes_per_s * 1e3);
    // Where the copies ran (MST_VULKAN_TRANSFER_QUEUE), and the decode's results as a hash
    // (equal hashes between settings: the same logits bit for bit).
    std::printf("  expert copies on %s: per layer %.2f lane batches, %.1f MB, %.2f compute submissions waiting on "
                "its semaphore; decode logits hash %016llx\n",
                streamed->stream().transfer_lane() ? streamed->context().transfer_queue_kind().c_str()
                                                   : "the compute queue (no transfer lane)",
                st.transfer_batches_per_token * per_layer, st.transfer_bytes_per_token * per_layer / 1e6,
                st.semaphore_waits_per_token * per_layer, (unsigned long long)st.logits_hash);
    // How soon a layer's copies start, and whether the hits' products and each miss's went
    // apart (MST_VULKAN_STREAM_OVERLAP; the kicks count the compute command buffers).
    std::printf("  stream overlap %s, %u missed experts a group (MST_VULKAN_STREAM_OVERLAP=0: the products behind all "
                "copies; MST_VULKAN_STREAM_GROUP=N): host from the router's ids to the first copy's submission %.1f us "
                "(%.2f per layer), %.2f compute command buffers kicked per layer\n",
                streamed->stream_overlap() ? "on" : "off", streamed->stream_group(),
                st.first_copies_per_token > 0 ? st.first_copy_delay_s_per_token / st.first_copies_per_token * 1e6 : 0.0,
                st.first_copies_per_token * per_layer, st.kicks_per_token * per_layer);
    if (g_guess)
        std::printf("  --guess: per layer %.2f expert parts copied ahead, %.2f used, %.2f evicted unused "
                    "(MST_VULKAN_EXPERT_PREFETCH=0 copies none)\n",
                    st.prefetched_per_token * per_layer, st.prefetch_used_per_token * per_layer,
                    st.prefetch_wasted_per_token * per_layer);
    }
    g_path = Path::device;

    if (!skip_cpu) {
        const double host_bw = host_read_bandwidth();
        const std::unique_ptr<Backend> cpu = create_backend("cpu", 0);
        const Result c = run(*cpu, m, cpu_prefill, cpu_decode, 1);
        const double roof_cpu = host_bw / token_bytes;
        std::printf("cpu (%d threads): host read bandwidth %.0f GB/s; decode %.2f tok/s, roofline %.1f tok/s (%.1f%%); "
                    "prefill %d tokens %.1f tok/s\n",
                    cpu->n_threads(), host_bw / 1e9, c.decode_tok_s, roof_cpu, 100.0 * c.decode_tok_s / roof_cpu,
                    cpu_prefill, c.prefill_tok_s);
        if (!skip_resident)
            std::printf("vulkan (%s path) / cpu: decode %.1fx, prefill %.1fx\n", path_name(paths.back()), res.decode_tok_s / c.decode_tok_s,
                    res.prefill_tok_s / c.prefill_tok_s);
    }
    return 0;
} catch (const std::exception &e) {
    std::fprintf(stderr, "bench_vulkan: %s\n", e.what());
    return 1;
}
