#include "core/ggml_kquants.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>

#include "core/error.h"
#include "core/quant.h"

namespace mst {
namespace {

constexpr float kMaxHalf = 65504.0f;

// ---- decoding -------------------------------------------------------------------------

// Q4_K / Q5_K: the 6-bit scale and minimum of sub-block g (layout at BlockQ4K).
void scale_min_k4(const uint8_t *s, int g, int &sc, int &m) {
    if (g < 4) {
        sc = s[g] & 63;
        m = s[g + 4] & 63;
    } else {
        sc = (s[g + 4] & 0x0f) | ((s[g - 4] >> 6) << 4);
        m = (s[g + 4] >> 4) | ((s[g] >> 6) << 4);
    }
}

// Q2_K / Q3_K: the two low bits of every element, in element order.
void unpack_2bit(const uint8_t *qs, uint8_t *code) {
    for (int n = 0; n < 2; ++n)
        for (int j = 0; j < 4; ++j)
            for (int l = 0; l < 32; ++l) code[n * 128 + j * 32 + l] = (qs[n * 32 + l] >> (2 * j)) & 3;
}

void scales_q2k(const BlockQ2K &b, KQuantCodes &o) {
    o.d = half_to_float(b.d);
    o.dmin = half_to_float(b.dmin);
    o.offset = 0;
    for (int g = 0; g < 16; ++g) {
        o.scale[g] = int16_t(b.scales[g] & 15);
        o.min[g] = int16_t(b.scales[g] >> 4);
    }
}

void scales_q3k(const BlockQ3K &b, KQuantCodes &o) {
    o.d = o.dmin = half_to_float(b.d);
    o.offset = 4;
    for (int g = 0; g < 16; ++g) {
        const int low = g < 8 ? b.scales[g] & 15 : b.scales[g - 8] >> 4;
        const int high = (b.scales[8 + g % 4] >> (2 * (g / 4))) & 3;
        o.scale[g] = int16_t((low | high << 4) - 32);
        o.min[g] = int16_t(4 * o.scale[g]);
    }
}

void codes_q3k(const BlockQ3K &b, KQuantCodes &o) {
    unpack_2bit(b.qs, o.code);
    for (int i = 0; i < 256; ++i) {
        const int bit = 4 * (i / 128) + (i % 128) / 32;
        o.code[i] |= uint8_t(((b.hmask[i % 32] >> bit) & 1) << 2);
    }
}

template <typename Block>
void scales_q45k(const Block &b, KQuantCodes &o) {
    o.d = half_to_float(b.d);
    o.dmin = half_to_float(b.dmin);
    o.offset = 0;
    for (int g = 0; g < 8; ++g) {
        int sc, m;
        scale_min_k4(b.scales, g, sc, m);
        o.scale[2 * g] = o.scale[2 * g + 1] = int16_t(sc);
        o.min[2 * g] = o.min[2 * g + 1] = int16_t(m);
    }
}

template <typename Block>
void codes_q4k(const Block &b, KQuantCodes &o) {
    for (int g = 0; g < 8; ++g)
        for (int l = 0; l < 32; ++l) o.code[g * 32 + l] = (b.qs[(g / 2) * 32 + l] >> (4 * (g & 1))) & 15;
}

void codes_q5k(const BlockQ5K &b, KQuantCodes &o) {
    codes_q4k(b, o);
    for (int g = 0; g < 8; ++g)
        for (int l = 0; l < 32; ++l) o.code[g * 32 + l] |= uint8_t(((b.qh[l] >> g) & 1) << 4);
}

void scales_q6k(const BlockQ6K &b, KQuantCodes &o) {
    o.d = o.dmin = half_to_float(b.d);
    o.offset = 32;
    for (int g = 0; g < 16; ++g) {
        o.scale[g] = b.scales[g];
        o.min[g] = int16_t(32 * b.scales[g]);
    }
}

void codes_q6k(const BlockQ6K &b, KQuantCodes &o) {
    for (int n = 0; n < 2; ++n)
        for (int k = 0; k < 4; ++k)
            for (int l = 0; l < 32; ++l) {
                const int low = (b.ql[n * 64 + l + 32 * (k & 1)] >> (4 * (k >> 1))) & 15;
                const int high = (b.qh[n * 32 + l] >> (2 * k)) & 3;
                o.code[n * 128 + k * 32 + l] = uint8_t(low | high << 4);
            }
}

// ---- fitting --------------------------------------------------------------------------
//
// What the quantizer does, in three steps per super-block:
//  1. Each sub-block's float scale (and minimum) is searched: 17 candidate ranges around
//     the plain one (the sub-block's [min, max], or its largest magnitude mapped onto the
//     wider negative side for the symmetric types), each followed by a least-squares fit
//     of scale (and minimum) to the codes it rounds to; the candidate with the smallest
//     squared error wins. Minimums are kept <= 0 (stored as non-negative m, subtracted).
//  2. Those scales are quantized to the type's 4-, 6- or 8-bit integers against f16
//     super-scales set by the largest of them.
//  3. With the integer scales fixed, the super-scales are refitted by least squares over
//     all 256 weights and the codes re-rounded, twice, keeping the better result.
// Measured RMS error on Gaussian rows: tests/unit/test_ggml_kquants.cpp prints it with the
// bits per weight, and docs/packed_format.md has the table.

struct Spec {
    int group;       // weights per sub-block: 16 or 32
    bool symmetric;  // codes centred by `offset`, signed scales, no minimum
    int qmax;        // largest code (codes 0..qmax)
    int offset;      // symmetric: code - offset is the level
    int scale_lo, scale_hi;  // the integer sub-block scale's range
};

Spec spec_of(DType t) {
    switch (t) {
        case DType::GGML_Q2_K: return {16, false, 3, 0, 0, 15};
        case DType::GGML_Q3_K: return {16, true, 7, 4, -32, 31};
        case DType::GGML_Q4_K: return {32, false, 15, 0, 0, 63};
        case DType::GGML_Q5_K: return {32, false, 31, 0, 0, 63};
        case DType::GGML_Q6_K: return {16, true, 63, 32, -128, 127};
        default: fail(MST_ERR_INVALID_ARGUMENT, "{} is not a K-quant type", dtype_name(t));
    }
}

constexpr int kSearchSteps = 8;  // candidates on each side of the plain range

inline int round_clamp(float v, int lo, int hi) {
    const int q = int(v < 0.0f ? v - 0.5f : v + 0.5f);
    return std::clamp(q, lo, hi);
}

// Asymmetric sub-block: weight ~= s * q - m with s >= 0, m >= 0, q in 0..qmax.
void fit_asymmetric(const float *x, int n, int qmax, float &best_s, float &best_m) {
    float lo = 0.0f, hi = x[0];
    for (int i = 0; i < n; ++i) {
        lo = std::min(lo, x[i]);
        hi = std::max(hi, x[i]);
    }
    best_m = -lo;
    best_s = 0.0f;
    if (hi <= lo) return;
    double sx = 0.0;
    for (int i = 0; i < n; ++i) sx += x[i];
    float best_err = INFINITY;
    for (int k = -kSearchSteps; k <= kSearchSteps; ++k) {
        const float iscale = (float(qmax) + 0.1f * float(k)) / (hi - lo);
        double sq = 0, sqq = 0, sqx = 0;
        uint8_t q[32];
        for (int i = 0; i < n; ++i) {
            q[i] = uint8_t(round_clamp((x[i] - lo) * iscale, 0, qmax));
            sq += q[i];
            sqq += double(q[i]) * q[i];
            sqx += double(q[i]) * x[i];
        }
        // Regress x on q: x = s q - m. A positive offset cannot be stored: refit with m = 0.
        const double det = double(n) * sqq - sq * sq;
        double s = det > 0.0 ? (double(n) * sqx - sq * sx) / det : 0.0;
        double m = (s * sq - sx) / double(n);
        if (m < 0.0) {
            m = 0.0;
            s = sqq > 0.0 ? sqx / sqq : 0.0;
        }
        if (!(s > 0.0)) continue;
        float err = 0.0f;
        for (int i = 0; i < n; ++i) {
            const float e = float(s) * float(q[i]) - float(m) - x[i];
            err += e * e;
        }
        if (err < best_err) {
            best_err = err;
            best_s = float(s);
            best_m = float(m);
        }
    }
}

// Symmetric sub-block: weight ~= s * l with l in -neg..pos and s of either sign.
float fit_symmetric(const float *x, int n, int neg, int pos) {
    float xm = 0.0f;
    for (int i = 0; i < n; ++i)
        if (std::fabs(x[i]) > std::fabs(xm)) xm = x[i];
    if (xm == 0.0f) return 0.0f;
    float best_s = 0.0f, best_err = INFINITY;
    for (int sign : {-1, 1})
        for (int k = -kSearchSteps; k <= kSearchSteps; ++k) {
            const float target = sign < 0 ? -float(neg) + 0.1f * float(k) : float(pos) + 0.1f * float(k);
            const float iscale = target / xm;
            double sll = 0, slx = 0;
            int8_t l[32];
            for (int i = 0; i < n; ++i) {
                l[i] = int8_t(round_clamp(x[i] * iscale, -neg, pos));
                sll += double(l[i]) * l[i];
                slx += double(l[i]) * x[i];
            }
            if (sll <= 0.0) continue;
            const float s = float(slx / sll);
            float err = 0.0f;
            for (int i = 0; i < n; ++i) {
                const float e = s * float(l[i]) - x[i];
                err += e * e;
            }
            if (err < best_err) {
                best_err = err;
                best_s = s;
            }
        }
    return best_s;
}

float to_half_checked(float v, const char *what) {
    if (!(std::fabs(v) <= kMaxHalf))
        fail(MST_ERR_UNSUPPORTED, "a super-block's {} {} is too large for an f16", what, v);
    return half_to_float(float_to_half(v));
}

// A super-block's integers before packing: codes 0..qmax (symmetric types: level + offset).
struct Fitted {
    float d = 0.0f, dmin = 0.0f;  // f16-exact
    int scale[16] = {}, min[16] = {};  // per sub-block (16 or 8 of them)
    uint8_t code[256] = {};
};

// Round every code for the current integer scales; returns the squared error of the
// first n weights.
float assign_codes(const Spec &sp, const float *x, int n, Fitted &f) {
    float err = 0.0f;
    for (int i = 0; i < 256; ++i) {
        const int g = i / sp.group;
        const float s = f.d * float(f.scale[g]);
        const float xi = i < n ? x[i] : 0.0f;
        float w;
        if (sp.symmetric) {
            const int l = s != 0.0f ? round_clamp(xi / s, -sp.offset, sp.qmax - sp.offset) : 0;
            f.code[i] = uint8_t(l + sp.offset);
            w = s * float(l);
        } else {
            const float m = f.dmin * float(f.min[g]);
            const int q = s != 0.0f ? round_clamp((xi + m) / s, 0, sp.qmax) : 0;
            f.code[i] = uint8_t(q);
            w = s * float(q) - m;
        }
        if (i < n) err += (w - xi) * (w - xi);
    }
    return err;
}

// Least squares for the super-scales given the integer scales and codes:
// x_i ~= d * a_i - dmin * b_i with a_i = scale * level, b_i = min.
bool refit_super(const Spec &sp, const float *x, int n, Fitted &f) {
    double saa = 0, sab = 0, sbb = 0, sax = 0, sbx = 0;
    for (int i = 0; i < n; ++i) {
        const int g = i / sp.group;
        const double a = double(f.scale[g]) * (int(f.code[i]) - sp.offset);
        const double b = sp.symmetric ? 0.0 : double(f.min[g]);
        saa += a * a;
        sab += a * b;
        sbb += b * b;
        sax += a * x[i];
        sbx += b * x[i];
    }
    double d, dmin = 0.0;
    if (sp.symmetric || sbb == 0.0) {
        if (saa <= 0.0) return false;
        d = sax / saa;
    } else {
        const double det = saa * sbb - sab * sab;
        if (det <= 0.0) return false;
        d = (sax * sbb - sbx * sab) / det;
        dmin = (sax * sab - sbx * saa) / det;  // x = d a - dmin b
        if (!(d > 0.0) || dmin < 0.0) return false;
    }
    if (!(std::fabs(d) <= kMaxHalf) || !(dmin <= kMaxHalf)) return false;
    f.d = half_to_float(float_to_half(float(d)));
    f.dmin = half_to_float(float_to_half(float(dmin)));
    return true;
}

Fitted fit_superblock(const Spec &sp, const float *x, int n) {
    const int groups = 256 / sp.group;
    float s[16] = {}, m[16] = {};
    for (int g = 0; g < groups; ++g) {
        const int begin = g * sp.group, count = std::clamp(n - begin, 0, sp.group);
        if (count == 0) continue;
        if (sp.symmetric)
            s[g] = fit_symmetric(x + begin, count, sp.offset, sp.qmax - sp.offset);
        else
            fit_asymmetric(x + begin, count, sp.qmax, s[g], m[g]);
    }
    Fitted f;
    if (sp.symmetric) {
        float sm = 0.0f;  // the scale of largest magnitude maps onto the wider negative side
        for (int g = 0; g < groups; ++g)
            if (std::fabs(s[g]) > std::fabs(sm)) sm = s[g];
        f.d = to_half_checked(sm / float(sp.scale_lo), "scale");
        f.dmin = f.d;
        for (int g = 0; g < groups; ++g)
            f.scale[g] = f.d != 0.0f ? round_clamp(s[g] / f.d, sp.scale_lo, sp.scale_hi) : 0;
    } else {
        const float smax = *std::max_element(s, s + groups), mmax = *std::max_element(m, m + groups);
        f.d = to_half_checked(smax / float(sp.scale_hi), "scale");
        f.dmin = to_half_checked(mmax / float(sp.scale_hi), "minimum");
        for (int g = 0; g < groups; ++g) {
            f.scale[g] = f.d > 0.0f ? round_clamp(s[g] / f.d, 0, sp.scale_hi) : 0;
            f.min[g] = f.dmin > 0.0f ? round_clamp(m[g] / f.dmin, 0, sp.scale_hi) : 0;
        }
    }
    float err = assign_codes(sp, x, n, f);
    for (int round = 0; round < 2; ++round) {
        Fitted next = f;
        if (!refit_super(sp, x, n, next)) break;
        const float next_err = assign_codes(sp, x, n, next);
        if (!(next_err < err)) break;
        err = next_err;
        f = next;
    }
    return f;
}

// ---- packing --------------------------------------------------------------------------

void pack_2bit(const uint8_t *code, uint8_t *qs) {
    std::memset(qs, 0, 64);
    for (int i = 0; i < 256; ++i) qs[32 * (i / 128) + i % 32] |= uint8_t((code[i] & 3) << (2 * ((i % 128) / 32)));
}

void pack_q2k(const Fitted &f, BlockQ2K &b) {
    b.d = float_to_half(f.d);
    b.dmin = float_to_half(f.dmin);
    for (int g = 0; g < 16; ++g) b.scales[g] = uint8_t(f.scale[g] | f.min[g] << 4);
    pack_2bit(f.code, b.qs);
}

void pack_q3k(const Fitted &f, BlockQ3K &b) {
    b.d = float_to_half(f.d);
    std::memset(b.scales, 0, sizeof b.scales);
    for (int g = 0; g < 16; ++g) {
        const int v = f.scale[g] + 32;
        b.scales[g % 8] |= uint8_t((v & 15) << (4 * (g / 8)));
        b.scales[8 + g % 4] |= uint8_t((v >> 4) << (2 * (g / 4)));
    }
    pack_2bit(f.code, b.qs);
    std::memset(b.hmask, 0, sizeof b.hmask);
    for (int i = 0; i < 256; ++i)
        b.hmask[i % 32] |= uint8_t(((f.code[i] >> 2) & 1) << (4 * (i / 128) + (i % 128) / 32));
}

template <typename Block>
void pack_q45k_common(const Fitted &f, Block &b) {
    b.d = float_to_half(f.d);
    b.dmin = float_to_half(f.dmin);
    std::memset(b.scales, 0, sizeof b.scales);
    for (int g = 0; g < 8; ++g) {
        const int sc = f.scale[g], m = f.min[g];
        if (g < 4) {
            b.scales[g] |= uint8_t(sc);
            b.scales[g + 4] |= uint8_t(m);
        } else {
            b.scales[g + 4] = uint8_t((sc & 15) | (m & 15) << 4);
            b.scales[g - 4] |= uint8_t((sc >> 4) << 6);
            b.scales[g] |= uint8_t((m >> 4) << 6);
        }
    }
    std::memset(b.qs, 0, sizeof b.qs);
    for (int i = 0; i < 256; ++i) {
        const int g = i / 32;
        b.qs[(g / 2) * 32 + i % 32] |= uint8_t((f.code[i] & 15) << (4 * (g & 1)));
    }
}

void pack_q5k(const Fitted &f, BlockQ5K &b) {
    pack_q45k_common(f, b);
    std::memset(b.qh, 0, sizeof b.qh);
    for (int i = 0; i < 256; ++i) b.qh[i % 32] |= uint8_t(((f.code[i] >> 4) & 1) << (i / 32));
}

void pack_q6k(const Fitted &f, BlockQ6K &b) {
    b.d = float_to_half(f.d);
    for (int g = 0; g < 16; ++g) b.scales[g] = int8_t(f.scale[g]);
    std::memset(b.ql, 0, sizeof b.ql);
    std::memset(b.qh, 0, sizeof b.qh);
    for (int i = 0; i < 256; ++i) {
        const int n = i / 128, k = (i % 128) / 32, l = i % 32;
        b.ql[n * 64 + l + 32 * (k & 1)] |= uint8_t((f.code[i] & 15) << (4 * (k >> 1)));
        b.qh[n * 32 + l] |= uint8_t((f.code[i] >> 4) << (2 * k));
    }
}

}  // namespace

void kquant_unpack_scales(DType t, const void *block, KQuantCodes &out) {
    switch (t) {
        case DType::GGML_Q2_K: return scales_q2k(*static_cast<const BlockQ2K *>(block), out);
        case DType::GGML_Q3_K: return scales_q3k(*static_cast<const BlockQ3K *>(block), out);
        case DType::GGML_Q4_K: return scales_q45k(*static_cast<const BlockQ4K *>(block), out);
        case DType::GGML_Q5_K: return scales_q45k(*static_cast<const BlockQ5K *>(block), out);
        case DType::GGML_Q6_K: return scales_q6k(*static_cast<const BlockQ6K *>(block), out);
        default: fail(MST_ERR_INVALID_ARGUMENT, "kquant_unpack: {} is not a K-quant type", dtype_name(t));
    }
}

void kquant_unpack(DType t, const void *block, KQuantCodes &out) {
    kquant_unpack_scales(t, block, out);
    switch (t) {
        case DType::GGML_Q2_K: return unpack_2bit(static_cast<const BlockQ2K *>(block)->qs, out.code);
        case DType::GGML_Q3_K: return codes_q3k(*static_cast<const BlockQ3K *>(block), out);
        case DType::GGML_Q4_K: return codes_q4k(*static_cast<const BlockQ4K *>(block), out);
        case DType::GGML_Q5_K: return codes_q5k(*static_cast<const BlockQ5K *>(block), out);
        default: return codes_q6k(*static_cast<const BlockQ6K *>(block), out);
    }
}

void dequantize_row_kquant(DType t, const void *src, float *dst, int64_t n) {
    const size_t block_bytes = dtype_size(t);
    const auto *bytes = static_cast<const uint8_t *>(src);
    KQuantCodes c;
    for (int64_t b = 0; b * kSuperBlock < n; ++b) {
        kquant_unpack(t, bytes + size_t(b) * block_bytes, c);
        const int64_t count = std::min(kSuperBlock, n - b * kSuperBlock);
        for (int64_t i = 0; i < count; ++i) {
            const int g = int(i / 16);
            const float dl = c.d * float(c.scale[g]);
            dst[b * kSuperBlock + i] =
                c.offset ? dl * float(int(c.code[i]) - c.offset) : dl * float(c.code[i]) - c.dmin * float(c.min[g]);
        }
    }
}

void quantize_row_kquant(DType t, const float *src, int64_t n, void *dst) {
    const Spec sp = spec_of(t);
    for (int64_t i = 0; i < n; ++i)
        if (!std::isfinite(src[i]))
            fail(MST_ERR_UNSUPPORTED, "cannot quantize a value that is not finite ({} at element {})", src[i], i);
    const size_t block_bytes = dtype_size(t);
    auto *bytes = static_cast<uint8_t *>(dst);
    for (int64_t b = 0; b * kSuperBlock < n; ++b) {
        const Fitted f = fit_superblock(sp, src + b * kSuperBlock, int(std::min(kSuperBlock, n - b * kSuperBlock)));
        void *out = bytes + size_t(b) * block_bytes;
        switch (t) {
            case DType::GGML_Q2_K: pack_q2k(f, *static_cast<BlockQ2K *>(out)); break;
            case DType::GGML_Q3_K: pack_q3k(f, *static_cast<BlockQ3K *>(out)); break;
            case DType::GGML_Q4_K: pack_q45k_common(f, *static_cast<BlockQ4K *>(out)); break;
            case DType::GGML_Q5_K: pack_q5k(f, *static_cast<BlockQ5K *>(out)); break;
            default: pack_q6k(f, *static_cast<BlockQ6K *>(out)); break;
        }
    }
}

}  // namespace mst
