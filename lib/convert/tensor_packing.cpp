#include "convert/tensor_packing.h"

#include <xxhash.h>
#include <zstd.h>

#include <cstring>
#include <memory>

#include "convert/fp8_requantize.h"
#include "core/error.h"
#include "core/quant.h"

namespace mst {

std::vector<uint8_t> convert_tensor(const std::vector<uint8_t> &source, DType source_dtype, DType dtype,
                                    int64_t rows, int64_t cols, const std::string &name) {
    if (dtype == source_dtype) return source;
    // A block-quantized source (a GGUF's Q8_0 or Q4_K experts) is decoded, then quantized again.
    if (!dtype_is_quantized(dtype) || !(dtype_is_float_weight(source_dtype) || dtype_is_quantized(source_dtype)))
        fail(MST_ERR_UNSUPPORTED, "{}: cannot convert {} to {}", name, dtype_name(source_dtype), dtype_name(dtype));
    const uint64_t in_row = dtype_row_bytes(source_dtype, cols), out_row = dtype_row_bytes(dtype, cols);
    if (source.size() != uint64_t(rows) * in_row)
        fail(MST_ERR_INTERNAL, "{}: {} bytes for {} rows of {} {}", name, source.size(), rows, cols,
             dtype_name(source_dtype));
    std::vector<uint8_t> out(size_t(uint64_t(rows) * out_row));
    std::vector<float> row(static_cast<size_t>(cols));
    for (int64_t r = 0; r < rows; ++r) {
        convert_to_f32(source_dtype, source.data() + uint64_t(r) * in_row, row.data(), size_t(cols));
        try {
            quantize_row(dtype, row.data(), cols, out.data() + uint64_t(r) * out_row);
        } catch (const Error &e) {
            fail(e.code(), "{} row {}: {}", name, r, e.what());
        }
    }
    return out;
}

PackedBlobBytes pack_expert(const Checkpoint &source, const ExpertLayout &source_layout, const ExpertLayout &packed,
                            Fp8BlockSize fp8_block, int zstd_level, int layer, int expert) {
    PackedBlobBytes result;
    result.raw_bytes = packed.blob->raw_bytes;
    std::vector<uint8_t> raw(size_t(result.raw_bytes), 0);
    const auto read_part = [&](const ExpertMatrix &m) {
        std::vector<uint8_t> bytes(size_t(m.nbytes()));
        source.file(m.file).pread_exact(bytes.data(), bytes.size(), m.offset);
        return bytes;
    };
    // Packed parts follow the source's, less the block scales of FP8 weights requantized.
    size_t i = 0;
    for (size_t p = 0; p < packed.parts.size(); ++p, ++i) {
        if (i >= source_layout.parts.size())
            fail(MST_ERR_INTERNAL, "layer {} expert {}: packed part {} has no source part", layer, expert, p);
        const ExpertMatrix &in = source_layout.parts[i], &out = packed.parts[p];
        const std::string name = fmt::format("{}: layer {} expert {} part {}", source.dir(), layer, expert, i);
        std::vector<uint8_t> converted;
        if (in.dtype == DType::F8_E4M3 && out.dtype != DType::F8_E4M3) {
            if (i + 1 >= source_layout.parts.size())
                fail(MST_ERR_BAD_FORMAT, "{}: an FP8 matrix without its block scales", name);
            const ExpertMatrix &scale = source_layout.parts[++i];
            converted = requantize_block_fp8(read_part(in), read_part(scale), scale.dtype, in.rows, in.cols, fp8_block,
                                             out.dtype, name);
        } else {
            converted = convert_tensor(read_part(in), in.dtype, out.dtype, in.rows, in.cols, name);
        }
        std::memcpy(raw.data() + out.offset, converted.data(), converted.size());
    }
    if (zstd_level > 0 && !raw.empty()) {
        std::vector<uint8_t> compressed(ZSTD_compressBound(raw.size()));
        const size_t n = ZSTD_compress(compressed.data(), compressed.size(), raw.data(), raw.size(), zstd_level);
        if (ZSTD_isError(n))
            fail(MST_ERR_INTERNAL, "layer {} expert {}: zstd compression failed: {}", layer, expert, ZSTD_getErrorName(n));
        // Quantized weights are close to random bytes; keep zstd only where it pays.
        if (n < raw.size()) {
            compressed.resize(n);
            result.stored = std::move(compressed);
            result.codec = BlobCodec::Zstd;
        }
    }
    if (result.codec == BlobCodec::None) result.stored = std::move(raw);
    result.xxh64 = XXH64(result.stored.data(), result.stored.size(), 0);
    return result;
}

}  // namespace mst
