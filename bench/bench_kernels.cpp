// CPU kernel benchmarks. Decode is memory-bandwidth bound (one pass over the weight bytes
// per token), so every matmul reports the weight bytes it streamed per second and that
// rate as a fraction of this machine's memory read bandwidth, measured at the start of
// the same run with the same thread count.
//
//   build/bench/bench_kernels [--benchmark_filter=...]      (MST_CPU_ISA=scalar|avx2|avx512)
#include <benchmark/benchmark.h>
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <functional>
#include <map>
#include <iterator>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "backends/cpu/cpu_backend.h"
#include "core/quant.h"

namespace mst {
namespace {

using Clock = std::chrono::steady_clock;

// Far larger than any last-level cache, so reads come from DRAM.
constexpr size_t kBandwidthBytes = size_t(1) << 30;
// Matmul weights are cycled through copies totalling at least this much, so that every
// iteration streams from memory as a decode step does (each layer's weights differ).
constexpr size_t kWeightPoolBytes = size_t(256) << 20;

// Memory read bandwidth in bytes/s per thread count, filled before any benchmark runs.
std::map<int, double> g_read_bandwidth;

std::vector<int> thread_counts() {
    std::vector<int> counts = {1};
    if (omp_get_num_procs() > 1) counts.push_back(omp_get_num_procs());
    return counts;
}

// A large buffer, written once so its pages exist.
struct BigBuffer {
    std::unique_ptr<uint64_t[]> data;
    size_t words;
    explicit BigBuffer(size_t bytes) : data(new uint64_t[bytes / 8]), words(bytes / 8) {
#pragma omp parallel for schedule(static)
        for (size_t i = 0; i < words; ++i) data[i] = i * 0x9e3779b97f4a7c15ull;
    }
};

BigBuffer &bandwidth_buffer() {
    static BigBuffer buffer(kBandwidthBytes);
    return buffer;
}

// A plain loop the compiler vectorises (an OpenMP-outlined loop it did not), so the
// measurement is limited by memory, not by adds.
uint64_t sum_words(const uint64_t *p, size_t n) {
    uint64_t total = 0;
    for (size_t i = 0; i < n; ++i) total += p[i];
    return total;
}

// One read pass over the buffer, split evenly between threads; the sum keeps the reads
// from being optimised away.
uint64_t read_sum(const BigBuffer &b, int threads) {
    uint64_t total = 0;
#pragma omp parallel num_threads(threads) reduction(+ : total)
    {
        const size_t n = size_t(omp_get_num_threads()), t = size_t(omp_get_thread_num());
        const size_t chunk = b.words / n;
        total += sum_words(b.data.get() + t * chunk, t + 1 == n ? b.words - t * chunk : chunk);
    }
    return total;
}

double measure_read_bandwidth(int threads) {
    const BigBuffer &b = bandwidth_buffer();
    double best = 0.0;
    for (int pass = 0; pass < 4; ++pass) {
        const auto t0 = Clock::now();
        benchmark::DoNotOptimize(read_sum(b, threads));
        const double s = std::chrono::duration<double>(Clock::now() - t0).count();
        best = std::max(best, double(kBandwidthBytes) / s);
    }
    return best;
}

void BM_MemoryRead(benchmark::State &state) {
    const int threads = int(state.range(0));
    const BigBuffer &b = bandwidth_buffer();
    for (auto _ : state) benchmark::DoNotOptimize(read_sum(b, threads));
    state.SetBytesProcessed(int64_t(state.iterations()) * int64_t(kBandwidthBytes));
}

void BM_Memcpy(benchmark::State &state) {
    const int threads = int(state.range(0));
    const size_t bytes = kBandwidthBytes / 2;
    const BigBuffer &b = bandwidth_buffer();
    const auto *src = reinterpret_cast<const unsigned char *>(b.data.get());
    static BigBuffer dst_buffer(kBandwidthBytes / 2);
    auto *dst = reinterpret_cast<unsigned char *>(dst_buffer.data.get());
    for (auto _ : state) {
#pragma omp parallel num_threads(threads)
        {
            const size_t n = size_t(omp_get_num_threads()), t = size_t(omp_get_thread_num());
            const size_t chunk = bytes / n;
            std::memcpy(dst + t * chunk, src + t * chunk, t + 1 == n ? bytes - t * chunk : chunk);
        }
        benchmark::ClobberMemory();
    }
    // Read and written bytes both count.
    state.SetBytesProcessed(int64_t(state.iterations()) * int64_t(2 * bytes));
}

std::unique_ptr<CpuBackend> make_backend(int threads) {
    return std::make_unique<CpuBackend>(threads, cpu_isa_from_env());
}

// Times the matmul over the weight copies (view(i) is copy i, each weight_bytes), cycling
// through them as a decode step cycles through layers, and reports the weight bytes
// streamed per second, that rate against the read bandwidth, and GFLOP/s.
void time_matmul(benchmark::State &state, const std::function<WeightView(size_t)> &view, size_t copies,
                 size_t weight_bytes, int64_t n_tokens, int threads, const std::string &label) {
    const WeightView first = view(0);
    std::vector<float> x(size_t(n_tokens * first.cols), 0.01f), y(size_t(n_tokens * first.rows));
    const std::unique_ptr<CpuBackend> backend = make_backend(threads);
    size_t next = 0;
    double seconds = 0.0;
    for (auto _ : state) {
        const WeightView w = view(next);
        next = (next + 1) % copies;
        const auto t0 = Clock::now();
        backend->matmul(w, x.data(), y.data(), n_tokens);
        seconds += std::chrono::duration<double>(Clock::now() - t0).count();
        benchmark::DoNotOptimize(y.data());
    }
    const double streamed = double(weight_bytes) * double(state.iterations());
    state.SetBytesProcessed(int64_t(streamed));
    state.counters["weight_GB/s"] = streamed / seconds / 1e9;
    state.counters["frac_mem_bw"] = streamed / seconds / g_read_bandwidth[threads];
    state.counters["GFLOP/s"] =
        2.0 * double(first.rows * first.cols * n_tokens) * double(state.iterations()) / seconds / 1e9;
    state.SetLabel(label + std::string(cpu_isa_name(backend->isa())));
}

// args: rows, cols, n_tokens, threads. BF16 weights.
void BM_MatmulBf16(benchmark::State &state) {
    const int64_t rows = state.range(0), cols = state.range(1), n_tokens = state.range(2);
    const int threads = int(state.range(3));
    const size_t weight_bytes = size_t(rows * cols) * 2;
    const size_t copies = std::max<size_t>(1, (kWeightPoolBytes + weight_bytes - 1) / weight_bytes);
    std::vector<uint16_t> pool(weight_bytes / 2 * copies);
    // Bits of small bfloat16 values of both signs; the values do not affect speed.
    for (size_t i = 0; i < pool.size(); ++i) pool[i] = uint16_t(0x3c00u + (i * 2654435761u >> 20) % 0x300u) | uint16_t((i & 1u) << 15);
    time_matmul(
        state, [&](size_t i) { return WeightView{DType::BF16, pool.data() + i * weight_bytes / 2, rows, cols}; },
        copies, weight_bytes, n_tokens, threads, "");
}

// args: rows, cols, n_tokens, threads. compressed-tensors INT4 weights (Kimi K2.5's
// experts: eight 4-bit values per int32, a bf16 scale per 32 inputs); the bytes streamed
// are the words and the scales, 4.5 bits a weight.
void BM_MatmulInt4(benchmark::State &state) {
    const int64_t rows = state.range(0), cols = state.range(1), n_tokens = state.range(2), group = 32;
    const int threads = int(state.range(3));
    const size_t word_bytes = size_t(rows * cols / 2), scale_bytes = size_t(rows * (cols / group)) * 2;
    const size_t weight_bytes = word_bytes + scale_bytes;
    const size_t copies = std::max<size_t>(1, (kWeightPoolBytes + weight_bytes - 1) / weight_bytes);
    std::vector<uint32_t> words(word_bytes / 4 * copies);
    for (size_t i = 0; i < words.size(); ++i) words[i] = uint32_t(i * 2654435761u);
    std::vector<uint16_t> scales(scale_bytes / 2 * copies, 0x3c00);  // the values do not affect speed
    const auto view = [&](size_t i) {
        WeightView w{DType::PACKED_I4, words.data() + i * word_bytes / 4, rows, cols};
        w.scales = reinterpret_cast<const uint8_t *>(scales.data() + i * scale_bytes / 2);
        w.group_size = group;
        return w;
    };
    time_matmul(state, view, copies, weight_bytes, n_tokens, threads, "");
}

// Block-quantized weight types, by the index BM_MatmulBlock takes: moestream's own, the
// GGML legacy types and the K-quants of GGUF files.
constexpr DType kBlockTypes[] = {DType::Q8,          DType::Q4,          DType::GGML_Q4_0, DType::GGML_Q5_0,
                                 DType::GGML_Q5_1,   DType::GGML_IQ4_NL, DType::GGML_IQ4_XS, DType::GGML_MXFP4,
                                 DType::GGML_Q2_K,   DType::GGML_Q3_K,   DType::GGML_Q4_K, DType::GGML_Q5_K,
                                 DType::GGML_Q6_K};

// args: type index (kBlockTypes), rows, cols, n_tokens, threads. The bytes streamed are
// the blocks, scales included. Weights quantized once from Gaussian values, then copied.
void BM_MatmulBlock(benchmark::State &state) {
    const DType t = kBlockTypes[state.range(0)];
    const int64_t rows = state.range(1), cols = state.range(2), n_tokens = state.range(3);
    const int threads = int(state.range(4));
    const size_t row_bytes = size_t(dtype_row_bytes(t, cols)), weight_bytes = row_bytes * size_t(rows);
    const size_t copies = std::max<size_t>(1, (kWeightPoolBytes + weight_bytes - 1) / weight_bytes);
    std::vector<uint8_t> pool(weight_bytes * copies);
    {
        std::mt19937 rng(1);
        std::normal_distribution<float> dist(0.0f, 0.02f);
        std::vector<float> row(static_cast<size_t>(cols));
        for (int64_t r = 0; r < rows; ++r) {
            for (float &v : row) v = dist(rng);
            quantize_row(t, row.data(), cols, pool.data() + size_t(r) * row_bytes);
        }
        for (size_t c = 1; c < copies; ++c) std::memcpy(pool.data() + c * weight_bytes, pool.data(), weight_bytes);
    }
    time_matmul(
        state, [&](size_t i) { return WeightView{t, pool.data() + i * weight_bytes, rows, cols}; }, copies,
        weight_bytes, n_tokens, threads, std::string(dtype_name(t)) + " ");
}

double min_of(const std::vector<double> &v) { return *std::min_element(v.begin(), v.end()); }
double max_of(const std::vector<double> &v) { return *std::max_element(v.begin(), v.end()); }

// args: dim, threads. One row (decode), BF16 weight with the (1 + w) offset.
void BM_RmsNorm(benchmark::State &state) {
    const int64_t dim = state.range(0);
    const std::vector<uint16_t> w(size_t(dim), 0x3f80);
    std::vector<float> x(size_t(dim), 0.5f), y(static_cast<size_t>(dim));
    const std::unique_ptr<CpuBackend> backend = make_backend(int(state.range(1)));
    for (auto _ : state) {
        backend->rms_norm(x.data(), {DType::BF16, w.data(), 1, dim}, 1.0f, 1e-6f, y.data(), 1, dim);
        benchmark::DoNotOptimize(y.data());
    }
    state.SetBytesProcessed(int64_t(state.iterations()) * dim * 8);
}

// args: context, threads. Decode: 1 query, 32 heads on 8 kv heads of 128 dims.
void BM_AttentionDecode(benchmark::State &state) {
    AttentionParams p;
    p.n_tokens = 1;
    p.n_heads = 32;
    p.n_kv_heads = 8;
    p.head_dim = 128;
    p.v_head_dim = 128;
    p.pos0 = int32_t(state.range(0)) - 1;
    p.kv_stride = state.range(0) * p.head_dim;
    p.scale = 1.0f / std::sqrt(float(p.head_dim));
    std::vector<float> q(size_t(p.n_heads * p.head_dim)), out(size_t(p.n_heads * p.v_head_dim));
    std::vector<float> k(size_t(p.n_kv_heads * p.kv_stride)), v(k.size());
    for (size_t i = 0; i < k.size(); ++i) {
        k[i] = float(int(i % 17) - 8) * 0.05f;
        v[i] = float(int(i % 13) - 6) * 0.1f;
    }
    for (size_t i = 0; i < q.size(); ++i) q[i] = float(int(i % 11) - 5) * 0.1f;
    const std::unique_ptr<CpuBackend> backend = make_backend(int(state.range(1)));
    for (auto _ : state) {
        backend->attention(q.data(), k.data(), v.data(), out.data(), p);
        benchmark::DoNotOptimize(out.data());
    }
    // The K and V cache bytes one step reads.
    state.SetBytesProcessed(int64_t(state.iterations()) * int64_t(k.size() + v.size()) * 4);
}

void register_benchmarks() {
    for (int t : thread_counts()) {
        benchmark::RegisterBenchmark("MemoryRead", BM_MemoryRead)->Arg(t)->ArgName("threads")->UseRealTime();
        benchmark::RegisterBenchmark("Memcpy", BM_Memcpy)->Arg(t)->ArgName("threads")->UseRealTime();
    }
    // Qwen3-30B-A3B-like: expert down (2048 x 768) and gate/up (768 x 2048), a dense
    // 4096 x 4096 projection, and a 151936-token lm_head.
    const std::vector<std::pair<int64_t, int64_t>> shapes = {{2048, 768}, {768, 2048}, {4096, 4096}, {151936, 2048}};
    for (const auto &[rows, cols] : shapes)
        for (int64_t n_tokens : {1, 32})
            for (int t : thread_counts())
                benchmark::RegisterBenchmark("MatmulBf16", BM_MatmulBf16)
                    ->Args({rows, cols, n_tokens, t})
                    ->ArgNames({"rows", "cols", "tokens", "threads"})
                    ->UseRealTime();
    // Kimi K2.5's INT4 experts: gate/up (2048 x 7168) and down (7168 x 2048).
    for (const auto &[rows, cols] : std::vector<std::pair<int64_t, int64_t>>{{2048, 7168}, {7168, 2048}})
        for (int64_t n_tokens : {1, 32})
            for (int t : thread_counts())
                benchmark::RegisterBenchmark("MatmulInt4", BM_MatmulInt4)
                    ->Args({rows, cols, n_tokens, t})
                    ->ArgNames({"rows", "cols", "tokens", "threads"})
                    ->UseRealTime();
    // Block types on Qwen3-30B-A3B's expert shapes (rows of 768 and 2048: whole 256-element
    // blocks for IQ4_XS and the K-quants); with --benchmark_repetitions=N the min and max
    // of the repetitions are reported beside the median. 4, 8 and 16 tokens: where the
    // AMX-INT8 kernels start to pay (a prompt's tokens per expert are often that few).
    for (int64_t type = 0; type < int64_t(std::size(kBlockTypes)); ++type)
        for (const auto &[rows, cols] : std::vector<std::pair<int64_t, int64_t>>{{2048, 768}, {768, 2048}})
            for (int64_t n_tokens : {1, 4, 8, 16, 32})
                for (int t : thread_counts())
                    benchmark::RegisterBenchmark("MatmulBlock", BM_MatmulBlock)
                        ->Args({type, rows, cols, n_tokens, t})
                        ->ArgNames({"type", "rows", "cols", "tokens", "threads"})
                        ->ComputeStatistics("min", min_of)
                        ->ComputeStatistics("max", max_of)
                        ->UseRealTime();
    for (int t : thread_counts()) {
        benchmark::RegisterBenchmark("RmsNorm", BM_RmsNorm)->Args({4096, t})->ArgNames({"dim", "threads"})->UseRealTime();
        benchmark::RegisterBenchmark("AttentionDecode", BM_AttentionDecode)
            ->Args({4096, t})
            ->ArgNames({"context", "threads"})
            ->UseRealTime();
    }
}

}  // namespace
}  // namespace mst

int main(int argc, char **argv) {
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
    for (int t : mst::thread_counts()) {
        mst::g_read_bandwidth[t] = mst::measure_read_bandwidth(t);
        std::printf("memory read bandwidth, %d thread(s): %.2f GB/s\n", t, mst::g_read_bandwidth[t] / 1e9);
    }
    benchmark::AddCustomContext("cpu_isa", std::string(mst::cpu_isa_name(mst::cpu_isa_from_env())));
    mst::register_benchmarks();
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
}
