// Where a prefill's device time goes, op by op, on the Qwen3-30B-A3B shapes (bench_vulkan's
// model): the attention products (bf16), one expert's products at its share of a prompt
// (q4, 512 x 8 / 128 = 32 tokens), and attention over the prompt, under each GEMM kernel
// the device has (docs/gpu_prefill.md). Each op is timed as a chain inside one backend
// batch, every op reading the previous one's result on the device (so no upload or
// download is timed): the batch's wall time at 2R + 1 ops minus at 1, over 2R. Last, in the
// same way, one decode step's attention at long contexts, with attention.comp and split over
// positions (op_attention_split.cpp; its first pass per key or per key row), interleaved. First, with --decode, the products of
// one decode token (q/k/v/o, router, lm_head: bf16 as bench_vulkan's model, and q/k/v/o in
// f32, q8 and q4) with the bytes they read per second against the device's copy bandwidth.
//
// With --sweep, only the tuning sweep of the prefill GEMMs (bench/gemm_sweep.h,
// sweep_tunings below): main's kernel against each MST_VULKAN_COOP_TUNING value of --tunings
// (default: every one with workgroups of at most 64 rows), checked then timed, and the best.
//
//   build/bench/bench_vulkan_prefill [--tokens 512] [--reps 10] [--contexts 128,512,2048,8192]
//                                    [--decode] [--no-prefill]
// With --attention, only the prefill attention's kernels compared by device time
// (bench/attention_compare.h): the blocked kernel against the cooperative-matrix one.
//
//   build/bench/bench_vulkan_prefill --attention [--tokens 512] [--rounds 20] [--bound 1e-2] [--emulated]
//   build/bench/bench_vulkan_prefill --sweep [--tokens 512] [--experts 128] [--rounds 5]
//                                    [--tunings 2x2x2x32,4x1x1x64,2x2x1x32x32,...] [--bound 1e-2]
// Both first print the device's cooperative-matrix rate (backends/vulkan/vulkan_coopmat_rate.h),
// the products' roofline; --coopmat-rate prints only that.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "backends/vulkan/gemm_tuning.h"
#include "backends/vulkan/vulkan_backend.h"
#include "backends/vulkan/vulkan_coopmat_rate.h"
#include "bench/attention_compare.h"
#include "bench/gemm_sweep.h"
#include "backends/vulkan/vulkan_bandwidth.h"
#include "core/dtype.h"
#include "core/error.h"
#include "core/quant.h"

using namespace mst;
using Clock = std::chrono::steady_clock;

