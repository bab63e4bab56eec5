// Packed-format benchmarks (bench/README.md, "Packed format"):
//   Xxh64            the checksum's speed, the cost of verify_checksums per byte read
//   Convert/...      converter rate (source bytes per second) per expert type and zstd
//   ReadExperts/...  expert blobs through the expert store (no cache), checksums on or
//                    off, from the page cache (warm) or with it dropped after each read
//   Decode/...       tokens per second of a session over the packed model with no expert
//                    cache (every expert read every token), checksums on or off
//   Matmul/...       the quantized kernels against bf16 on a 4096 x 4096 matrix, decode
//                    (1 token) and prefill (64 tokens), weight bytes per second
//
//   build/bench/bench_packed [--benchmark_filter=...]
// The synthetic checkpoint (random bf16, 2 layers x 32 experts of 3 x 1024 x 768) is
// written once under $TMPDIR and removed at exit.
#include <benchmark/benchmark.h>
#include <omp.h>
#include <xxhash.h>

#include <filesystem>
#include <map>
#include <optional>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "backends/cpu/cpu_backend.h"
#include "convert/converter.h"
#include "core/quant.h"
#include "experts/expert_store.h"
#include "format/checkpoint.h"
#include "format/packed_format.h"
#include "moestream.hpp"
#include "storage/storage_tier.h"
#include "synthetic_checkpoint.h"
#include "test_paths.h"

