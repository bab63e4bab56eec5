// <immintrin.h> for the AVX-512 kernel files. GCC 12's AVX-512 intrinsics pass
// _mm512_undefined_*() values as the unused merge operand, which -Wuninitialized reports
// once they are inlined (GCC bug 105593, fixed in 13). The warnings point into the
// header, so silencing them there leaves the kernels' own code checked.
#pragma once

#if defined(__x86_64__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#pragma GCC diagnostic pop
#endif
