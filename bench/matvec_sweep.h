// The shape sweep of bench_vulkan --matvec-sweep (docs/gpu_decode_kernels.md, "Choosing the
// one-token kernels' shapes"): the one-token product kernels of a resident decode step at a
// model's shapes (bf16 dense weights, q4 experts, as bench_vulkan), under each LANES x ROWS
// (x PER_LANE) of a grid (MatvecShape, MST_VULKAN_MATVEC_TUNING's values), every family at
// the shape at once (MatvecTuning::at). Each layer
// records what MoeDecoder's decode records around attention: the input
// norm and the q, k and v products (folded: matvec_norm), the o product and the residual
// add (matvec_add), the post-attention norm and the router's product, the routed experts
// (matvec_id_swiglu, matvec_id_combine, the ids given); then the final norm and lm_head.
// Every shape's results are checked against the default tuning's first; one that strays is
// reported wrong and not timed. The others are timed in rounds, each shape once a round in
// the grid's order (interleaved, so the machine's drift falls on all alike), by the device
// time of each family's dispatches from the per-command profile (MST_VULKAN_PROFILE=2, set
// before the backend is made). The best shape of each family, by median, makes the tuning
// printed for MST_VULKAN_MATVEC_TUNING, whose results are checked once more. A row of the
// default shape with quarter-block q4 units (MST_VULKAN_Q4_BLOCK=0) is timed beside them.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "backends/backend.h"
#include "backends/device_experts.h"
#include "backends/vulkan/matvec_tuning.h"
#include "backends/vulkan/vulkan_backend.h"
#include "core/dtype.h"
#include "core/error.h"
#include "core/quant.h"

