// bench_matvec_cpu: one thread's throughput of the one-token (decode) products over Q4 and
// Q8 weights at Qwen3-30B-A3B's expert shapes, in weight bytes per second of the thread's
// CPU time, with the weights L2-resident (one matrix, reused) and memory-resident (cycling
// through 1 GiB of copies), beside a 1 GiB read-sum on the same thread, and the LM head's
// shape (q8 151936 x 2048) from memory. CPU time, not wall
// time, so that a shared machine's preemption stays out of the figures (the memory
// bandwidth other processes take does not); bench/README.md "Decode profile" records
// results.
//
//   bench_matvec_cpu [--isa scalar|avx2|avx512|auto] [--rounds N] [--help]
//
// MST_CPU_VNNI=0 makes the AVX-512 table use its madd kernels instead of VNNI;
// MST_CPU_ACT_BITS picks 8- or 16-bit activations per weight type as in the library.
#include <fmt/format.h>
#include <time.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "backends/cpu/cpu_isa.h"
#include "backends/cpu/quant_kernels.h"
#include "core/error.h"
#include "core/quant.h"

namespace {

using namespace mst;

constexpr size_t kPoolBytes = size_t(1) << 30;
constexpr const char *kUsage = "usage: bench_matvec_cpu [--isa scalar|avx2|avx512|auto] [--rounds N]";

double thread_cpu_seconds() {
    timespec ts{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return double(ts.tv_sec) + double(ts.tv_nsec) * 1e-9;
}

std::string spread(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return fmt::format("{:.2f} / {:.2f} / {:.2f}", v.front(), v[v.size() / 2], v.back());
}

// GB/s of CPU time reading `n` bytes with a plain summing loop (the compiler vectorizes it).
double read_sum_rate(const std::vector<uint64_t> &buf) {
    const double t0 = thread_cpu_seconds();
    uint64_t sum = 0;
    for (uint64_t v : buf) sum += v;
    const double s = thread_cpu_seconds() - t0;
    if (sum != 0) fmt::print(stderr, "read-sum: unexpected sum\n");
    return double(buf.size() * sizeof(uint64_t)) / s / 1e9;
}

int run(int argc, char **argv) {
    CpuIsa isa = cpu_isa_best();
    int rounds = 3;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        if (a == "--isa" && i + 1 < argc) isa = cpu_isa_parse(argv[++i]);
        else if (a == "--rounds" && i + 1 < argc) rounds = std::clamp(std::atoi(argv[++i]), 1, 100);
        else if (a == "--help" || a == "-h") {
            fmt::print("{}\n{}", kUsage,
                       "One thread's one-token Q4/Q8 product rates in weight GB per CPU-second, weights in L2 and\n"
                       "cycled through 1 GiB, beside a 1 GiB read-sum; then the LM head's shape (q8 151936 x 2048)\n"
                       "from memory. --isa picks the kernel table (default: the best this CPU runs); --rounds the\n"
                       "repetitions (min / median / max). MST_CPU_VNNI=0 makes the AVX-512 table use its madd\n"
                       "kernels.\n");
            return 0;
        } else {
            fmt::print(stderr, "unknown option '{}'\n{}\n", a, kUsage);
            return 2;
        }
    }
    const CpuKernels &float_kernels = cpu_kernels(isa);
#if defined(__x86_64__)
    const bool vnni = isa == CpuIsa::Avx512 && cpu_use_avx512_vnni();
#else
    const bool vnni = false;
#endif
    fmt::print("ISA {}{}; 1 thread, 1 token; GB/s per CPU-second, min / median / max of {} rounds\n",
               cpu_isa_name(isa), vnni ? " (VNNI)" : "", rounds);

    std::vector<uint64_t> zeros(kPoolBytes / sizeof(uint64_t), 0);
    std::vector<double> read;
    for (int r = 0; r < rounds; ++r) read.push_back(read_sum_rate(zeros));
    zeros = {};
    fmt::print("{:<40} {}\n", "read-sum 1 GiB", spread(read));

    std::mt19937 rng(1);
    std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
    // The expert shapes in both types, then the LM head (q8, 151936 x 2048: a third of the bytes
    // of a decode token of the 8-layer GGUF), which is bigger than L2 and so measured from
    // memory only.
    struct Shape {
        int64_t rows, cols;
        DType t;
    };
    for (const auto &[rows, cols, t] : {Shape{768, 2048, DType::Q4}, Shape{768, 2048, DType::Q8},
                                        Shape{2048, 768, DType::Q4}, Shape{2048, 768, DType::Q8},
                                        Shape{151936, 2048, DType::Q8}}) {
        const int64_t n_blocks = (cols + kQuantBlock - 1) / kQuantBlock;
        const int64_t row_bytes = int64_t(dtype_row_bytes(t, cols));
        const size_t matrix_bytes = size_t(row_bytes * rows);
        const size_t copies = std::max<size_t>(1, kPoolBytes / matrix_bytes);
        std::vector<uint8_t> pool(matrix_bytes * copies);
        std::vector<float> v(static_cast<size_t>(cols));
        for (int64_t r = 0; r < rows; ++r) {
            for (float &x : v) x = dist(rng);
            quantize_row(t, v.data(), cols, pool.data() + r * row_bytes);
        }
        for (size_t c = 1; c < copies; ++c)
            std::copy_n(pool.data(), matrix_bytes, pool.data() + c * matrix_bytes);
        for (float &x : v) x = dist(rng);
        // The table the library would use for this weight type: MST_CPU_ACT_BITS=q4 gives Q4
        // weights 8-bit activations, as in a decode run with it.
        const QuantKernels &k = quant_kernels_for(float_kernels, t);
        std::vector<QuantizedActivation> xq(static_cast<size_t>(n_blocks));
        k.quantize_activation(v.data(), cols, xq.data());
        std::vector<float> y(static_cast<size_t>(rows));
        const QuantKernels::DotRowsFn fn = t == DType::Q4 ? k.dot_rows_q4 : k.dot_rows_q8;
        const bool fits_l2 = matrix_bytes <= (size_t(2) << 20);
        for (const bool memory : {false, true}) {
            if (!memory && !fits_l2) continue;
            const size_t calls = memory ? copies : std::max<size_t>(100, copies);
            std::vector<double> rates;
            for (int r = 0; r < rounds; ++r) {
                const double t0 = thread_cpu_seconds();
                for (size_t c = 0; c < calls; ++c) {
                    const uint8_t *matrix = pool.data() + (memory ? c * matrix_bytes : 0);
                    fn(matrix, row_bytes, rows, n_blocks, xq.data(), n_blocks, 1, y.data(), rows);
                }
                rates.push_back(double(matrix_bytes * calls) / (thread_cpu_seconds() - t0) / 1e9);
            }
            fmt::print("{:<40} {}\n",
                       fmt::format("{} {} x {}{}, {}", dtype_name(t), rows, cols, k.int8_activations ? " (8-bit act.)" : "",
                                   memory ? "memory" : "L2"),
                       spread(rates));
        }
    }
    return 0;
}

}  // namespace

int main(int argc, char **argv) {
    try {
        return run(argc, argv);
    } catch (const std::exception &e) {
        fmt::print(stderr, "bench_matvec_cpu: {}\n", e.what());
        return 1;
    }
}
