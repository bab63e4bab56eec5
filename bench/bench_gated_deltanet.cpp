// Is the sequential gated delta rule a bottleneck of prefill? Runs one Gated DeltaNet
// layer (projections, convolution, L2 norms, the recurrence, gated norm, output
// projection; BF16 weights) at the shapes of real checkpoints and times the recurrence
// (Backend::gated_delta_rule) inside it. rule_share is the recurrence's part of the
// layer's time; the MoE feed-forward that follows every layer is not counted, so the
// share of a whole decoder layer is lower still.
//
//   build/bench/bench_gated_deltanet [--benchmark_filter=...]   (MST_CPU_ISA=scalar|avx2|avx512)
//
// Shapes from /work/shared/configs: Qwen3.5-397B-A17B (hidden 4096, 16 key heads, 64 value
// heads of 128 x 128) and Qwen3-Next-80B-A3B (hidden 2048, 16 key heads, 32 value heads).
//
// Measured (AMD EPYC, AVX2, 1 thread, on a shared and busy 2-core machine), rule_share:
//                      1 token   64 tokens   512 tokens
//   qwen3.5-397b        4.3%       2.7%        4.2%      (512: layer 8.85 s, rule 0.37 s)
//   qwen3-next-80b      9.8%       4.3%        6.8%      (512: layer 2.64 s, rule 0.18 s)
// The recurrence runs at about 40 GFLOP/s per core here. A chunked form would speed a
// linear-attention layer's prefill by 7% at the very most, so it is not implemented.
#include <benchmark/benchmark.h>
#include <omp.h>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "backends/cpu/cpu_backend.h"
#include "model/gated_deltanet.h"

namespace mst {
namespace {

using Clock = std::chrono::steady_clock;

struct LayerShape {
    const char *name;
    int64_t hidden;
    GatedDeltaNetShape s;
};

const LayerShape kShapes[] = {
    {"qwen3.5-397b", 4096, {16, 64, 128, 128, 4, 1e-6f}},
    {"qwen3-next-80b", 2048, {16, 32, 128, 128, 4, 1e-6f}},
};

// Small bfloat16 values of both signs; the values do not affect speed.
std::vector<uint16_t> bf16_matrix(int64_t rows, int64_t cols) {
    std::vector<uint16_t> m(size_t(rows * cols));
    for (size_t i = 0; i < m.size(); ++i)
        m[i] = uint16_t(0x3c00u + (i * 2654435761u >> 20) % 0x300u) | uint16_t((i & 1u) << 15);
    return m;
}

// args: shape index, n_tokens, threads.
void BM_LinearAttentionLayer(benchmark::State &state) {
    const LayerShape &shape = kShapes[state.range(0)];
    const GatedDeltaNetShape &s = shape.s;
    const int64_t n = state.range(1), H = shape.hidden;
    CpuBackend be(int(state.range(2)), cpu_isa_from_env());

    const std::vector<uint16_t> qkv = bf16_matrix(s.conv_dim(), H), z = bf16_matrix(s.value_dim(), H);
    const std::vector<uint16_t> b = bf16_matrix(s.n_v_heads, H), a = bf16_matrix(s.n_v_heads, H);
    const std::vector<uint16_t> conv = bf16_matrix(s.conv_dim(), s.conv_kernel), norm(size_t(s.v_dim), 0x3f80);
    const std::vector<uint16_t> out = bf16_matrix(H, s.value_dim());
    GatedDeltaNetWeights w;
    w.qkv = {DType::BF16, qkv.data(), s.conv_dim(), H};
    w.z = {DType::BF16, z.data(), s.value_dim(), H};
    w.b = {DType::BF16, b.data(), s.n_v_heads, H};
    w.a = {DType::BF16, a.data(), s.n_v_heads, H};
    w.conv = {DType::BF16, conv.data(), s.conv_dim(), s.conv_kernel};
    w.norm = {DType::BF16, norm.data(), 1, s.v_dim};
    w.out = {DType::BF16, out.data(), H, s.value_dim()};
    w.a_log.assign(size_t(s.n_v_heads), 0.5f);
    w.dt_bias.assign(size_t(s.n_v_heads), 1.0f);

    std::vector<float> h(size_t(n * H), 0.02f), y(size_t(n * H));
    std::vector<float> conv_state(size_t(s.conv_state_elements()), 0.1f);
    std::vector<float> recurrent(size_t(s.recurrent_state_elements()), 0.01f);

    // The recurrence alone, on inputs of the layer's shape (unit-norm q and k).
    const int64_t qk = n * s.key_dim();
    const float unit = 1.0f / std::sqrt(float(s.k_dim));
    std::vector<float> q(size_t(qk), unit), k(size_t(qk), unit), v(size_t(n * s.value_dim()), 0.3f);
    std::vector<float> g(size_t(n * s.n_v_heads), -0.1f), beta(g.size(), 0.5f), core(v.size());
    Backend::DeltaRuleShape rule{n, s.n_v_heads, s.n_k_heads, s.k_dim, s.v_dim, unit};

    double layer_s = 0.0, rule_s = 0.0;
    for (auto _ : state) {
        const auto t0 = Clock::now();
        gated_deltanet(be, w, s, h.data(), n, conv_state.data(), conv_state.data(), recurrent.data(), recurrent.data(),
                       y.data());
        const auto t1 = Clock::now();
        be.gated_delta_rule(q.data(), k.data(), v.data(), g.data(), beta.data(), recurrent.data(), recurrent.data(),
                            core.data(), rule);
        const auto t2 = Clock::now();
        layer_s += std::chrono::duration<double>(t1 - t0).count();
        rule_s += std::chrono::duration<double>(t2 - t1).count();
        benchmark::DoNotOptimize(y.data());
        benchmark::DoNotOptimize(core.data());
    }
    const double iters = double(state.iterations());
    state.counters["layer_ms"] = layer_s / iters * 1e3;
    state.counters["rule_ms"] = rule_s / iters * 1e3;
    state.counters["rule_share"] = rule_s / layer_s;
    state.counters["layer_us_per_token"] = layer_s / iters / double(n) * 1e6;
    // Multiply-adds of the recurrence: 4 per state element and token (decay, read, write, query).
    state.counters["rule_GFLOP/s"] = 8.0 * double(n * s.recurrent_state_elements()) * iters / rule_s / 1e9;
    state.SetLabel(std::string(shape.name) + " " + std::string(cpu_isa_name(be.isa())));
}

void register_benchmarks() {
    std::vector<int64_t> threads = {1};
    if (omp_get_num_procs() > 1) threads.push_back(omp_get_num_procs());
    for (int64_t shape = 0; shape < int64_t(std::size(kShapes)); ++shape)
        for (int64_t n : {1, 64, 512})
            for (int64_t t : threads)
                benchmark::RegisterBenchmark("LinearAttentionLayer", BM_LinearAttentionLayer)
                    ->Args({shape, n, t})
                    ->ArgNames({"shape", "tokens", "threads"})
                    ->Unit(benchmark::kMillisecond)
                    ->UseRealTime();
}

}  // namespace
}  // namespace mst

int main(int argc, char **argv) {
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
    benchmark::AddCustomContext("cpu_isa", std::string(mst::cpu_isa_name(mst::cpu_isa_from_env())));
    mst::register_benchmarks();
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
}
