// The packed file's index: the resident tensor table and the expert blob table.
#include <algorithm>
#include <limits>
#include <set>

#include "core/error.h"
#include "format/byte_codec.h"
#include "format/packed_format.h"

namespace mst {
namespace {

constexpr uint32_t kMaxDims = 8;
// Far above any real tensor, low enough that products of two dimensions cannot overflow.
constexpr int64_t kMaxDim = int64_t(1) << 40;

void write_dtype(ByteWriter &w, DType t) {
    const std::string_view name = dtype_name(t);
    w.u8(uint8_t(name.size()));
    w.bytes(name);
}

DType read_dtype(ByteReader &r, const std::string &owner) {
    const uint8_t len = r.u8("dtype length");
    const std::string_view name = r.bytes(len, "dtype");
    const auto t = dtype_from_name(name);
    if (!t) fail(MST_ERR_UNSUPPORTED, "{}: {} has dtype '{}', which this build does not know", r.what(), owner, name);
    return *t;
}

// Bytes a tensor of `shape` (last dimension = row length) needs in dtype t, or fails.
uint64_t expected_bytes(DType t, const std::vector<int64_t> &shape, ByteReader &r, const std::string &owner) {
    uint64_t rows = 1;
    for (size_t i = 0; i + 1 < shape.size(); ++i)
        if (__builtin_mul_overflow(rows, uint64_t(shape[i]), &rows)) r.fail_at(owner + " has a shape that overflows");
    const int64_t cols = shape.empty() ? 1 : shape.back();
    if (dtype_is_quantized(t) && shape.empty()) r.fail_at(owner + " is a quantized scalar");
    uint64_t bytes = 0;
    if (__builtin_mul_overflow(rows, dtype_row_bytes(t, cols), &bytes)) r.fail_at(owner + " has a size that overflows");
    return bytes;
}

int64_t read_dim(ByteReader &r, const char *field, const std::string &owner) {
    const int64_t d = r.i64(field);
    if (d < 0 || d > kMaxDim) r.fail_at(fmt::format("{} has {} {} (0..{} allowed)", owner, field, d, kMaxDim));
    return d;
}

// [offset, offset + bytes) inside [begin, begin + size), without overflow.
bool inside(uint64_t offset, uint64_t bytes, uint64_t begin, uint64_t size) {
    return offset >= begin && offset - begin <= size && bytes <= size - (offset - begin);
}

TensorInfo read_tensor(ByteReader &r, const PackedHeader &h, uint32_t i) {
    TensorInfo t;
    const uint16_t name_len = r.u16("tensor name length");
    if (name_len == 0) r.fail_at(fmt::format("tensor {} has an empty name", i));
    t.name = std::string(r.bytes(name_len, "tensor name"));
    const std::string owner = "tensor '" + t.name + "'";
    t.dtype = read_dtype(r, owner);
    const uint8_t ndim = r.u8("tensor rank");
    if (ndim > kMaxDims) r.fail_at(fmt::format("{} has {} dimensions (at most {})", owner, ndim, kMaxDims));
    for (uint8_t d = 0; d < ndim; ++d) t.shape.push_back(read_dim(r, "a dimension", owner));
    t.offset = r.u64("tensor offset");
    t.nbytes = r.u64("tensor size");
    const uint64_t expected = expected_bytes(t.dtype, t.shape, r, owner);
    if (t.nbytes != expected)
        r.fail_at(fmt::format("{} holds {} bytes, but dtype {} and shape {} need {}", owner, t.nbytes,
                              dtype_name(t.dtype), shape_to_string(t.shape), expected));
    if (!inside(t.offset, t.nbytes, h.resident.offset, h.resident.bytes))
        r.fail_at(fmt::format("{} [{}, +{}) lies outside the resident section [{}, +{})", owner, t.offset, t.nbytes,
                              h.resident.offset, h.resident.bytes));
    if (t.offset % packed::kTensorAlignment != 0)
        r.fail_at(fmt::format("{} starts at byte {}, not a multiple of {}", owner, t.offset, packed::kTensorAlignment));
    t.file_index = 0;
    return t;
}

ExpertLayout read_expert(ByteReader &r, const PackedHeader &h, uint32_t layer, uint32_t expert) {
    const std::string owner = fmt::format("layer {} expert {}", layer, expert);
    ExpertBlob blob;
    blob.offset = r.u64("blob offset");
    blob.stored_bytes = r.u64("blob stored size");
    blob.raw_bytes = r.u64("blob raw size");
    blob.xxh64 = r.u64("blob checksum");
    const uint8_t codec = r.u8("blob codec");
    if (codec > uint8_t(BlobCodec::Zstd)) r.fail_at(fmt::format("{} has unknown codec {}", owner, codec));
    blob.codec = BlobCodec(codec);
    if (blob.offset % packed::kAlignment != 0)
        r.fail_at(fmt::format("{} blob starts at byte {}, not a multiple of {}", owner, blob.offset, packed::kAlignment));
    if (!inside(blob.offset, blob.stored_bytes, h.experts.offset, h.experts.bytes))
        r.fail_at(fmt::format("{} blob [{}, +{}) lies outside the expert section [{}, +{})", owner, blob.offset,
                              blob.stored_bytes, h.experts.offset, h.experts.bytes));
    if (blob.codec == BlobCodec::None && blob.stored_bytes != blob.raw_bytes)
        r.fail_at(fmt::format("{} is stored uncompressed, but its stored size {} differs from its raw size {}", owner,
                              blob.stored_bytes, blob.raw_bytes));
    if (blob.codec == BlobCodec::Zstd && blob.stored_bytes == 0)
        r.fail_at(owner + " is zstd-compressed into 0 bytes");

    ExpertLayout layout;
    const uint8_t n_parts = r.u8("part count");
    if (n_parts == 0) r.fail_at(owner + " has no parts");
    uint64_t end = 0;
    for (uint8_t p = 0; p < n_parts; ++p) {
        const std::string part_owner = fmt::format("{} part {}", owner, p);
        ExpertMatrix m;
        m.dtype = read_dtype(r, part_owner);
        m.rows = read_dim(r, "rows", part_owner);
        m.cols = read_dim(r, "cols", part_owner);
        m.offset = r.u64("part offset");
        m.file = 0;
        const uint64_t bytes = expected_bytes(m.dtype, {m.rows, m.cols}, r, part_owner);
        if (m.offset % packed::kTensorAlignment != 0)
            r.fail_at(fmt::format("{} starts at byte {} of its blob, not a multiple of {}", part_owner, m.offset,
                                  packed::kTensorAlignment));
        if (!inside(m.offset, bytes, 0, blob.raw_bytes))
            r.fail_at(fmt::format("{} [{}, +{}) lies outside its blob's {} raw bytes", part_owner, m.offset, bytes,
                                  blob.raw_bytes));
        end = std::max(end, m.offset + bytes);
        layout.parts.push_back(m);
    }
    // The raw size is exactly what the parts span: it sizes the buffer a read allocates.
    if (end != blob.raw_bytes)
        r.fail_at(fmt::format("{} has a raw size of {} bytes, but its parts end at byte {}", owner, blob.raw_bytes, end));
    layout.blob = blob;
    return layout;
}

}  // namespace

std::string encode_packed_index(const std::vector<TensorInfo> &tensors,
                                const std::vector<std::vector<ExpertLayout>> &experts) {
    ByteWriter w;
    w.u32(uint32_t(tensors.size()));
    for (const TensorInfo &t : tensors) {
        if (t.name.empty() || t.name.size() > std::numeric_limits<uint16_t>::max() || t.shape.size() > kMaxDims)
            fail(MST_ERR_INVALID_ARGUMENT, "tensor '{}' cannot be indexed (name of {} bytes, {} dimensions)", t.name,
                 t.name.size(), t.shape.size());
        w.u16(uint16_t(t.name.size()));
        w.bytes(t.name);
        write_dtype(w, t.dtype);
        w.u8(uint8_t(t.shape.size()));
        for (int64_t d : t.shape) w.i64(d);
        w.u64(t.offset);
        w.u64(t.nbytes);
    }
    w.u32(uint32_t(experts.size()));
    for (size_t l = 0; l < experts.size(); ++l) {
        w.u32(uint32_t(experts[l].size()));
        for (size_t e = 0; e < experts[l].size(); ++e) {
            const ExpertLayout &x = experts[l][e];
            if (!x.blob || x.parts.empty() || x.parts.size() > 255)
                fail(MST_ERR_INVALID_ARGUMENT, "layer {} expert {} cannot be indexed ({} parts, blob {})", l, e,
                     x.parts.size(), x.blob.has_value());
            w.u64(x.blob->offset);
            w.u64(x.blob->stored_bytes);
            w.u64(x.blob->raw_bytes);
            w.u64(x.blob->xxh64);
            w.u8(uint8_t(x.blob->codec));
            w.u8(uint8_t(x.parts.size()));
            for (const ExpertMatrix &m : x.parts) {
                write_dtype(w, m.dtype);
                w.i64(m.rows);
                w.i64(m.cols);
                w.u64(m.offset);
            }
        }
    }
    return w.take();
}

void parse_packed_index(std::span<const uint8_t> bytes, const std::string &path, PackedContents &out) {
    ByteReader r(bytes, path + ": index");
    const PackedHeader &h = out.header;
    const uint32_t n_tensors = r.u32("tensor count");
    std::vector<TensorInfo> tensors;
    std::set<std::string, std::less<>> names;
    for (uint32_t i = 0; i < n_tensors; ++i) {
        TensorInfo t = read_tensor(r, h, i);
        if (!names.insert(t.name).second) r.fail_at(fmt::format("tensor '{}' appears twice", t.name));
        tensors.push_back(std::move(t));
    }
    std::sort(tensors.begin(), tensors.end(), [](const TensorInfo &a, const TensorInfo &b) { return a.name < b.name; });

    const uint32_t n_layers = r.u32("layer count");
    std::vector<std::vector<ExpertLayout>> experts;
    for (uint32_t l = 0; l < n_layers; ++l) {
        const uint32_t n_experts = r.u32("expert count");
        std::vector<ExpertLayout> layer;
        for (uint32_t e = 0; e < n_experts; ++e) layer.push_back(read_expert(r, h, l, e));
        experts.push_back(std::move(layer));
    }
    if (r.remaining() != 0) r.fail_at(fmt::format("{} bytes follow the last layer", r.remaining()));
    out.tensors = std::move(tensors);
    out.experts = std::move(experts);
}

}  // namespace mst