namespace {

constexpr int64_t kHidden = 2048, kHeads = 32, kKvHeads = 4, kHeadDim = 128, kInter = 768;
constexpr int64_t kExperts = 128, kTopK = 8;

struct Weight {
    std::vector<uint8_t> bytes;
    WeightView view;
    Weight() = default;
    Weight(DType t, int64_t rows, int64_t cols, uint32_t seed) {
        std::mt19937 rng(seed);
        std::uniform_real_distribution<float> dist(-1.0f / std::sqrt(float(cols)), 1.0f / std::sqrt(float(cols)));
        std::vector<float> f(size_t(rows * cols));
        for (float &v : f) v = dist(rng);
        const uint64_t row_bytes = dtype_row_bytes(t, cols);
        bytes.resize(size_t(row_bytes * uint64_t(rows)));
        for (int64_t r = 0; r < rows; ++r) {
            if (t == DType::F32) std::memcpy(bytes.data() + r * row_bytes, f.data() + r * cols, size_t(row_bytes));
            else if (t == DType::BF16)
                for (int64_t c = 0; c < cols; ++c) {
                    const uint16_t h = f32_to_bf16(f[size_t(r * cols + c)]);
                    std::memcpy(bytes.data() + r * row_bytes + 2 * c, &h, 2);
                }
            else quantize_row(t, f.data() + r * cols, cols, bytes.data() + r * row_bytes);
        }
        view = WeightView{t, bytes.data(), rows, cols};
        view.stable = true;  // resident, as a loaded model's tensors: uploaded once
    }
};

// Seconds per op of a chain: `step(i)` records op i of the chain inside a batch.
double per_op_seconds(VulkanBackend &b, int reps, const std::function<void(int)> &step) {
    auto batch_seconds = [&](int n) {
        const auto t0 = Clock::now();
        b.begin_batch();
        for (int i = 0; i < n; ++i) step(i);
        b.end_batch();
        return std::chrono::duration<double>(Clock::now() - t0).count();
    };
    batch_seconds(2 * reps + 1);  // warm-up: pipelines, weight uploads
    double best = 1e30;
    for (int round = 0; round < 3; ++round)
        best = std::min(best, (batch_seconds(2 * reps + 1) - batch_seconds(1)) / (2 * reps));
    return best;
}

int arg_int(int argc, char **argv, const char *name, int fallback) {
    for (int i = 1; i + 1 < argc; ++i)
        if (std::strcmp(argv[i], name) == 0) return std::atoi(argv[i + 1]);
    return fallback;
}

const char *arg_string(int argc, char **argv, const char *name, const char *fallback) {
    for (int i = 1; i + 1 < argc; ++i)
        if (std::strcmp(argv[i], name) == 0) return argv[i + 1];
    return fallback;
}

bool has_flag(int argc, char **argv, const char *name) {
    for (int i = 1; i < argc; ++i)
        if (std::strcmp(argv[i], name) == 0) return true;
    return false;
}

// One token's products as a decode step makes them, each reading the previous one's result
// (so each waits for the last, as in a layer): W (rows x cols) and a second weight of cols x
// rows alternately, x -> y -> x. Printed per product (the mean of the pair) with the weight
// bytes read per second against the device's copy bandwidth (read + write, so a product
// that only reads can reach about that rate).
void decode_products(VulkanBackend &b, int reps, double device_bytes_per_s) {
    struct Shape {
        const char *name;
        int64_t rows, cols;
    };
    const Shape shapes[] = {{"q (4096x2048) + o (2048x4096)", kHeads * kHeadDim, kHidden},
                            {"k or v (512x2048) + 2048x512", kKvHeads * kHeadDim, kHidden},
                            {"router (128x2048) + 2048x128", kExperts, kHidden},
                            {"lm_head (151936x2048) + 2048x151936", 151936, kHidden}};
    std::printf("decode products (1 token, each reading the previous one's result), device copy bandwidth %.0f GB/s:\n",
                device_bytes_per_s / 1e9);
    std::printf("  %-38s %-5s %10s %10s %8s\n", "products", "type", "us/product", "GB/s", "of copy");
    std::mt19937 rng(9);
    std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
    for (const Shape &s : shapes) {
        for (const DType t : {DType::BF16, DType::F32, DType::Q8, DType::Q4}) {
            if (t != DType::BF16 && s.rows == 151936) continue;  // lm_head is bf16 in the model
            const Weight w(t, s.rows, s.cols, 31), wt(t, s.cols, s.rows, 32);
            std::vector<float> x(size_t(s.cols)), y(size_t(s.rows));
            for (float &v : x) v = dist(rng);
            const double sec = per_op_seconds(b, reps, [&](int i) {
                if (i % 2 == 0) b.matmul(w.view, x.data(), y.data(), 1);
                else b.matmul(wt.view, y.data(), x.data(), 1);
            });
            const double bytes = double(w.bytes.size());
            std::printf("  %-38s %-5s %10.2f %10.0f %7.1f%%\n", s.name, std::string(dtype_name(t)).c_str(), sec * 1e6, bytes / sec / 1e9,
                        100.0 * bytes / sec / device_bytes_per_s);
        }
    }
    // The norms around them: one row of 2048 (the layer's input and post-attention norms).
    std::vector<float> x(static_cast<size_t>(kHidden)), y(x.size()), nw(x.size(), 1.0f);
    for (float &v : x) v = dist(rng);
    WeightView nv{DType::F32, nw.data(), 1, kHidden};
    nv.stable = true;
    const double norm = per_op_seconds(b, reps, [&](int i) {
        if (i % 2 == 0) b.rms_norm(x.data(), nv, 0.0f, 1e-6f, y.data(), 1, kHidden);
        else b.rms_norm(y.data(), nv, 0.0f, 1e-6f, x.data(), 1, kHidden);
    });
    std::printf("  %-38s %-5s %10.2f\n", "rms_norm (1 x 2048)", "f32", norm * 1e6);
}

// One decode step's attention (1 query, 32 heads on 4 kv heads of 128) at each context of
// the comma-separated list, its output the next query, the cache on the device: one
// workgroup per head (attention.comp) against the split over positions, alternately.
void decode_attention(VulkanBackend &b, int reps, const std::string &contexts) {
    std::vector<int64_t> ctx;
    for (size_t at = 0; at < contexts.size();) {
        const size_t comma = std::min(contexts.find(',', at), contexts.size());
        ctx.push_back(std::stoll(contexts.substr(at, comma - at)));
        if (ctx.back() < 1) throw std::runtime_error("--contexts: '" + contexts + "' has a context below 1");
        at = comma + 1;
    }
    std::mt19937 rng(7);
    std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
    std::vector<float> a(size_t(kHeads * kHeadDim)), c(a.size());
    for (float &v : a) v = dist(rng);
    std::printf("decode attention (1 query, 32 heads on 4 kv heads of 128 dims), us per call:\n");
    std::printf("  %8s %14s %14s %14s %8s\n", "context", "attention.comp", "split per key", "split rows", "ratio");
    for (const int64_t n : ctx) {
        std::vector<float> kv(size_t(kKvHeads * n * kHeadDim));
        for (float &v : kv) v = dist(rng);
        AttentionParams ap;
        ap.n_tokens = 1;
        ap.n_heads = int32_t(kHeads);
        ap.n_kv_heads = int32_t(kKvHeads);
        ap.head_dim = ap.v_head_dim = int32_t(kHeadDim);
        ap.pos0 = int32_t(n - 1);
        ap.kv_stride = n * kHeadDim;
        ap.scale = 1.0f / std::sqrt(float(kHeadDim));
        ap.cache_id = uint64_t(1000 + n);
        auto chain = [&](int i) {
            if (i % 2 == 0) b.attention(a.data(), kv.data(), kv.data(), c.data(), ap);
            else b.attention(c.data(), kv.data(), kv.data(), a.data(), ap);
        };
        // attention.comp; the split with attention_split(_sg).comp; with attention_split_rows.comp.
        double whole = 1e30, per_key = 1e30, rows = 1e30;
        for (int round = 0; round < 2; ++round) {
            b.set_split_attention(0);
            whole = std::min(whole, per_op_seconds(b, reps, chain));
            b.set_split_attention(1);
            b.set_split_rows(false);
            per_key = std::min(per_key, per_op_seconds(b, reps, chain));
            b.set_split_rows(true);
            rows = std::min(rows, per_op_seconds(b, reps, chain));
        }
        const bool split = n > 32;  // one block of 32 positions is never split
        std::printf("  %8lld %14.1f %14.1f %14.1f %7.2fx%s\n", (long long)n, whole * 1e6, per_key * 1e6, rows * 1e6,
                    whole / rows, split ? "" : " (not split: one block)");
    }
    b.set_split_attention(1);
}

// A Q4 weight of random blocks (scales about 1 / sqrt(cols), values centred), written
// directly: the sweep's 128 experts x 3 matrices (377 MB) would take long to quantize.
Weight random_q4(int64_t rows, int64_t cols, uint32_t seed) {
    Weight w;
    const int64_t blocks = (cols + 31) / 32;
    w.bytes.resize(size_t(rows * blocks * 20));
    std::mt19937 rng(seed);
    for (size_t i = 0; i + 4 <= w.bytes.size(); i += 4) {
        const uint32_t r = rng();
        std::memcpy(w.bytes.data() + i, &r, 4);
    }
    std::uniform_real_distribution<float> scale(0.5f, 1.0f);
    for (int64_t b = 0; b < rows * blocks; ++b) {
        const float d = scale(rng) * 2.0f / (15.0f * std::sqrt(float(cols)));
        const uint16_t dm[2] = {f32_to_f16(d), f32_to_f16(-7.5f * d)};
        std::memcpy(w.bytes.data() + b * 20, dm, 4);
    }
    w.view = WeightView{DType::Q4, w.bytes.data(), rows, cols};
    w.view.stable = true;
    return w;
}

// The tunings the sweep tries by default: every one gemm_tuning.h allows with 64-token
// passes, workgroups of at most 64 rows and steps of at most 128 columns; then the wide ones
// the sums' sharing of the staged tiles' memory lets into NVIDIA's 48 KiB: 32-token passes
// (an expert's ~32 tokens fill one) of 64 to 256 rows, and 64-token passes of 128 rows, at
// steps of 32 or 64 columns, the 32-token ones at 32 columns also with two staged copies
// (STAGES 2). Those a device cannot hold are reported.
std::vector<GemmTuning> default_sweep_tunings() {
    std::vector<GemmTuning> out;
    std::string why;
    for (uint32_t bk : {32u, 64u, 128u})
        for (uint32_t splitk : {1u, 2u, 4u})
            for (uint32_t mi : {1u, 2u, 4u})
                for (uint32_t nj : {1u, 2u, 4u}) {
                    const GemmTuning t{mi, nj, splitk, bk};
                    if (t.tile_rows() <= 64 && check_gemm_tuning(t, why)) out.push_back(t);
                }
    for (uint32_t tn : {32u, 64u})
        for (uint32_t bk : {32u, 64u})
            for (uint32_t splitk : {1u, 2u})
                for (uint32_t mi : {1u, 2u, 4u})
                    for (uint32_t nj : {1u, 2u, 4u}) {
                        const GemmTuning t{mi, nj, splitk, bk, tn};
                        const bool wide = tn == 32 ? t.tile_rows() >= 64 && t.tile_rows() <= 256 : t.tile_rows() == 128;
                        if (wide && check_gemm_tuning(t, why)) out.push_back(t);
                        // Two staged copies (one barrier a step) where the staging is smallest.
                        const GemmTuning two{mi, nj, splitk, bk, tn, 2};
                        if (wide && tn == 32 && bk == 32 && check_gemm_tuning(two, why)) out.push_back(two);
                    }
    return out;
}

std::vector<GemmTuning> parse_tunings(const std::string &list) {
    std::vector<GemmTuning> out;
    for (size_t at = 0; at <= list.size();) {
        const size_t comma = std::min(list.find(',', at), list.size());
        GemmTuning t;
        std::string why;
        if (!parse_gemm_tuning(list.substr(at, comma - at), t, why)) throw std::runtime_error("--tunings: " + why);
        out.push_back(t);
        at = comma + 1;
    }
    return out;
}

// --sweep: the prefill GEMMs of a 30B-A3B layer at n tokens (q, o, k or v, router: bf16; the
// routed experts' grouped gate+up with SwiGLU and down: q4, n x 8 routes over n_experts)
// under every tuning (bench/gemm_sweep.h), then each tuning's GEMM device time per layer and
// the best. Needs MST_VULKAN_PROFILE=2 (main sets it).
void sweep_tunings(VulkanBackend &b, int64_t n, int64_t n_experts, const std::vector<GemmTuning> &tunings,
                   int rounds, double bound) {
    std::mt19937 rng(11);
    std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
    std::vector<float> x(size_t(n * kHeads * kHeadDim));  // wide enough for o's input
    for (float &v : x) v = dist(rng);
    const Weight wq(DType::BF16, kHeads * kHeadDim, kHidden, 1), wo(DType::BF16, kHidden, kHeads * kHeadDim, 2);
    const Weight wk(DType::BF16, kKvHeads * kHeadDim, kHidden, 3), wr(DType::BF16, kExperts, kHidden, 4);
    std::printf("sweep: making %lld experts' q4 weights\n", (long long)n_experts);
    std::vector<Weight> experts;  // gate, up, down of each
    for (int64_t e = 0; e < n_experts; ++e)
        for (int p = 0; p < 3; ++p)
            experts.push_back(random_q4(p < 2 ? kInter : kHidden, p < 2 ? kHidden : kInter, uint32_t(100 + 3 * e + p)));
    // Each token's top 8 of n_experts, distinct, at random weights.
    const int64_t top_k = std::min<int64_t>(kTopK, n_experts);
    std::vector<std::vector<int64_t>> tokens(static_cast<size_t>(n_experts));
    std::vector<std::vector<float>> weights(static_cast<size_t>(n_experts));
    std::vector<int64_t> ids(static_cast<size_t>(n_experts));
    std::uniform_real_distribution<float> weight(0.05f, 0.3f);
    for (int64_t t = 0; t < n; ++t) {
        for (int64_t e = 0; e < n_experts; ++e) ids[size_t(e)] = e;
        std::shuffle(ids.begin(), ids.end(), rng);
        for (int64_t k = 0; k < top_k; ++k) {
            tokens[size_t(ids[size_t(k)])].push_back(t);
            weights[size_t(ids[size_t(k)])].push_back(weight(rng));
        }
    }
    std::vector<SwigluExpertUse> uses(static_cast<size_t>(n_experts));
    for (size_t e = 0; e < uses.size(); ++e)
        uses[e] = SwigluExpertUse{experts[3 * e].view, experts[3 * e + 1].view, experts[3 * e + 2].view,
                                  tokens[e].data(), weights[e].data(), int64_t(tokens[e].size())};
    const double routes = double(n * top_k);

    auto dense = [&](const char *name, const Weight &w, int per_layer) {
        return std::make_pair(
            sweep::Product{name, 2.0 * double(n) * double(w.view.rows) * double(w.view.cols),
                           [](const std::string &k) { return k.rfind("gemm_", 0) == 0 && k.rfind("gemm_grouped", 0) != 0; },
                           [&b, &w, &x, n](std::vector<float> &out) {
                               out.assign(size_t(n * w.view.rows), 0.0f);
                               b.matmul(w.view, x.data(), out.data(), n);
                           },
                           false, w.view.dtype, false},
            per_layer);
    };
    auto run_experts = [&b, &x, &uses, n](std::vector<float> &out) {
        out.assign(size_t(n * kHidden), 0.0f);
        b.routed_swiglu(x.data(), out.data(), n, kHidden, uses.data(), uses.size());
    };
    // The experts first: they are most of a layer's GEMM time (docs/gpu_prefill.md), so a
    // sweep cut short by a time limit has them.
    const std::vector<std::pair<sweep::Product, int>> products = {
        {sweep::Product{"experts gate+up (q4 2 x 768x2048, SwiGLU, grouped)", 2.0 * 2.0 * routes * kInter * kHidden,
                        [](const std::string &k) { return k.rfind("gemm_grouped_swiglu", 0) == 0; }, run_experts, true,
                        DType::Q4, true},
         1},
        {sweep::Product{"experts down (q4 2048x768, grouped)", 2.0 * routes * kHidden * kInter,
                        [](const std::string &k) {
                            return k.rfind("gemm_grouped_", 0) == 0 && k.rfind("gemm_grouped_swiglu", 0) != 0;
                        },
                        run_experts, true, DType::Q4, false},
         1},
        dense("q (bf16 4096x2048)", wq, 1),
        dense("o (bf16 2048x4096)", wo, 1),
        dense("k or v (bf16 512x2048)", wk, 2),
        dense("router (bf16 128x2048)", wr, 1)};

    std::printf("sweep: %zu tunings besides main's kernel, %d rounds each interleaved, %lld tokens (%lld routes over %lld "
                "experts); device time of each product's GEMM dispatches (MST_VULKAN_PROFILE=2); a tuning whose max "
                "error against main's exceeds %.0e is wrong and not timed\n",
                tunings.size(), rounds, (long long)n, (long long)(n * top_k), (long long)n_experts, bound);
    // Per tuning (by name): the layer's GEMM device time from the medians, and whether every product ran right.
    std::vector<std::string> names;
    std::vector<double> layer_us;
    std::vector<bool> all_ok;
    // The same by kind (index 0: the dense products, 1: the grouped experts), for the best
    // pair of MST_VULKAN_COOP_TUNING=DENSE/GROUPED.
    std::vector<double> kind_us[2];
    std::vector<bool> kind_ok[2];
    for (const auto &[p, per_layer] : products) {
        const std::vector<sweep::Row> rows = sweep::run(b, p, tunings, rounds, bound);
        std::printf("\n%s, %lld tokens, %.2f GFLOP a run (x%d a layer):\n", p.name.c_str(), (long long)n, p.flops / 1e9,
                    per_layer);
        std::printf("  %-10s %8s %10s %10s %10s %9s %8s  %s\n", "tuning", "max err", "min us", "median us", "max us",
                    "TFLOP/s", "vs main", "status");
        const double main_median = sweep::median(rows[0].seconds);
        for (const sweep::Row &r : rows) {
            const std::string name = r.tuning.name();
            size_t i = size_t(std::find(names.begin(), names.end(), name) - names.begin());
            if (i == names.size()) {
                names.push_back(name);
                layer_us.push_back(0);
                all_ok.push_back(true);
                for (int kind = 0; kind < 2; ++kind) {
                    kind_us[kind].push_back(0);
                    kind_ok[kind].push_back(true);
                }
            }
            if (!r.ok()) {
                all_ok[i] = false;
                kind_ok[p.grouped][i] = false;
                if (r.status == "wrong")
                    std::printf("  %-10s %8.1e %10s %10s %10s %9s %8s  WRONG (not timed)\n", name.c_str(), r.max_error,
                                "-", "-", "-", "-", "-");
                else std::printf("  %-10s %8s %10s %10s %10s %9s %8s  %s\n", name.c_str(), "-", "-", "-", "-", "-", "-",
                                 r.status.c_str());
                continue;
            }
            const double med = sweep::median(r.seconds);
            const auto [lo, hi] = std::minmax_element(r.seconds.begin(), r.seconds.end());
            layer_us[i] += per_layer * med * 1e6;
            kind_us[p.grouped][i] += per_layer * med * 1e6;
            std::printf("  %-10s %8.1e %10.1f %10.1f %10.1f %9.1f %7.2fx  ok\n", name.c_str(), r.max_error, *lo * 1e6,
                        med * 1e6, *hi * 1e6, p.flops / med / 1e12, main_median / med);
        }
    }
    std::printf("\nGEMM device time of a layer (medians; q, o, 2 x k/v, router, experts gate+up and down):\n");
    size_t best = 0;
    for (size_t i = 0; i < names.size(); ++i) {
        if (!all_ok[i]) {
            std::printf("  %-10s  - (not run or wrong on a product)\n", names[i].c_str());
            continue;
        }
        std::printf("  %-10s %9.1f us  %5.2fx main\n", names[i].c_str(), layer_us[i], layer_us[0] / layer_us[i]);
        if (layer_us[i] < layer_us[best]) best = i;
    }
    std::printf("best tuning: %s (%.1f us of GEMMs a layer against main's %.1f)\nBEST_TUNING=%s\n", names[best].c_str(),
                layer_us[best], layer_us[0], names[best].c_str());
    // Each kind's best on its own (a tuning wrong or not run on one kind may still serve the other).
    size_t best_kind[2] = {0, 0};
    for (int kind = 0; kind < 2; ++kind)
        for (size_t i = 0; i < names.size(); ++i)
            if (kind_ok[kind][i] && kind_us[kind][i] < kind_us[kind][best_kind[kind]]) best_kind[kind] = i;
    const std::string pair = best_kind[0] == best_kind[1] ? names[best_kind[0]]
                                                           : names[best_kind[0]] + "/" + names[best_kind[1]];
    std::printf("best by kind: dense %s (%.1f us against main's %.1f), grouped experts %s (%.1f us against main's %.1f): "
                "%.1f us a layer, %.2fx main\nBEST_TUNINGS=%s\n",
                names[best_kind[0]].c_str(), kind_us[0][best_kind[0]], kind_us[0][0], names[best_kind[1]].c_str(),
                kind_us[1][best_kind[1]], kind_us[1][0], kind_us[0][best_kind[0]] + kind_us[1][best_kind[1]],
                layer_us[0] / (kind_us[0][best_kind[0]] + kind_us[1][best_kind[1]]), pair.c_str());
}

// The device's cooperative-matrix rate (vulkan_coopmat_rate.h): the roofline of the GEMMs'
// products, and how much of it survives loading the fragments from shared memory.
void print_coopmat_rate(VulkanBackend &b) {
    const VulkanCoopmatRate r = vulkan_measure_coopmat_rate(b);
    if (!r.measured) {
        std::printf("cooperative-matrix rate: not measured (%s)\n", r.why_not.c_str());
        return;
    }
    std::printf("cooperative-matrix rate (16x16x16 f16 products, coopmat_rate.comp): %.1f TFLOP/s with f32 sums from "
                "registers, %.1f with the fragments loaded from shared memory every step (%.2fx), %.1f with f16 sums\n",
                r.flops * 1e-12, r.shared_flops * 1e-12, r.shared_flops / r.flops, r.f16_sum_flops * 1e-12);
}

}  // namespace

