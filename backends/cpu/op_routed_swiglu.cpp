// CpuBackend::routed_swiglu: a layer's routed experts in one parallel region instead of
// Backend::routed_swiglu's seven per expert (quantize, gate, quantize, up, silu_mul,
// quantize, down), for decode (one token per expert) and prefill alike (the grouped GEMM:
// each expert over all the tokens routed to it). The region hands out, one at a time:
//
//   first units of (expert, 64 intermediate rows): the gate and up rows, SwiGLU on them,
//         and (for quantized down weights) their 32-blocks of the down input quantized;
//   then units of (expert, 64 output rows) of the down projections, each started once
//         every first unit of its expert is done (all of them were handed out before, so
//         a thread waits only for the other's last ones);
//   then, on the caller, the outputs added into each token's row in expert order.
//
// One region, not one per phase: no barrier (the thread done first waiting, then a second
// hand-off) between the two phases (bench/README.md "Where the decode threads' time goes").
//
// A unit's weight rows (64 rows, 72 KiB of a 2048-wide q4 matrix) stay in L2 while every
// token tile of the expert passes over them, so a prefill reads each expert's weights from
// memory once per batch, and the whole batch pays one region wake-up per pass instead of
// seven per expert.
//
// Each token row of h is quantized once for all experts (once per activation width, where
// the experts' gate and up types take different ones). The results are bitwise those of
// Backend::routed_swiglu: every output element comes from the same kernel call shape
// (the row kernels compute each row and token on its own, in the same token tiles), the
// same SwiGLU expression as silu_mul, the same block quantization and the same order of
// additions. Other weight types take Backend::routed_swiglu.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <thread>
#include <vector>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include "backends/cpu/cpu_backend.h"
#include "backends/cpu/matmul.h"
#include "backends/cpu/matmul_quant.h"
#include "backends/cpu/parallel_for.h"
#include "core/op_profile.h"
#include "core/quant.h"

namespace mst {
namespace {

// Token rows (summed over experts) per fused pass: bounds the pass's buffers (about 20 KiB
// per row at Qwen3-30B-A3B's sizes) on long prompts; passes go in expert order, so the
// additions into `out` keep their order.
constexpr int64_t kMaxRowsPerPass = 2048;
// Rows per unit: a multiple of the quantization block (32), so that a unit of the gate/up
// region owns whole blocks of the down input; 64 rows of a 2048-wide q4 matrix are 72 KiB.
constexpr int64_t kUnitRows = 64;

// Waits for `left` to reach 0 (acquire: what the units counted down wrote is visible
// after); false if `failed` is set first. Spins, yielding the core now and then: the units
// waited for are running on another thread, usually for microseconds.
bool wait_until_zero(const std::atomic<int64_t> &left, const std::atomic<bool> &failed) {
    for (uint32_t i = 1; left.load(std::memory_order_acquire) != 0; ++i) {
        if (failed.load(std::memory_order_relaxed)) return false;
        if (i % 256 == 0) std::this_thread::yield();
#if defined(__x86_64__)
        else _mm_pause();
#endif
    }
    return true;
}

bool fusable_dtype(DType t) {
    return t == DType::F32 || t == DType::F16 || t == DType::BF16 || t == DType::Q8 || t == DType::Q4;
}

uint64_t bytes_of(const WeightView &w) { return dtype_row_bytes(w.dtype, w.cols) * uint64_t(w.rows); }

// Rows [r0, r1) of y = w x for m tokens, as cpu_matmul computes them: x [m][w.cols] for
// float weights, xq [m][blocks] for quantized ones (quantized by `qk`, the table the weight
// type takes); y [m][w.rows].
struct RowProduct {
    RowProduct(const CpuKernels &k, const WeightView &weights)
        : w(weights), quantized(dtype_is_quantized(w.dtype)), qk(&quant_kernels_for(k, w.dtype)),
          row_bytes(int64_t(dtype_row_bytes(w.dtype, w.cols))), n_blocks((w.cols + kQuantBlock - 1) / kQuantBlock),
          tile(quantized ? qk->max_tokens : k.max_tokens) {
        if (quantized) quant_kernel = quant_dot_rows_kernel(*qk, w.dtype);
        else float_kernel = float_dot_rows_kernel(k, w.dtype);
    }

    // Which of the two activation forms (0: 16-bit, 1: 8-bit) a quantized product reads.
    int form() const { return qk->int8_activations ? 1 : 0; }