namespace mst::matvec_sweep {

// A model's one-token product shapes (from its config.json in bench_vulkan).
struct ModelShape {
    int64_t hidden = 0, q_rows = 0, kv_rows = 0;  // q_rows: heads x head_dim; kv_rows: kv heads x head_dim
    int64_t experts = 0, inter = 0, top_k = 0, vocab = 0;
    float eps = 1e-6f;
};

enum Family { kDense, kSwiglu, kCombine, kFamilies };
inline const char *family_name(int f) { return f == kDense ? "dense" : f == kSwiglu ? "swiglu" : "combine"; }

// Which family a profile key ("<shader variant> <grid>") is charged to, or -1. Dense: the
// products and their folded forms, and what a shape sends elsewhere, as its cost belongs
// to the choice: the norms a product did not fold (more than 256 invocations keep the
// norm's own dispatch) and matmul.comp (a product of more than 65535 workgroups of rows,
// lm_head at ROWS 1 or 2, keeps it).
// Combine: the down products and their sum, in one dispatch (matvec_id_combine,
// MST_VULKAN_COMBINE_IN_DOWN=1) or as matvec_id at the combine family's shape and combine_id
// (the default); with the MoE fusion on (the sweep's), matvec_id runs only the down products.
inline int family_of(const std::string &key) {
    if (key.rfind("matvec_id_swiglu", 0) == 0) return kSwiglu;
    if (key.rfind("matvec_id", 0) == 0 || key.rfind("combine_id", 0) == 0) return kCombine;
    if (key.rfind("matvec_", 0) == 0 || key.rfind("norm", 0) == 0 || key.rfind("matmul", 0) == 0) return kDense;
    return -1;
}

// LANES 8, 16, 32, 64 x ROWS 1, 2, 4, 8: below, at and above a 32-wide subgroup, one row to
// a workgroup of 512 invocations; then shapes of several rows a lane (LxRxP, matvec_rows.glsl,
// matvec_id_swiglu.comp), most of 128 invocations,
// which keep the router's top-k in its product (op_routing.cpp), and one of 256.
inline std::vector<MatvecShape> default_grid() {
    std::vector<MatvecShape> g;
    for (uint32_t lanes : {8u, 16u, 32u, 64u})
        for (uint32_t rows : {1u, 2u, 4u, 8u}) g.push_back(MatvecShape{lanes, rows});
    for (const MatvecShape &s : {MatvecShape{32, 4, 2}, MatvecShape{32, 4, 4}, MatvecShape{32, 4, 8},
                                 MatvecShape{64, 2, 2}, MatvecShape{64, 2, 4}, MatvecShape{16, 8, 2},
                                 MatvecShape{16, 8, 4}, MatvecShape{128, 1, 4}, MatvecShape{32, 8, 2}})
        g.push_back(s);
    return g;
}

struct Options {
    int layers = 4;         // layers recorded a run (their own weights; the experts' bytes shared, keyed per layer)
    int model_layers = 48;  // per-token times: the layers' time x model_layers / layers, plus lm_head once
    int rounds = 5;
    double bound = 1e-3;  // max |result - default's| / max |default's|, per output
    std::vector<MatvecShape> grid = default_grid();
    // A row of the default shape with the other q4 unit than the backend's (whole blocks
    // where it takes quarter blocks, the default, or the reverse), timed with the others:
    // what the units' choice is worth, in the same run.
    bool other_q4_unit_row = true;
    // Tests: called with each run's outputs (to make a shape's results go wrong).
    std::function<void(VulkanBackend &, std::vector<std::vector<float>> &)> after_run;
};

struct Row {
    MatvecShape shape;
    // The other q4 unit than the backend's (MST_VULKAN_Q4_BLOCK): whole blocks ("q4/1") where
    // the backend takes quarter blocks, else quarter blocks ("q4/4"); never a tuning the
    // sweep picks, a comparison of the units at the default shape.
    bool other_q4_unit = false;
    bool q4_block = false;  // the unit this row ran with
    std::string name() const { return shape.name() + (other_q4_unit ? (q4_block ? " q4/1" : " q4/4") : ""); }
    std::string status = "ok";  // ok, wrong (not timed), or "not run: why"
    double max_error = 0;
    std::vector<double> us[kFamilies];  // device us per model token, a value per round
    bool ok() const { return status == "ok"; }
};

inline double median(std::vector<double> v) {
    if (v.empty()) return NAN;
    std::sort(v.begin(), v.end());
    return v.size() % 2 ? v[v.size() / 2] : 0.5 * (v[v.size() / 2 - 1] + v[v.size() / 2]);
}

// max over outputs of max |got - want| / max |want| (infinite for a NaN or a size that differs).
inline double max_error(const std::vector<std::vector<float>> &got, const std::vector<std::vector<float>> &want) {
    if (got.size() != want.size()) return INFINITY;
    double worst = 0;
    for (size_t o = 0; o < want.size(); ++o) {
        if (got[o].size() != want[o].size()) return INFINITY;
        double scale = 0, d = 0;
        for (size_t i = 0; i < want[o].size(); ++i) {
            scale = std::max(scale, double(std::fabs(want[o][i])));
            const double e = std::fabs(double(got[o][i]) - double(want[o][i]));
            if (!(e == e)) return INFINITY;
            d = std::max(d, e);
        }
        worst = std::max(worst, scale > 0 ? d / scale : d);
    }
    return worst;
}

// Random weights at the shapes (xorshift: gigabytes at the real shapes fill in seconds).
class Model {
public:
    Model(VulkanBackend &b, const ModelShape &s, int layers) : s_(s), layers_(layers) {
        const float dense = 1.0f / std::sqrt(float(s.hidden));
        for (int l = 0; l < layers; ++l) {
            Layer L;
            const uint32_t seed = uint32_t(16 * l);
            L.q = bf16(s.q_rows, s.hidden, seed + 1, dense);
            L.k = bf16(s.kv_rows, s.hidden, seed + 2, dense);
            L.v = bf16(s.kv_rows, s.hidden, seed + 3, dense);
            L.o = bf16(s.hidden, s.q_rows, seed + 4, dense);
            L.router = bf16(s.experts, s.hidden, seed + 5, 4.0f * dense);
            L.in_norm = bf16(1, s.hidden, seed + 6, 1.0f);
            L.post_norm = bf16(1, s.hidden, seed + 7, 1.0f);
            layer_.push_back(std::move(L));
        }
        final_norm_ = bf16(1, s.hidden, 98, 1.0f);
        lm_head_ = bf16(s.vocab, s.hidden, 99, dense);
        // One expert store, its parts keyed per layer (a copy per layer on the device).
        const int64_t part = s.inter * (s.hidden / 32) * int64_t(sizeof(BlockQ4));
        experts_.resize(size_t(3 * part * s.experts));
        for (int64_t e = 0; e < s.experts; ++e)
            for (int p = 0; p < 3; ++p)
                fill_q4(experts_.data() + (3 * e + p) * part, p < 2 ? s.inter : s.hidden, p < 2 ? s.hidden : s.inter,
                        uint32_t(1000 + 3 * e + p), p < 2 ? dense : 1.0f / std::sqrt(float(s.inter)));
        DeviceExperts *by_id = device_experts(b);
        if (!by_id) fail(MST_ERR_UNSUPPORTED, "matvec sweep: the backend does not choose experts on the device");
        for (int l = 0; l < layers; ++l) {
            std::vector<WeightView> views[3];
            for (int64_t e = 0; e < s.experts; ++e)
                for (int p = 0; p < 3; ++p) {
                    WeightView w{DType::Q4, experts_.data() + (3 * e + p) * part, p < 2 ? s.inter : s.hidden,
                                 p < 2 ? s.hidden : s.inter};
                    w.stable = true;
                    w.expert_key = make_expert_key(l, e, p);
                    views[p].push_back(w);
                }
            const SwigluExpertSet set{l, int32_t(s.experts), views[0].data(), views[1].data(), views[2].data(),
                                      uint64_t(3 * part * s.experts * layers)};
            if (!by_id->make_experts_resident(set))
                fail(MST_ERR_UNSUPPORTED,
                     "matvec sweep: layer {}'s {} experts do not fit the GPU expert budget (or MST_VULKAN_EXPERTS_BY_ID=0)",
                     l, s.experts);
            expert_views_.push_back({std::move(views[0]), std::move(views[1]), std::move(views[2])});
            // Each layer's top-k: distinct ids spread over the experts, weights summing to 1.
            std::vector<int32_t> ids;
            for (int64_t j = 0; j < s.top_k; ++j) ids.push_back(int32_t((j * 37 + l * 11) % s.experts));
            std::sort(ids.begin(), ids.end());
            ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
            ids_.push_back(ids);
            weights_.emplace_back(ids.size(), 1.0f / float(ids.size()));
        }
        x0_.resize(size_t(s.hidden));
        attn_.resize(size_t(s.q_rows));
        uint64_t r = 12345;
        for (float &v : x0_) v = float(next(r) >> 40) / float(1 << 24) * 2.0f - 1.0f;
        for (float &v : attn_) v = float(next(r) >> 40) / float(1 << 24) * 2.0f - 1.0f;
    }

