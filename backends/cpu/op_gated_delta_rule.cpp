// The gated delta rule over a whole batch of tokens in one call.
//
// The columns of a head's state S [k_dim][v_dim] evolve independently: column j needs
// only S[:, j], k, q and v[j]. So the work is split into (head, tile of kColumns columns)
// items; an item copies its k_dim x kColumns slice of S into a local buffer (8 KiB for
// k_dim 128: it stays in L1), runs every token of the batch through it, and writes it
// back. The state is thus read from and written to memory once per call, not once per
// token, and the batch costs about 4 multiply-adds per state element and token.
//
// This sequential form was measured inside a whole linear-attention layer at the shapes of
// Qwen3.5-397B and Qwen3-Next-80B (bench/bench_gated_deltanet.cpp): 3-7% of a prefill's
// time. The chunked (UT-transform) form, which at 128 x 128 heads does more arithmetic
// than this one and pays off on matrix units, is therefore not used.
#include <algorithm>
#include <cmath>
#include <vector>

#include "backends/cpu/cpu_backend.h"
#include "backends/cpu/parallel_for.h"

namespace mst {
namespace {

constexpr int64_t kColumns = 16;

struct TileJob {
    const float *q, *k, *v, *decay, *beta, *state_in;
    float *state_out, *out;
    int64_t n_tokens, n_heads, n_k_heads, k_dim, v_dim;
    float scale;
};

// Vectors of L floats: the baseline copy of the kernel below uses 4 (SSE2 registers), the
// AVX2 copy 8. `mem` accesses float arrays in place (unaligned, may alias floats); values
// live in `val`. (Member typedefs, since attributes do not survive as template arguments.)
template <int L>
struct Lanes;
template <>
struct Lanes<4> {
    typedef float val __attribute__((vector_size(16)));
    typedef float mem __attribute__((vector_size(16), may_alias, aligned(4)));
};
template <>
struct Lanes<8> {
    typedef float val __attribute__((vector_size(32)));
    typedef float mem __attribute__((vector_size(32), may_alias, aligned(4)));
};

// Copy the tile's columns of the state in (zeros for none) and out.
[[gnu::always_inline]] inline void load_tile(const TileJob &p, int64_t head, int64_t j0, int64_t w, float *s) {
    for (int64_t i = 0; i < p.k_dim; ++i)
        for (int64_t j = 0; j < w; ++j)
            s[i * w + j] = p.state_in ? p.state_in[(head * p.k_dim + i) * p.v_dim + j0 + j] : 0.0f;
}
[[gnu::always_inline]] inline void store_tile(const TileJob &p, int64_t head, int64_t j0, int64_t w, const float *s) {
    for (int64_t i = 0; i < p.k_dim; ++i)
        for (int64_t j = 0; j < w; ++j) p.state_out[(head * p.k_dim + i) * p.v_dim + j0 + j] = s[i * w + j];
}

// One (head, 16-column tile), every token. Per token, two passes over the k_dim x 16
// slice of S in the L1-resident scratch `s`:
//   r = S^T k;  delta = beta * (v - decay * r)          (decay folded into r)
//   S = decay * S + k delta^T;  o = S^T q               (the only pass that writes S)
// A row of the tile is NV vectors of L floats; U rows are taken at once, each with its
// own accumulators (8 vectors in all), so that the additions into one column do not wait
// on each other.
// Nothing here calls a library function (see kernels_avx2.cpp on why code inlined into a
// target region must not).
template <int L>
[[gnu::always_inline]] inline void delta_tile16(const TileJob &p, int64_t head, int64_t j0, float *s) {
    using V = typename Lanes<L>::val;
    using M = typename Lanes<L>::mem;
    constexpr int64_t W = kColumns;
    constexpr int NV = int(W) / L, U = 8 / NV;
    const int64_t dk = p.k_dim, dv = p.v_dim, k_head = head / (p.n_heads / p.n_k_heads);
    const int64_t dk_u = dk / U * U;
    load_tile(p, head, j0, W, s);
    for (int64_t t = 0; t < p.n_tokens; ++t) {
        const float *qt = p.q + (t * p.n_k_heads + k_head) * dk;
        const float *kt = p.k + (t * p.n_k_heads + k_head) * dk;
        const float *vt = p.v + (t * p.n_heads + head) * dv + j0;
        const float decay = p.decay[t * p.n_heads + head], beta = p.beta[t * p.n_heads + head];

        V acc[U][NV];
#pragma GCC unroll 8
        for (int u = 0; u < U; ++u)
#pragma GCC unroll 4
            for (int c = 0; c < NV; ++c) acc[u][c] = V{};
        int64_t i = 0;
        for (; i < dk_u; i += U)
#pragma GCC unroll 8
            for (int u = 0; u < U; ++u)
#pragma GCC unroll 4
                for (int c = 0; c < NV; ++c)
                    acc[u][c] += kt[i + u] * *reinterpret_cast<const M *>(s + (i + u) * W + c * L);
        for (; i < dk; ++i)
#pragma GCC unroll 4
            for (int c = 0; c < NV; ++c) acc[0][c] += kt[i] * *reinterpret_cast<const M *>(s + i * W + c * L);
        V delta[NV];
#pragma GCC unroll 4
        for (int c = 0; c < NV; ++c) {
            V r = acc[0][c];
#pragma GCC unroll 8
            for (int u = 1; u < U; ++u) r += acc[u][c];
            delta[c] = beta * (*reinterpret_cast<const M *>(vt + c * L) - decay * r);
        }

#pragma GCC unroll 8
        for (int u = 0; u < U; ++u)
#pragma GCC unroll 4
            for (int c = 0; c < NV; ++c) acc[u][c] = V{};
        for (i = 0; i < dk_u; i += U)
#pragma GCC unroll 8
            for (int u = 0; u < U; ++u)
#pragma GCC unroll 4
                for (int c = 0; c < NV; ++c) {
                    M *sv = reinterpret_cast<M *>(s + (i + u) * W + c * L);
                    const V updated = decay * V(*sv) + kt[i + u] * delta[c];
                    *sv = updated;
                    acc[u][c] += qt[i + u] * updated;
                }
        for (; i < dk; ++i)
#pragma GCC unroll 4
            for (int c = 0; c < NV; ++c) {
                M *sv = reinterpret_cast<M *>(s + i * W + c * L);
                const V updated = decay * V(*sv) + kt[i] * delta[c];
                *sv = updated;
                acc[0][c] += qt[i] * updated;
            }
        float *ot = p.out + (t * p.n_heads + head) * dv + j0;
#pragma GCC unroll 4
        for (int c = 0; c < NV; ++c) {
            V o = acc[0][c];
#pragma GCC unroll 8
            for (int u = 1; u < U; ++u) o += acc[u][c];
            *reinterpret_cast<M *>(ot + c * L) = p.scale * o;
        }
    }
    store_tile(p, head, j0, W, s);
}

// The same arithmetic for a tile narrower than 16 columns (the end of a v_dim that is
// not a multiple of 16), one column at a time.
void delta_tile_narrow(const TileJob &p, int64_t head, int64_t j0, int64_t w, float *s) {
    const int64_t dk = p.k_dim, dv = p.v_dim, k_head = head / (p.n_heads / p.n_k_heads);
    load_tile(p, head, j0, w, s);
    for (int64_t t = 0; t < p.n_tokens; ++t) {
        const float *qt = p.q + (t * p.n_k_heads + k_head) * dk;
        const float *kt = p.k + (t * p.n_k_heads + k_head) * dk;
        const float *vt = p.v + (t * p.n_heads + head) * dv + j0;
        const float decay = p.decay[t * p.n_heads + head], beta = p.beta[t * p.n_heads + head];
        float *ot = p.out + (t * p.n_heads + head) * dv + j0;
        for (int64_t j = 0; j < w; ++j) {
            float r = 0.0f;
            for (int64_t i = 0; i < dk; ++i) r += kt[i] * s[i * w + j];
            const float delta = beta * (vt[j] - decay * r);
            float o = 0.0f;
            for (int64_t i = 0; i < dk; ++i) {
                s[i * w + j] = decay * s[i * w + j] + kt[i] * delta;
                o += qt[i] * s[i * w + j];
            }
            ot[j] = p.scale * o;
        }
    }
    store_tile(p, head, j0, w, s);
}

using TileFn = void (*)(const TileJob &, int64_t, int64_t, int64_t, float *);

// Full tiles take the vector path; the narrow end of a v_dim that is not a multiple of
// kColumns is rare and small, and stays in baseline code.
void tile_scalar(const TileJob &p, int64_t head, int64_t j0, int64_t width, float *s) {
    if (width == kColumns)
        delta_tile16<4>(p, head, j0, s);
    else
        delta_tile_narrow(p, head, j0, width, s);
}

#if defined(__x86_64__)
#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c")
void tile_avx2(const TileJob &p, int64_t head, int64_t j0, int64_t width, float *s) {
    if (width == kColumns)
        delta_tile16<8>(p, head, j0, s);
    else
        delta_tile_narrow(p, head, j0, width, s);
}
#pragma GCC pop_options

#endif

TileFn tile_for(CpuIsa isa) {
#if defined(__x86_64__)
    // A 16-column tile row is two AVX registers; AVX-512 CPUs run the AVX2 copy, the
    // recurrence being a small part of a layer (see the top of this file).
    if (isa == CpuIsa::Avx512 || isa == CpuIsa::Avx2) return tile_avx2;
#endif
    (void)isa;
    return tile_scalar;
}

}  // namespace

void CpuBackend::gated_delta_rule(const float *q, const float *k, const float *v, const float *g, const float *beta,
                                  const float *state_in, float *state_out, float *out, const DeltaRuleShape &shape) {
    check_gated_delta_rule_params(q, k, v, g, beta, state_out, out, shape);
    // exp of the log decay once per (token, head), outside the per-ISA code.
    std::vector<float> decay(size_t(shape.n_tokens * shape.n_heads));
    for (size_t i = 0; i < decay.size(); ++i) decay[i] = std::exp(g[i]);

    TileJob job;
    job.q = q;
    job.k = k;
    job.v = v;
    job.decay = decay.data();
    job.beta = beta;
    job.state_in = state_in;
    job.state_out = state_out;
    job.out = out;
    job.n_tokens = shape.n_tokens;
    job.n_heads = shape.n_heads;
    job.n_k_heads = shape.n_k_heads;
    job.k_dim = shape.k_dim;
    job.v_dim = shape.v_dim;
    job.scale = shape.scale;
    const TileFn tile = tile_for(isa_);
    const int64_t n_tiles = (shape.v_dim + kColumns - 1) / kColumns;
    const int64_t n_items = shape.n_heads * n_tiles;
    const int threads = threads_for(std::max<int64_t>(shape.n_tokens, 1) * shape.n_heads * shape.k_dim * shape.v_dim);
    parallel_for(n_items, threads, [&](int64_t item_begin, int64_t item_end) {
        std::vector<float> scratch(size_t(shape.k_dim * kColumns));
        for (int64_t item = item_begin; item < item_end; ++item) {
            const int64_t head = item / n_tiles, j0 = (item % n_tiles) * kColumns;
            tile(job, head, j0, std::min(kColumns, shape.v_dim - j0), scratch.data());
        }
    });
}

}  // namespace mst