int main(int argc, char **argv) try {
    const int64_t n = arg_int(argc, argv, "--tokens", 512);
    const int reps = arg_int(argc, argv, "--reps", 10);
    const int64_t per_expert = n * kTopK / kExperts;
    const bool attention = has_flag(argc, argv, "--attention");
    const bool sweep = has_flag(argc, argv, "--sweep") || attention;
    // The sweep times each dispatch from the per-command profile, read when the backend is made.
    if (sweep) ::setenv("MST_VULKAN_PROFILE", "2", 1);
    // Line by line, so that a sweep stopped by a time limit leaves the products it finished.
    if (sweep) std::setvbuf(stdout, nullptr, _IOLBF, 0);
    VulkanBackend b(BackendOptions{}, false);
    std::printf("device: %s; prompt %lld tokens, %lld per expert; f16 staging of the GEMMs: %s "
                "(MST_VULKAN_COOPMAT_PRECISION=split|exact|f16)\n",
                b.device_name().c_str(), (long long)n, (long long)per_expert, coop_precision_name(b.coop_precision()));
    // The compute roofline beside the sweeps' TFLOP/s (and alone with --coopmat-rate).
    const bool rate_only = has_flag(argc, argv, "--coopmat-rate");
    if (sweep || rate_only) print_coopmat_rate(b);
    if (rate_only) return 0;
    if (attention) {
        attention_compare::run(b, n, arg_int(argc, argv, "--rounds", 20),
                               std::atof(arg_string(argc, argv, "--bound", "1e-2")), has_flag(argc, argv, "--emulated"));
        return 0;
    }
    if (sweep) {
        const char *list = arg_string(argc, argv, "--tunings", nullptr);
        sweep_tunings(b, n, arg_int(argc, argv, "--experts", int(kExperts)),
                      list ? parse_tunings(list) : default_sweep_tunings(), arg_int(argc, argv, "--rounds", 5),
                      std::atof(arg_string(argc, argv, "--bound", "1e-2")));
        return 0;
    }
    if (has_flag(argc, argv, "--decode")) decode_products(b, reps, vulkan_measure_bandwidth(b).device_bytes_per_s);
    if (has_flag(argc, argv, "--no-prefill")) {
        decode_attention(b, reps, arg_string(argc, argv, "--contexts", "128,512,2048,8192"));
        return 0;
    }

    const Weight wq(DType::BF16, kHeads * kHeadDim, kHidden, 1), wo(DType::BF16, kHidden, kHeads * kHeadDim, 2);
    std::vector<Weight> gate, down;
    for (uint32_t e = 0; e < 8; ++e) {  // a few experts, so the chain is not one weight in cache
        gate.emplace_back(DType::Q4, kInter, kHidden, 10 + e);
        down.emplace_back(DType::Q4, kHidden, kInter, 20 + e);
    }
    std::vector<float> x(size_t(n * kHidden)), a(size_t(n * kHeads * kHeadDim)), c(a.size());
    std::mt19937 rng(5);
    std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
    for (float &v : x) v = dist(rng);
    std::vector<float> kv(size_t(kKvHeads * n * kHeadDim));
    for (float &v : kv) v = dist(rng);
    AttentionParams ap;
    ap.n_tokens = int32_t(n);
    ap.n_heads = int32_t(kHeads);
    ap.n_kv_heads = int32_t(kKvHeads);
    ap.head_dim = ap.v_head_dim = int32_t(kHeadDim);
    ap.kv_stride = n * kHeadDim;
    ap.scale = 1.0f / std::sqrt(float(kHeadDim));
    ap.cache_id = 1;

    struct Mode {
        const char *name;
        VulkanBackend::GemmKernel kernel;
    };
    for (const Mode &mode : {Mode{"off (matrix-vector kernel)", VulkanBackend::GemmKernel::off},
                             Mode{"portable GEMM", VulkanBackend::GemmKernel::portable},
                             Mode{"cooperative-matrix GEMM", VulkanBackend::GemmKernel::coopmat}}) {
        std::string why;
        if (!b.set_gemm(mode.kernel, 16, why)) {
            std::printf("%s: not run (%s)\n", mode.name, why.c_str());
            continue;
        }
        // q then o, alternately: x -> a -> x ...
        const double qo = per_op_seconds(b, reps, [&](int i) {
            if (i % 2 == 0) b.matmul(wq.view, x.data(), a.data(), n);
            else b.matmul(wo.view, a.data(), x.data(), n);
        });
        // One expert's gate and down at its share of tokens.
        const double expert = per_op_seconds(b, reps, [&](int i) {
            const size_t e = size_t(i / 2) % gate.size();
            if (i % 2 == 0) b.matmul(gate[e].view, x.data(), c.data(), per_expert);
            else b.matmul(down[e].view, c.data(), x.data(), per_expert);
        });
        // Attention over the prompt, its output the next query.
        const double attn = per_op_seconds(b, reps, [&](int i) {
            if (i % 2 == 0) b.attention(a.data(), kv.data(), kv.data(), c.data(), ap);
            else b.attention(c.data(), kv.data(), kv.data(), a.data(), ap);
        });
        // A layer: q, o, and k and v (an eighth of q each), 128 experts' gate, up and down, attention.
        const double products = qo * 2.25, experts = double(kExperts) * 3 * expert;
        const double layer = products + experts + attn;
        const double flops_qo = 2.0 * double(n) * double(kHidden) * double(kHeads * kHeadDim);
        std::printf("%s:\n  q or o product (bf16 4096x2048, %lld tokens): %8.1f us (%.1f TFLOP/s)\n", mode.name,
                    (long long)n, qo * 1e6, flops_qo / qo / 1e12);
        std::printf("  expert gate or down (q4 768x2048, %lld tokens): %8.1f us\n", (long long)per_expert, expert * 1e6);
        std::printf("  attention (%lld queries x %lld keys, 32 heads; with its 2 MB K/V upload): %8.1f us\n", (long long)n, (long long)n, attn * 1e6);
        std::printf("  a layer estimated from these: %.2f ms (products %.2f, experts %.2f, attention %.2f); "
                    "48 layers: %.0f tok/s\n",
                    layer * 1e3, products * 1e3, experts * 1e3, attn * 1e3,
                    double(n) / (48 * layer));
    }
    decode_attention(b, reps, arg_string(argc, argv, "--contexts", "128,512,2048,8192"));
    return 0;
} catch (const std::exception &e) {
    std::fprintf(stderr, "bench_vulkan_prefill: %s\n", e.what());
    return 1;
}
