// The horizontal sum of eight floats, shared by the CPU matmul files' AVX2 paths
// (op_matmul_mxfp4.cpp, op_matmul_packed_int.cpp, op_matmul_block_fp8.cpp).
//
// Include it inside a file's AVX2 `#pragma GCC target` region and anonymous namespace,
// after <immintrin.h>: it is then compiled for that target with internal linkage, as the
// kernel files require of everything in their target region (see kernels_avx2.cpp). It
// includes nothing for the same reason.
#pragma once

inline float hsum8(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}
