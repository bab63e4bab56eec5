// Tensors that llama.cpp's converter changed on the way into a GGUF file, described as
// functions of what is stored so that a GgufCheckpoint reads them back as the Hugging
// Face checkpoint held them: a row gather, a gather of column groups, and an elementwise
// function, applied in that order. Row and column gathers move whole rows or groups, so
// the stored type is kept (bit for bit) unless a column group cuts a quantized block or a
// function is applied; then the tensor is read as F32.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "format/safetensors.h"

namespace mst {

struct GgufFile;
struct GgufArchitecture;

struct GgufDerivedTensor {
    std::string source;                 // the stored tensor, under its Hugging Face name
    std::string appended;               // a stored tensor whose rows follow source's; empty: none
    std::vector<int64_t> shape;         // the shape it is read with (outermost first)
    std::vector<int64_t> row_order;     // row i is stored row row_order[i]; empty: as stored
    int64_t column_group = 0;           // columns per group of column_order
    std::vector<int64_t> column_order;  // group j is stored group column_order[j]; empty: as stored
    float (*value)(float) = nullptr;    // applied to each element; nullptr: none
};

// What qwen35moe / qwen3next files store differently from the checkpoint, by Hugging Face
// name (the names of `table`): ssm_a holds -exp(A_log); every RMSNorm weight but the
// DeltaNet's holds 1 + w; conv1d is squeezed to [channels, kernel]; shared_expert_gate
// may be 1-D; (qwen35moe, fewer key than value heads) the value heads are reordered
// from grouped by key head to tiled; and (qwen3next) in_proj_qkvz is cut into attn_qkv and
// attn_gate, which are joined back (their rows regrouped per key head). MST_ERR_BAD_FORMAT names a key or tensor that does
// not fit the metadata.
std::map<std::string, GgufDerivedTensor, std::less<>> qwen_hybrid_derived_tensors(
    const GgufFile &gguf, const GgufArchitecture &arch, const std::vector<TensorInfo> &table);

// The dtype and bytes the derived tensor is read as, from its stored tensor(s); appended
// is nullptr without one.
DType derived_dtype(const GgufDerivedTensor &d, const TensorInfo &stored, const TensorInfo *appended);
uint64_t derived_bytes(const GgufDerivedTensor &d, const TensorInfo &stored, const TensorInfo *appended);

// d's row gather, then its column-group gather, of `rows` rows: as bytes of `dtype` (row_bytes
// each; d.value must be null), or as floats (cols each, d.value applied). The GGUF reader
// reads derived tensors with them, the GGUF export writes its tensors the converter's way.
void gather_rows_and_columns(const GgufDerivedTensor &d, const uint8_t *src, int64_t rows, size_t row_bytes,
                             DType dtype, uint8_t *dst);
void gather_rows_and_columns(const GgufDerivedTensor &d, const float *src, int64_t rows, int64_t cols, float *dst);

// Value heads grouped by key head (head g * r + i) to tiled (position i * n_k_heads + g):
// rows [offset, offset + n_k_heads * r * head_size) of n_rows, each head head_size rows.
// order[i] is the grouped row that tiled row i holds. inverse_order() turns it around.
std::vector<int64_t> tiled_from_grouped(int64_t n_rows, int64_t offset, int64_t n_k_heads, int64_t r,
                                        int64_t head_size);
std::vector<int64_t> inverse_order(const std::vector<int64_t> &order);

}  // namespace mst