namespace mst {
namespace {

namespace fs = std::filesystem;

// A synthetic checkpoint directory and its packed forms, made once.
class Fixture {
public:
    static Fixture &get() {
        static Fixture f;
        return f;
    }
    const std::string &source() const { return source_; }
    // The source converted with `experts` (nullopt = bf16) and zstd level, made on first use.
    const std::string &packed(std::optional<DType> experts, int zstd) {
        const std::string key = std::string(experts ? dtype_name(*experts) : "BF16") + "_z" + std::to_string(zstd);
        auto it = packed_.find(key);
        if (it != packed_.end()) return it->second;
        ConvertOptions o;
        o.experts = experts;
        o.zstd_level = zstd;
        o.force = true;
        const std::string out = dir_ + "/" + key + ".mst";
        convert_checkpoint(source_, out, o);
        return packed_.emplace(key, out).first->second;
    }
    ~Fixture() { fs::remove_all(dir_); }

private:
    Fixture() {
        dir_ = test::make_temp_dir("mst_bench_packed_");
        source_ = dir_ + "/src";
        fs::create_directories(source_);
        test::SyntheticShape shape;
        shape.hidden = 1024;
        shape.layers = 2;
        shape.experts = 32;
        shape.expert_ffn = 768;
        shape.heads = 8;
        shape.kv_heads = 2;
        shape.head_dim = 128;
        shape.vocab = 1024;
        test::write_synthetic_qwen3_moe(source_, shape);
    }
    std::string dir_, source_;
    std::map<std::string, std::string> packed_;
};

void Xxh64(benchmark::State &state) {
    std::vector<uint8_t> data(size_t(64) << 20, 0x5a);
    for (auto _ : state) benchmark::DoNotOptimize(XXH64(data.data(), data.size(), 0));
    state.SetBytesProcessed(int64_t(state.iterations()) * int64_t(data.size()));
}
BENCHMARK(Xxh64)->Unit(benchmark::kMillisecond)->UseRealTime();

// Arg 0: 0 bf16, 8 q8, 4 q4; arg 1: zstd level.
void Convert(benchmark::State &state) {
    Fixture &f = Fixture::get();
    ConvertOptions o;
    if (state.range(0) == 8) o.experts = DType::Q8;
    else if (state.range(0) == 4) o.experts = DType::Q4;
    else o.experts.reset();
    o.zstd_level = int(state.range(1));
    o.force = true;
    const std::string out = f.source() + "/../convert_bench.mst";
    uint64_t source_bytes = 0, file_bytes = 0;
    for (auto _ : state) {
        const ConvertReport r = convert_checkpoint(f.source(), out, o);
        source_bytes += r.source_bytes;
        file_bytes = r.file_bytes;
    }
    fs::remove(out);
    state.SetBytesProcessed(int64_t(source_bytes));
    state.counters["file_MiB"] = double(file_bytes) / (1 << 20);
}
BENCHMARK(Convert)
    ->ArgNames({"experts", "zstd"})
    ->Args({0, 0})
    ->Args({8, 0})
    ->Args({4, 0})
    ->Args({0, 3})
    ->Args({4, 3})
    ->Unit(benchmark::kMillisecond)->UseRealTime()
    ->Iterations(1);

// Arg 0: verify checksums; arg 1: drop the page cache after each read (cold reads);
// arg 2: expert type as in Convert.
void ReadExperts(benchmark::State &state) {
    Fixture &f = Fixture::get();
    const std::optional<DType> type =
        state.range(2) == 8 ? std::optional<DType>(DType::Q8) : state.range(2) == 4 ? std::optional<DType>(DType::Q4)
                                                                                     : std::nullopt;
    const std::string path = f.packed(type, 0);
    const auto checkpoint = Checkpoint::open(path);
    StorageOptions storage;
    storage.drop_after_read = state.range(1) != 0;
    ExpertStore store(open_storage(checkpoint->files(), storage), checkpoint->packed()->experts, 0, "none");
    store.set_blob_reads(BlobReadOptions{state.range(0) != 0, checkpoint->files()});
    ExpertIoStats io;
    uint64_t bytes = 0;
    for (auto _ : state) {
        // Eight experts per request, as a top-8 decode step asks for them.
        for (int layer = 0; layer < store.n_layers(); ++layer)
            for (int32_t first = 0; first + 8 <= store.n_experts(layer); first += 8) {
                std::vector<int32_t> ids(8);
                for (int32_t k = 0; k < 8; ++k) ids[size_t(k)] = first + k;
                for (const ExpertHandle &h : store.fetch(layer, ids, io)) bytes += h->nbytes;
            }
    }
    state.SetBytesProcessed(int64_t(bytes));
}
BENCHMARK(ReadExperts)
    ->ArgNames({"verify", "cold", "experts"})
    ->ArgsProduct({{0, 1}, {0, 1}, {0, 4}})
    ->Unit(benchmark::kMillisecond)->UseRealTime()
    ->MinTime(0.5);

// Arg 0: verify checksums; arg 1: expert type as in Convert.
void Decode(benchmark::State &state) {
    Fixture &f = Fixture::get();
    const std::optional<DType> type = state.range(1) == 4 ? std::optional<DType>(DType::Q4) : std::nullopt;
    mst_model_params p = mst::model_params();
    p.backend = "cpu";
    p.expert_cache_bytes = 0;
    p.verify_checksums = int32_t(state.range(0));
    const mst::ModelHandle model(f.packed(type, 0), p);
    mst::SessionHandle session(model);
    int32_t token = 1;
    for (auto _ : state) {
        if (session.n_past() > 200) session.reset();
        session.eval({token});
        token = token * 7 % 1000 + 1;
    }
    state.counters["tokens_per_s"] = benchmark::Counter(double(state.iterations()), benchmark::Counter::kIsRate);
    state.SetBytesProcessed(int64_t(session.stats().expert_bytes_read));
}
BENCHMARK(Decode)->ArgNames({"verify", "experts"})->ArgsProduct({{0, 1}, {0, 4}})->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(2.0);

// Arg 0: 0 bf16, 8 q8, 4 q4; arg 1: tokens.
void Matmul(benchmark::State &state) {
    constexpr int64_t kRows = 4096, kCols = 4096;
    const DType t = state.range(0) == 8 ? DType::Q8 : state.range(0) == 4 ? DType::Q4 : DType::BF16;
    const int64_t tokens = state.range(1);
    std::mt19937 rng(1);
    std::normal_distribution<float> dist(0.0f, 0.02f);
    std::vector<float> w(size_t(kRows * kCols));
    for (float &v : w) v = dist(rng);
    const uint64_t row_bytes = dtype_row_bytes(t, kCols);
    std::vector<uint8_t> data(size_t(row_bytes * kRows));
    for (int64_t r = 0; r < kRows; ++r) {
        if (t == DType::BF16) {
            auto *out = reinterpret_cast<uint16_t *>(data.data() + r * row_bytes);
            for (int64_t c = 0; c < kCols; ++c) out[c] = f32_to_bf16(w[size_t(r * kCols + c)]);
        } else {
            quantize_row(t, w.data() + r * kCols, kCols, data.data() + r * row_bytes);
        }
    }
    std::vector<float> x(size_t(tokens * kCols), 0.5f), y(size_t(tokens * kRows));
    CpuBackend backend(omp_get_max_threads(), cpu_isa_from_env());
    const WeightView view{t, data.data(), kRows, kCols};
    for (auto _ : state) backend.matmul(view, x.data(), y.data(), tokens);
    state.SetBytesProcessed(int64_t(state.iterations()) * int64_t(data.size()));
    state.counters["tokens_per_s"] =
        benchmark::Counter(double(state.iterations() * tokens), benchmark::Counter::kIsRate);
}
BENCHMARK(Matmul)->ArgNames({"type", "tokens"})->ArgsProduct({{0, 8, 4}, {1, 64}})->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
}  // namespace mst

BENCHMARK_MAIN();