    // One decode step's products: the layers' outputs (q, k, v, router logits each, then the
    // residual stream) and the logits; seconds[f] the device time charged to family f (the
    // layers scaled to model_layers, lm_head once).
    void run(VulkanBackend &b, std::vector<std::vector<float>> &out, double (&seconds)[kFamilies],
             int model_layers) const {
        const int64_t H = s_.hidden;
        out.assign(size_t(4 * layers_ + 2), {});
        std::vector<float> x = x0_, h(static_cast<size_t>(H)), h2(static_cast<size_t>(H)), y(static_cast<size_t>(H));
        CommandStream &stream = b.stream();
        stream.clear_dispatch_profile();
        {
            BackendBatch batch(b);
            for (int l = 0; l < layers_; ++l) {
                const Layer &L = layer_[size_t(l)];
                std::vector<float> *o = &out[size_t(4 * l)];
                o[0].resize(size_t(s_.q_rows));
                o[1].resize(size_t(s_.kv_rows));
                o[2].resize(size_t(s_.kv_rows));
                o[3].resize(size_t(s_.experts));
                b.rms_norm(x.data(), view(L.in_norm, 1, H), 0.0f, s_.eps, h.data(), 1, H);
                b.matmul(view(L.q, s_.q_rows, H), h.data(), o[0].data(), 1);
                b.matmul(view(L.k, s_.kv_rows, H), h.data(), o[1].data(), 1);
                b.matmul(view(L.v, s_.kv_rows, H), h.data(), o[2].data(), 1);
                b.matmul(view(L.o, H, s_.q_rows), attn_.data(), y.data(), 1);
                b.add(x.data(), y.data(), H);
                b.rms_norm(x.data(), view(L.post_norm, 1, H), 0.0f, s_.eps, h2.data(), 1, H);
                b.matmul(view(L.router, s_.experts, H), h2.data(), o[3].data(), 1);
                const std::vector<int32_t> &ids = ids_[size_t(l)];
                if (!device_experts(b)->routed_swiglu_by_id_add(l, h2.data(), x.data(), H, ids.data(),
                                                                weights_[size_t(l)].data(), int32_t(ids.size())))
                    fail(MST_ERR_UNSUPPORTED, "matvec sweep: the fused experts are off (MST_VULKAN_MOE_FUSION=0)");
            }
        }
        double layers[kFamilies] = {0, 0, 0};
        charge(stream, layers);
        stream.clear_dispatch_profile();
        std::vector<float> &logits = out.back();
        logits.resize(size_t(s_.vocab));
        {
            BackendBatch batch(b);
            b.rms_norm(x.data(), view(final_norm_, 1, H), 0.0f, s_.eps, h.data(), 1, H);
            b.matmul(view(lm_head_, s_.vocab, H), h.data(), logits.data(), 1);
        }
        double head[kFamilies] = {0, 0, 0};
        charge(stream, head);
        out[out.size() - 2] = x;
        for (int f = 0; f < kFamilies; ++f) seconds[f] = layers[f] * model_layers / layers_ + head[f];
    }

private:
    struct Layer {
        std::vector<uint16_t> q, k, v, o, router, in_norm, post_norm;
    };
    static uint64_t next(uint64_t &s) {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        return s;
    }
    static std::vector<uint16_t> bf16(int64_t rows, int64_t cols, uint32_t seed, float scale) {
        std::vector<uint16_t> v(size_t(rows * cols));
        uint64_t s = seed * 0x9E3779B97F4A7C15ull + 1;
        for (uint16_t &x : v) x = f32_to_bf16((float(next(s) >> 40) / float(1 << 24) * 2.0f - 1.0f) * scale);
        return v;
    }
    // Q4 blocks of random codes, scale and minimum so that values are about +-scale.
    static void fill_q4(uint8_t *out, int64_t rows, int64_t cols, uint32_t seed, float scale) {
        uint64_t s = seed * 0x9E3779B97F4A7C15ull + 7;
        auto *b = reinterpret_cast<BlockQ4 *>(out);
        const uint16_t d = float_to_half(scale / 7.5f), m = float_to_half(-scale);
        for (int64_t i = 0; i < rows * (cols / 32); ++i) {
            b[i].d = d;
            b[i].m = m;
            for (int j = 0; j < 16; j += 8) {
                const uint64_t r = next(s);
                std::memcpy(b[i].q + j, &r, 8);
            }
        }
    }
    static WeightView view(const std::vector<uint16_t> &v, int64_t rows, int64_t cols) {
        WeightView w{DType::BF16, v.data(), rows, cols};
        w.stable = true;
        return w;
    }
    static void charge(const CommandStream &stream, double (&seconds)[kFamilies]) {
        for (const auto &[key, stat] : stream.dispatch_profile())
            if (const int f = family_of(key); f >= 0) seconds[f] += stat.seconds;
    }

