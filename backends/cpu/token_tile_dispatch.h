// The one switch from a run-time token count (1..8) to the compile-time tile width the
// AVX-512 row kernels are instantiated for, shared by kernels_avx512.cpp,
// quant_kernels_avx512.cpp, quant_kernels_avx512_vnni.cpp and
// quant_kernels_ggml_legacy_avx512.cpp.
//
// Include it inside a kernel file's `#pragma GCC target` region and its anonymous
// namespace, after the standard headers: the template is then compiled for that file's
// instruction set with internal linkage, as the kernel files require of everything in
// their target region (an inline function shared between two targets could be merged
// into one copy compiled for the wrong one). It includes nothing for the same reason.
#pragma once

// The tile width as a type, so a generic lambda can use it as a template argument.
template <int N>
struct TokenTile {
    static constexpr int value = N;
};

// Calls tile(TokenTile<n_tok>{}) for n_tok in 1..7, tile(TokenTile<8>{}) otherwise (the
// callers never pass more than 8).
template <typename Tile>
inline void dispatch_token_tile(int n_tok, Tile &&tile) {
    switch (n_tok) {
        case 1: return tile(TokenTile<1>{});
        case 2: return tile(TokenTile<2>{});
        case 3: return tile(TokenTile<3>{});
        case 4: return tile(TokenTile<4>{});
        case 5: return tile(TokenTile<5>{});
        case 6: return tile(TokenTile<6>{});
        case 7: return tile(TokenTile<7>{});
        default: return tile(TokenTile<8>{});
    }
}