    void run(const float *x, const QuantizedActivation *xq, int64_t m, int64_t r0, int64_t r1, float *y) const {
        const auto *rows = static_cast<const unsigned char *>(w.data) + r0 * row_bytes;
        for (int64_t t = 0; t < m; t += tile) {
            const int n_tok = int(std::min(tile, m - t));
            if (quantized)
                quant_kernel(rows, row_bytes, r1 - r0, n_blocks, xq + t * n_blocks, n_blocks, n_tok, y + t * w.rows + r0,
                             w.rows);
            else
                float_kernel(rows, r1 - r0, w.cols, x + t * w.cols, w.cols, n_tok, y + t * w.rows + r0, w.rows);
        }
    }

    WeightView w;
    bool quantized;
    const QuantKernels *qk;
    int64_t row_bytes, n_blocks, tile;
    CpuKernels::DotRowsFn float_kernel = nullptr;
    QuantKernels::DotRowsFn quant_kernel = nullptr;
};

// One expert's buffers: its inputs gathered, the SwiGLU activations and the down output.
struct ExpertWork {
    int64_t m = 0;
    std::vector<float> x;                  // [m][hidden], when gate or up is a float type
    std::vector<QuantizedActivation> xq[2];  // [m][hidden blocks] per form, as gate and up read them
    std::vector<float> gate, up;           // [m][inter]; gate then holds silu(gate) * up
    std::vector<QuantizedActivation> aq;   // [m][inter blocks], when down is quantized
    std::vector<float> y;                  // [m][hidden]
};

}  // namespace

void CpuBackend::routed_swiglu(const float *h, float *out, int64_t n_tokens, int64_t hidden,
                               const SwigluExpertUse *experts, size_t n_experts) {
    check_routed_swiglu_params(h, out, n_tokens, hidden, experts, n_experts);
    for (size_t e = 0; e < n_experts; ++e) {
        const SwigluExpertUse &u = experts[e];
        if (!fusable_dtype(u.gate.dtype) || !fusable_dtype(u.up.dtype) || !fusable_dtype(u.down.dtype))
            return Backend::routed_swiglu(h, out, n_tokens, hidden, experts, n_experts);
    }
    for (size_t first = 0, end; first < n_experts; first = end) {
        int64_t rows = experts[first].n;
        for (end = first + 1; end < n_experts && rows + experts[end].n <= kMaxRowsPerPass; ++end) rows += experts[end].n;
        fused_routed_swiglu(h, out, n_tokens, hidden, experts + first, end - first);
    }
}

void CpuBackend::fused_routed_swiglu(const float *h, float *out, int64_t n_tokens, int64_t hidden,
                                     const SwigluExpertUse *experts, size_t n_experts) {
    uint64_t bytes = 0;
    for (size_t e = 0; e < n_experts; ++e)
        bytes += bytes_of(experts[e].gate) + bytes_of(experts[e].up) + bytes_of(experts[e].down);
    const OpTimer timer("routed_swiglu", bytes);

    const int64_t h_blocks = (hidden + kQuantBlock - 1) / kQuantBlock;
    std::vector<ExpertWork> work(n_experts);
    std::vector<RowProduct> gate, up, down;
    for (size_t e = 0; e < n_experts; ++e) {
        gate.emplace_back(kernels_, experts[e].gate);
        up.emplace_back(kernels_, experts[e].up);
        down.emplace_back(kernels_, experts[e].down);
    }
    // Each token row of h that an expert reads, quantized once for every expert, in each
    // form some quantized gate or up reads; those rows first (in parallel when a prefill
    // brings many). The quantizer of a form is that of any product of that form.
    std::vector<QuantizedActivation> hq[2];
    std::vector<bool> quantized_row[2];
    const QuantKernels *form_kernels[2] = {nullptr, nullptr};
    std::vector<std::pair<int, int64_t>> rows_to_quantize;  // (form, token)
    for (size_t e = 0; e < n_experts; ++e) {
        const SwigluExpertUse &u = experts[e];
        for (const RowProduct *p : {&gate[e], &up[e]}) {
            if (!p->quantized) continue;
            const int f = p->form();
            form_kernels[f] = p->qk;
            if (hq[f].empty()) {
                hq[f].resize(size_t(n_tokens * h_blocks));
                quantized_row[f].assign(size_t(n_tokens), false);
            }
            for (int64_t i = 0; i < u.n; ++i)
                if (!quantized_row[f][size_t(u.tokens[i])]) {
                    quantized_row[f][size_t(u.tokens[i])] = true;
                    rows_to_quantize.emplace_back(f, u.tokens[i]);
                }
        }
    }
    parallel_for(int64_t(rows_to_quantize.size()),
                 activation_quant_threads(int64_t(rows_to_quantize.size()), n_threads_), [&](int64_t i0, int64_t i1) {
                     for (int64_t i = i0; i < i1; ++i) {
                         const auto [f, t] = rows_to_quantize[size_t(i)];
                         form_kernels[f]->quantize_activation(h + t * hidden, hidden, hq[f].data() + t * h_blocks);
                     }
                 });
    std::vector<int64_t> first_unit_a{0}, first_unit_b{0};  // prefix sums of units per expert
    for (size_t e = 0; e < n_experts; ++e) {
        const SwigluExpertUse &u = experts[e];
        ExpertWork &w = work[e];
        w.m = u.n;
        const int64_t inter = u.gate.rows;
        if (!gate[e].quantized || !up[e].quantized) {
            w.x.resize(size_t(w.m * hidden));
            for (int64_t i = 0; i < w.m; ++i) std::copy_n(h + u.tokens[i] * hidden, hidden, w.x.data() + i * hidden);
        }
        for (const RowProduct *p : {&gate[e], &up[e]}) {
            std::vector<QuantizedActivation> &xq = w.xq[p->form()];
            if (!p->quantized || !xq.empty()) continue;
            xq.resize(size_t(w.m * h_blocks));
            for (int64_t i = 0; i < w.m; ++i)
                std::copy_n(hq[p->form()].data() + u.tokens[i] * h_blocks, h_blocks, xq.data() + i * h_blocks);
        }
        w.gate.resize(size_t(w.m * inter));
        w.up.resize(size_t(w.m * inter));
        if (down[e].quantized) w.aq.resize(size_t(w.m * down[e].n_blocks));
        w.y.resize(size_t(w.m * hidden));
        const int64_t units_a = w.m > 0 ? (inter + kUnitRows - 1) / kUnitRows : 0;
        const int64_t units_b = w.m > 0 ? (hidden + kUnitRows - 1) / kUnitRows : 0;
        first_unit_a.push_back(first_unit_a.back() + units_a);
        first_unit_b.push_back(first_unit_b.back() + units_b);
    }
    // The expert a unit belongs to, and its first row.
    auto locate = [](const std::vector<int64_t> &first, int64_t unit) {
        const size_t e = size_t(std::upper_bound(first.begin(), first.end(), unit) - first.begin() - 1);
        return std::pair<size_t, int64_t>(e, (unit - first[e]) * kUnitRows);
    };

    // First units of each expert not yet done: its down units wait for 0.
    std::vector<std::atomic<int64_t>> first_units_left(n_experts);
    for (size_t e = 0; e < n_experts; ++e)
        first_units_left[e].store(first_unit_a[e + 1] - first_unit_a[e], std::memory_order_relaxed);
    std::atomic<bool> failed{false};  // a first unit threw: waiting for it would never end
    const int64_t units_a = first_unit_a.back();
    const int64_t inter_work = units_a * kUnitRows * hidden * 2;
    parallel_for_dynamic(units_a + first_unit_b.back(), threads_for(inter_work), 1, [&](int64_t u0, int64_t u1) {
        for (int64_t unit = u0; unit < u1; ++unit) {
            if (unit >= units_a) {
                const auto [e, r0] = locate(first_unit_b, unit - units_a);
                if (!wait_until_zero(first_units_left[e], failed)) return;
                ExpertWork &w = work[e];
                down[e].run(w.gate.data(), w.aq.data(), w.m, r0, std::min(hidden, r0 + kUnitRows), w.y.data());
                continue;
            }
            const auto [e, r0] = locate(first_unit_a, unit);
            ExpertWork &w = work[e];
            const int64_t inter = experts[e].gate.rows, r1 = std::min(inter, r0 + kUnitRows);
            try {
                gate[e].run(w.x.data(), w.xq[gate[e].form()].data(), w.m, r0, r1, w.gate.data());
                up[e].run(w.x.data(), w.xq[up[e].form()].data(), w.m, r0, r1, w.up.data());
            } catch (...) {
                failed.store(true);
                throw;
            }
            for (int64_t t = 0; t < w.m; ++t) {
                float *g = w.gate.data() + t * inter;
                const float *u = w.up.data() + t * inter;
                // The expression of CpuBackend::silu_mul, so the result is the same.
                for (int64_t i = r0; i < r1; ++i) g[i] = g[i] / (1.0f + std::exp(-g[i])) * u[i];
                if (down[e].quantized)
                    down[e].qk->quantize_activation(g + r0, r1 - r0, w.aq.data() + t * down[e].n_blocks + r0 / kQuantBlock);
            }
            // Release: the down units that see 0 read this unit's gate and quantized rows.
            first_units_left[e].fetch_sub(1, std::memory_order_release);
        }
    });
    for (size_t e = 0; e < n_experts; ++e)
        for (int64_t i = 0; i < work[e].m; ++i)
            add_scaled(out + experts[e].tokens[i] * hidden, experts[e].weights[i], work[e].y.data() + i * hidden, hidden);
}

}  // namespace mst
