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
//   build/bench/bench_vulkan_prefill [--tokens 512] [--reps 10] [--contexts 128,512,2048,8192]
//                                    [--decode] [--no-prefill]
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

#include "backends/vulkan/vulkan_backend.h"
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

}  // namespace

int main(int argc, char **argv) try {
    const int64_t n = arg_int(argc, argv, "--tokens", 512);
    const int reps = arg_int(argc, argv, "--reps", 10);
    const int64_t per_expert = n * kTopK / kExperts;
    VulkanBackend b(BackendOptions{}, false);
    std::printf("device: %s; prompt %lld tokens, %lld per expert\n", b.device_name().c_str(), (long long)n,
                (long long)per_expert);
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
