// y = x W with W stored [in][out] (Backend::matmul_xw). Each output element sums down a
// column of W, so the kernel walks W's rows in order and adds x[t][r] * W[r][:] into a
// strip of y: for one token that is a row-wise axpy, and threads split the output
// columns so that each reads only its strip of every row and writes its own outputs.
//
// The inner loops are plain C++ that GCC vectorises; they are compiled twice, once for
// baseline x86-64 and once inside an AVX2 + FMA function chosen by the backend's ISA.
// Everything they inline is internal or a builtin, so no AVX2 copy of a shared inline
// function can end up called on a CPU without AVX2.
#include <algorithm>
#include <bit>
#include <cstring>

#include "backends/cpu/cpu_backend.h"
#include "backends/cpu/parallel_for.h"
#include "core/error.h"

namespace mst {
namespace {

// Output columns per work item: wide strips keep each row's reads long and contiguous
// (4 KiB of bf16), and a token tile's strips of y (4 x 2048 floats) stay in L1/L2 while
// the rows stream past. A decode step with fewer strips than threads narrows them.
constexpr int64_t kColumnBlock = 2048;
// Rows per pass over a strip: their weights (64 x 2048 x 2 bytes for bf16) stay in L2
// while every token tile uses them.
constexpr int64_t kRowBlock = 64;
// Tokens sharing one load of a weight element.
constexpr int kTokenTile = 4;
// Below this many multiply-adds a parallel region costs more than it saves.
constexpr int64_t kMinParallelMacs = 64 * 1024;

struct LoadF32 {
    using T = float;
    static float get(float v) { return v; }
};

struct LoadBf16 {
    using T = uint16_t;
    static float get(uint16_t h) { return std::bit_cast<float>(uint32_t(h) << 16); }
};

struct LoadF16 {
    using T = uint16_t;
    // Branch-free so that it vectorises: the exponent and mantissa bits shifted into a
    // float32 and multiplied by 2^112 rebias normal and subnormal halves exactly; an
    // all-ones exponent (inf, NaN) is restored afterwards.
    static float get(uint16_t h) {
        const uint32_t sign = uint32_t(h & 0x8000u) << 16;
        const uint32_t magnitude = uint32_t(h & 0x7fffu);
        const float scaled = std::bit_cast<float>(magnitude << 13) * 0x1p112f;
        const uint32_t special = magnitude >= 0x7c00u ? 0x7f800000u | (magnitude << 13) : 0u;
        return std::bit_cast<float>((special ? special : std::bit_cast<uint32_t>(scaled)) | sign);
    }
};

// y[t][c] += sum_{r < n_rows} x[t][r] * w[r][c] for t < NT, c < n_cols. Four rows at a
// time: each weight element is loaded and widened once for all NT tokens, and each y
// element loaded and stored once per four rows. One restrict pointer per token row lets
// GCC vectorise over c without runtime alias checks.
template <typename L, int NT>
[[gnu::always_inline]] inline void xw_rows(const typename L::T *__restrict w, int64_t ldw, int64_t n_rows,
                                           int64_t n_cols, const float *__restrict x, int64_t ldx,
                                           float *__restrict y, int64_t ldy) {
    float *__restrict y0 = y;
    float *__restrict y1 = NT > 1 ? y + ldy : y;
    float *__restrict y2 = NT > 2 ? y + 2 * ldy : y;
    float *__restrict y3 = NT > 3 ? y + 3 * ldy : y;
    int64_t r = 0;
    for (; r + 4 <= n_rows; r += 4) {
        const typename L::T *w0 = w + r * ldw, *w1 = w0 + ldw, *w2 = w1 + ldw, *w3 = w2 + ldw;
        float a[4][4] = {};
        for (int t = 0; t < NT; ++t)
            for (int k = 0; k < 4; ++k) a[t][k] = x[t * ldx + r + k];
        for (int64_t c = 0; c < n_cols; ++c) {
            const float v0 = L::get(w0[c]), v1 = L::get(w1[c]), v2 = L::get(w2[c]), v3 = L::get(w3[c]);
            y0[c] += a[0][0] * v0 + a[0][1] * v1 + a[0][2] * v2 + a[0][3] * v3;
            if constexpr (NT > 1) y1[c] += a[1][0] * v0 + a[1][1] * v1 + a[1][2] * v2 + a[1][3] * v3;
            if constexpr (NT > 2) y2[c] += a[2][0] * v0 + a[2][1] * v1 + a[2][2] * v2 + a[2][3] * v3;
            if constexpr (NT > 3) y3[c] += a[3][0] * v0 + a[3][1] * v1 + a[3][2] * v2 + a[3][3] * v3;
        }
    }
    for (; r < n_rows; ++r) {
        const typename L::T *wr = w + r * ldw;
        float a[4] = {};
        for (int t = 0; t < NT; ++t) a[t] = x[t * ldx + r];
        for (int64_t c = 0; c < n_cols; ++c) {
            const float v = L::get(wr[c]);
            y0[c] += a[0] * v;
            if constexpr (NT > 1) y1[c] += a[1] * v;
            if constexpr (NT > 2) y2[c] += a[2] * v;
            if constexpr (NT > 3) y3[c] += a[3] * v;
        }
    }
}

template <typename L>
[[gnu::always_inline]] inline void xw_tile(const void *w, int64_t ldw, int64_t n_rows, int64_t n_cols,
                                           const float *x, int64_t ldx, int n_tok, float *y, int64_t ldy) {
    const auto *wt = static_cast<const typename L::T *>(w);
    switch (n_tok) {
        case 1: xw_rows<L, 1>(wt, ldw, n_rows, n_cols, x, ldx, y, ldy); break;
        case 2: xw_rows<L, 2>(wt, ldw, n_rows, n_cols, x, ldx, y, ldy); break;
        case 3: xw_rows<L, 3>(wt, ldw, n_rows, n_cols, x, ldx, y, ldy); break;
        default: xw_rows<L, kTokenTile>(wt, ldw, n_rows, n_cols, x, ldx, y, ldy); break;
    }
}

// One tile: y[t][c] += sum_r x[t][r] * w[r][c] for t < n_tok (<= kTokenTile), r < n_rows,
// c < n_cols; w points at element [0][0] of the tile, rows ldw elements apart.
using XwTileFn = void (*)(const void *w, int64_t ldw, int64_t n_rows, int64_t n_cols, const float *x, int64_t ldx,
                          int n_tok, float *y, int64_t ldy);

template <typename L>
void xw_tile_baseline(const void *w, int64_t ldw, int64_t n_rows, int64_t n_cols, const float *x, int64_t ldx,
                      int n_tok, float *y, int64_t ldy) {
    xw_tile<L>(w, ldw, n_rows, n_cols, x, ldx, n_tok, y, ldy);
}

#if defined(__x86_64__)
template <typename L>
[[gnu::target("avx2,fma,f16c")]] void xw_tile_avx2(const void *w, int64_t ldw, int64_t n_rows, int64_t n_cols,
                                                   const float *x, int64_t ldx, int n_tok, float *y, int64_t ldy) {
    xw_tile<L>(w, ldw, n_rows, n_cols, x, ldx, n_tok, y, ldy);
}
#endif

template <typename L>
XwTileFn tile_for(CpuIsa isa) {
#if defined(__x86_64__)
    if (isa != CpuIsa::Scalar) return xw_tile_avx2<L>;
#endif
    (void)isa;
    return xw_tile_baseline<L>;
}

XwTileFn select_tile(CpuIsa isa, DType t) {
    switch (t) {
        case DType::F32: return tile_for<LoadF32>(isa);
        case DType::F16: return tile_for<LoadF16>(isa);
        case DType::BF16: return tile_for<LoadBf16>(isa);
        default:
            fail(MST_ERR_UNSUPPORTED, "matmul_xw: weight dtype {} is not supported (F32, F16, BF16)", dtype_name(t));
    }
}

}  // namespace

void CpuBackend::matmul_xw(const WeightView &w, const float *x, float *y, int64_t n_tokens) {
    check_matmul_xw_params(w, x, y, n_tokens);
    const XwTileFn tile = select_tile(isa_, w.dtype);
    const int64_t rows = w.rows, cols = w.cols;
    if (cols == 0 || n_tokens == 0) return;

    const size_t elem = dtype_size(w.dtype);
    const auto *wbytes = static_cast<const unsigned char *>(w.data);
    const bool parallel = n_threads_ > 1 && rows * cols * n_tokens >= kMinParallelMacs;
    // Fewer full-width strips than threads would leave threads idle: narrow them to one
    // per thread, a multiple of 16 columns (a cache line of bf16) and at least 16.
    int64_t strip = kColumnBlock;
    if (parallel && (cols + kColumnBlock - 1) / kColumnBlock < n_threads_)
        strip = std::max<int64_t>(16, ((cols + n_threads_ - 1) / n_threads_ + 15) / 16 * 16);
    const int64_t n_strips = (cols + strip - 1) / strip;
    const int n_par = parallel ? int(std::min<int64_t>(n_threads_, n_strips)) : 1;

    parallel_for(n_strips, n_par, [&](int64_t s_begin, int64_t s_end) {
        for (int64_t s = s_begin; s < s_end; ++s) {
            const int64_t c0 = s * strip, nc = std::min(strip, cols - c0);
            for (int64_t t = 0; t < n_tokens; ++t) std::memset(y + t * cols + c0, 0, size_t(nc) * sizeof(float));
            for (int64_t r0 = 0; r0 < rows; r0 += kRowBlock) {
                const int64_t nr = std::min(kRowBlock, rows - r0);
                const unsigned char *wb = wbytes + (size_t(r0) * size_t(cols) + size_t(c0)) * elem;
                for (int64_t t = 0; t < n_tokens; t += kTokenTile)
                    tile(wb, cols, nr, nc, x + t * rows + r0, rows, int(std::min<int64_t>(kTokenTile, n_tokens - t)),
                         y + t * cols + c0, cols);
            }
        }
    });
}

}  // namespace mst