    ModelShape s_;
    int layers_;
    std::vector<Layer> layer_;
    std::vector<uint16_t> final_norm_, lm_head_;
    std::vector<uint8_t> experts_;
    std::vector<std::array<std::vector<WeightView>, 3>> expert_views_;  // the slot tables were made from these
    std::vector<std::vector<int32_t>> ids_;
    std::vector<std::vector<float>> weights_;
    std::vector<float> x0_, attn_;
};

struct Report {
    std::vector<Row> rows;  // the default shape first
    MatvecTuning best;      // each family's fastest shape by median
    double best_error = 0;  // the best tuning's results against the default's
};

// Runs the sweep (the backend's tuning is the default's afterwards). Needs
// MST_VULKAN_PROFILE=2 set before the backend was made.
inline Report run(VulkanBackend &b, const Model &m, const Options &opt) {
    const MatvecTuning defaults = b.default_matvec_tuning();
    Report rep;
    rep.rows.emplace_back();
    rep.rows.back().shape = defaults.dense;
    for (const MatvecShape &s : opt.grid)
        if (!(s == defaults.dense)) {
            rep.rows.emplace_back();
            rep.rows.back().shape = s;
        }
    if (opt.other_q4_unit_row) {
        rep.rows.emplace_back();
        rep.rows.back().shape = defaults.dense;
        rep.rows.back().other_q4_unit = true;
    }
    const bool q4_block = b.q4_block();  // the backend's own setting (MST_VULKAN_Q4_BLOCK)
    for (Row &r : rep.rows) r.q4_block = r.other_q4_unit ? !q4_block : q4_block;
    std::string why;
    std::vector<std::vector<float>> want, got;
    double sec[kFamilies];
    auto run_once = [&](std::vector<std::vector<float>> &out) {
        m.run(b, out, sec, opt.model_layers);
        if (opt.after_run) opt.after_run(b, out);
    };
    b.set_matvec_tuning(defaults, why);
    run_once(want);
    bool profiled = false;
    for (double s : sec) profiled = profiled || s > 0;
    if (!profiled) fail(MST_ERR_INTERNAL, "matvec sweep: no profiled dispatch (is MST_VULKAN_PROFILE=2 set?)");
    for (Row &r : rep.rows) {
        if (!b.set_matvec_tuning(MatvecTuning::at(r.shape), why)) {
            r.status = "not run: " + why;
            continue;
        }
        b.set_q4_block(r.q4_block);
        try {
            run_once(got);
        } catch (const Error &e) {
            r.status = std::string("not run: ") + e.what();
            continue;
        }
        r.max_error = max_error(got, want);
        if (!(r.max_error <= opt.bound)) r.status = "wrong";
    }
    for (int round = 0; round < opt.rounds; ++round)
        for (Row &r : rep.rows) {
            if (!r.ok()) continue;
            b.set_matvec_tuning(MatvecTuning::at(r.shape), why);
            b.set_q4_block(r.q4_block);
            run_once(got);
            for (int f = 0; f < kFamilies; ++f) r.us[f].push_back(sec[f] * 1e6);
        }
    rep.best = defaults;
    MatvecShape *best[kFamilies] = {&rep.best.dense, &rep.best.swiglu, &rep.best.combine};
    for (int f = 0; f < kFamilies; ++f) {
        double fastest = INFINITY;
        for (const Row &r : rep.rows)
            if (r.ok() && !r.other_q4_unit && median(r.us[f]) < fastest) {
                fastest = median(r.us[f]);
                *best[f] = r.shape;
            }
    }
    b.set_q4_block(q4_block);
    b.set_matvec_tuning(rep.best, why);
    run_once(got);
    rep.best_error = max_error(got, want);
    b.set_matvec_tuning(defaults, why);
    return rep;
}

}  // namespace mst::matvec_sweep
