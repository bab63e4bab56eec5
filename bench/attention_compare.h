// bench_vulkan_prefill --attention: a prefill's attention at the Qwen3-30B-A3B shape (32 query
// heads on 4 KV heads of 128, causal) under the blocked kernel (attention_blocked.comp,
// MST_VULKAN_FLASH_ATTENTION=off) and the cooperative-matrix kernel (attention_flash.comp;
// with --emulated its float build too), docs/gpu_prefill.md. Each kernel's output is checked
// against the blocked kernel's first; then the kernels are timed in rounds, each once a
// round in turn (interleaved, so the machine's drift falls on all alike), by the device
// time of their attention dispatch from the per-command profile (MST_VULKAN_PROFILE=2, set
// before the backend is made): min, median and max a call.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "backends/vulkan/vulkan_backend.h"
#include "bench/gemm_sweep.h"

namespace mst::attention_compare {

struct Kernel {
    Kernel(const char *n, VulkanBackend::FlashAttention m, const char *sh) : name(n), mode(m), shader(sh) {}
    const char *name;
    VulkanBackend::FlashAttention mode;
    const char *shader;  // the profile keys charged to it start with this
    std::string status = "ok";
    double max_error = 0;
    std::vector<double> seconds;
};

// Device seconds of the attention dispatches of one call, its output into out.
inline double attention_seconds(VulkanBackend &b, const Kernel &k, const std::vector<float> &q,
                                const std::vector<float> &kv, std::vector<float> &out, const AttentionParams &p) {
    CommandStream &stream = b.stream();
    stream.clear_dispatch_profile();
    b.attention(q.data(), kv.data(), kv.data(), out.data(), p);
    double s = 0;
    for (const auto &[key, stat] : stream.dispatch_profile())
        if (key.rfind(k.shader, 0) == 0) s += stat.seconds;
    return s;
}

inline void run(VulkanBackend &b, int64_t n, int rounds, double bound, bool emulated) {
    constexpr int64_t heads = 32, kv_heads = 4, dim = 128;
    std::vector<float> q(size_t(n * heads * dim)), kv(size_t(kv_heads * n * dim));
    std::mt19937 rng(11);
    std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
    for (float &x : q) x = dist(rng);
    for (float &x : kv) x = dist(rng);
    AttentionParams p;
    p.n_tokens = int32_t(n);
    p.n_heads = int32_t(heads);
    p.n_kv_heads = int32_t(kv_heads);
    p.head_dim = p.v_head_dim = int32_t(dim);
    p.kv_stride = n * dim;
    p.scale = 1.0f / std::sqrt(float(dim));
    p.cache_id = 1;  // K and V mirrored on the device, as a model's layer has them

    std::vector<Kernel> kernels = {Kernel{"blocked (attention_blocked.comp)", VulkanBackend::FlashAttention::off,
                                    "attention_blocked"},
                                   Kernel{"flash, cooperative matrices", VulkanBackend::FlashAttention::automatic,
                                    "attention_flash_coop"}};
    if (emulated)
        // The space ends the name: "attention_flash_coop ..." is the other kernel's.
        kernels.push_back(Kernel{"flash, float products (emulated)", VulkanBackend::FlashAttention::emulated,
                           "attention_flash "});
    if (!b.context().cooperative_matrix()) kernels[1].status = "not run: " + b.context().cooperative_matrix_why_not();
    const VulkanBackend::FlashAttention before = b.flash_attention();
    std::vector<float> want(size_t(n * heads * dim)), got(want.size());
    b.set_flash_attention(VulkanBackend::FlashAttention::off);
    b.attention(q.data(), kv.data(), kv.data(), want.data(), p);
    for (Kernel &k : kernels) {
        if (k.status != "ok") continue;
        b.set_flash_attention(k.mode);
        std::fill(got.begin(), got.end(), NAN);
        if (attention_seconds(b, k, q, kv, got, p) <= 0) {
            k.status = "not run: no profiled dispatch of " + std::string(k.shader) + " (shape not covered?)";
            continue;
        }
        k.max_error = sweep::max_error(got, want);
        if (!(k.max_error <= bound)) k.status = "wrong";
    }
    for (int r = 0; r < rounds; ++r)
        for (Kernel &k : kernels)
            if (k.status == "ok") {
                b.set_flash_attention(k.mode);
                k.seconds.push_back(attention_seconds(b, k, q, kv, got, p));
            }
    b.set_flash_attention(before);

    const double flops = 4.0 * double(heads) * double(dim) * double(n) * double(n + 1) / 2;  // causal QK^T and PV
    std::printf("attention at %lld tokens (32 heads on 4 kv heads of 128, causal, %.2f GFLOP), %d rounds interleaved, "
                "device time a call (us), f16 staging %s:\n",
                (long long)n, flops * 1e-9, rounds, coop_precision_name(b.coop_precision()));
    std::printf("  %-36s %9s %9s %9s %8s %9s %9s\n", "kernel", "min", "median", "max", "TFLOP/s", "vs blocked", "max err");
    const double base = kernels[0].seconds.empty() ? NAN : sweep::median(kernels[0].seconds);
    for (const Kernel &k : kernels) {
        if (k.status != "ok") {
            std::printf("  %-36s %s (max err %.2e)\n", k.name, k.status.c_str(), k.max_error);
            continue;
        }
        const double lo = *std::min_element(k.seconds.begin(), k.seconds.end());
        const double hi = *std::max_element(k.seconds.begin(), k.seconds.end());
        const double med = sweep::median(k.seconds);
        std::printf("  %-36s %9.1f %9.1f %9.1f %8.1f %8.2fx %9.2e\n", k.name, lo * 1e6, med * 1e6, hi * 1e6,
                    flops / med * 1e-12, base / med, k.max_error);
    }
}

}  // namespace mst::attention_compare
