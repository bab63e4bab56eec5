// How the CPU matmuls on block-compressed weights decoded in registers (MXFP4 and
// packed integers) cut a weight's rows among threads: blocks of at most 64 rows, whose
// compressed words stay in L2 while every token tile passes over them, at least four
// per thread so that uneven ones still balance, and one thread for small products.
#pragma once

#include <algorithm>
#include <cstdint>

#include "backends/cpu/parallel_for.h"

namespace mst {

// Calls block(r0, nr) for rows r0 .. r0 + nr - 1 of every row block, on up to n_threads
// threads; the blocks cover rows 0 .. rows - 1 once.
template <typename Block>
void for_each_row_block(int64_t rows, int64_t cols, int64_t n_tokens, int n_threads, Block &&block) {
    constexpr int64_t kRowBlock = 64;
    constexpr int64_t kMinParallelMacs = 64 * 1024;
    const int64_t threads = rows * cols * n_tokens >= kMinParallelMacs ? n_threads : 1;
    const int64_t rows_per_block = std::clamp<int64_t>((rows + threads * 4 - 1) / (threads * 4), 1, kRowBlock);
    const int64_t n_blocks = (rows + rows_per_block - 1) / rows_per_block;
    parallel_for(n_blocks, int(std::min(threads, n_blocks)), [&](int64_t b_begin, int64_t b_end) {
        for (int64_t b = b_begin; b < b_end; ++b) {
            const int64_t r0 = b * rows_per_block;
            block(r0, std::min(rows_per_block, rows - r0));
        }
    });
}

}  // namespace mst
