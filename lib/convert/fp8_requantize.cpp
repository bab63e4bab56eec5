#include "convert/fp8_requantize.h"

#include "core/error.h"
#include "core/quant.h"

namespace mst {

std::vector<uint8_t> requantize_block_fp8(const std::vector<uint8_t> &codes, const std::vector<uint8_t> &scales,
                                          DType scale_dtype, int64_t rows, int64_t cols, Fp8BlockSize block,
                                          DType dtype, const std::string &name) {
    if (!dtype_is_quantized(dtype))
        fail(MST_ERR_UNSUPPORTED, "{}: cannot requantize F8_E4M3 to {}", name, dtype_name(dtype));
    if (scale_dtype != DType::F32 && scale_dtype != DType::BF16 && scale_dtype != DType::F16)
        fail(MST_ERR_UNSUPPORTED, "{}: FP8 block scales of dtype {} (expected F32, BF16 or F16)", name,
             dtype_name(scale_dtype));
    const int64_t srows = (rows + block.rows - 1) / block.rows, scols = (cols + block.cols - 1) / block.cols;
    if (codes.size() != uint64_t(rows * cols) || scales.size() != uint64_t(srows * scols) * dtype_size(scale_dtype))
        fail(MST_ERR_BAD_FORMAT, "{}: {} FP8 bytes and {} scale bytes for a {}x{} matrix in {}x{} blocks", name,
             codes.size(), scales.size(), rows, cols, block.rows, block.cols);
    std::vector<float> scale(size_t(srows * scols));
    convert_to_f32(scale_dtype, scales.data(), scale.data(), scale.size());
    const uint64_t out_row = dtype_row_bytes(dtype, cols);
    std::vector<uint8_t> out(size_t(uint64_t(rows) * out_row));
    std::vector<float> row(static_cast<size_t>(cols));
    for (int64_t r = 0; r < rows; ++r) {
        // One row of dequantize_block_fp8: the same values the model computes with.
        dequantize_block_fp8(codes.data() + r * cols, scale.data() + (r / block.rows) * scols, 1, cols, block,
                             row.data());
        try {
            quantize_row(dtype, row.data(), cols, out.data() + uint64_t(r) * out_row);
        } catch (const Error &e) {
            fail(e.code(), "{} row {}: {}", name, r, e.what());
        }
    }
    return out;
}

}  // namespace mst
