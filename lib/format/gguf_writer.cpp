#include "format/gguf_writer.h"

#include <cstring>

#include "core/error.h"

namespace mst {
namespace {

template <typename T>
void put(std::string &out, T v) {
    for (size_t i = 0; i < sizeof v; ++i) out.push_back(char((uint64_t(v) >> (8 * i)) & 0xff));
}

template <typename T>
std::string le(T v) {
    std::string out;
    put(out, v);
    return out;
}

// An ARRAY value: element type, count, then each element as `put` encodes it.
template <typename Vector, typename Put>
std::string array_value(GgufValueType element, const Vector &v, Put put) {
    std::string s;
    gguf_put_u32(s, uint32_t(element));
    gguf_put_u64(s, v.size());
    for (const auto &e : v) put(s, e);
    return s;
}

uint32_t f32_bits(float f) {
    uint32_t b;
    static_assert(sizeof b == sizeof f);
    std::memcpy(&b, &f, sizeof b);
    return b;
}

}  // namespace

void gguf_put_u32(std::string &out, uint32_t v) { put(out, v); }
void gguf_put_u64(std::string &out, uint64_t v) { put(out, v); }
void gguf_put_str(std::string &out, std::string_view s) {
    gguf_put_u64(out, s.size());
    out.append(s);
}

void GgufWriter::add_raw(std::string_view key, GgufValueType type, std::string encoded_value) {
    std::string kv;
    gguf_put_str(kv, key);
    gguf_put_u32(kv, uint32_t(type));
    kv += encoded_value;
    kvs_.push_back(std::move(kv));
}

void GgufWriter::add_u32(std::string_view key, uint32_t v) { add_raw(key, GgufValueType::UInt32, le(v)); }
void GgufWriter::add_i32(std::string_view key, int32_t v) { add_raw(key, GgufValueType::Int32, le(uint32_t(v))); }
void GgufWriter::add_u64(std::string_view key, uint64_t v) { add_raw(key, GgufValueType::UInt64, le(v)); }
void GgufWriter::add_f32(std::string_view key, float v) { add_raw(key, GgufValueType::Float32, le(f32_bits(v))); }

void GgufWriter::add_bool(std::string_view key, bool v) { add_raw(key, GgufValueType::Bool, std::string(1, char(v))); }

void GgufWriter::add_string(std::string_view key, std::string_view v) {
    std::string s;
    gguf_put_str(s, v);
    add_raw(key, GgufValueType::String, s);
}

void GgufWriter::add_string_array(std::string_view key, const std::vector<std::string> &v) {
    add_raw(key, GgufValueType::Array, array_value(GgufValueType::String, v, gguf_put_str));
}

void GgufWriter::add_i32_array(std::string_view key, const std::vector<int32_t> &v) {
    add_raw(key, GgufValueType::Array,
            array_value(GgufValueType::Int32, v, [](std::string &s, int32_t e) { gguf_put_u32(s, uint32_t(e)); }));
}

void GgufWriter::add_f32_array(std::string_view key, const std::vector<float> &v) {
    add_raw(key, GgufValueType::Array,
            array_value(GgufValueType::Float32, v, [](std::string &s, float e) { gguf_put_u32(s, f32_bits(e)); }));
}

void GgufWriter::add_bool_array(std::string_view key, const std::vector<bool> &v) {
    add_raw(key, GgufValueType::Array,
            array_value(GgufValueType::Bool, v, [](std::string &s, bool e) { s.push_back(char(e)); }));
}

void GgufWriter::set_alignment(uint32_t alignment) {
    if (alignment == 0) fail(MST_ERR_INVALID_ARGUMENT, "GGUF alignment must be positive");
    alignment_ = alignment;
    add_u32("general.alignment", alignment);
}

uint64_t GgufWriter::add_tensor(std::string_view name, uint32_t type, const std::vector<uint64_t> &ne) {
    const auto info = ggml_type_info(type);
    if (!info) fail(MST_ERR_INVALID_ARGUMENT, "GGUF tensor '{}': unknown ggml type {}", name, type);
    uint64_t n = 1;
    for (uint64_t d : ne) n *= d;
    const uint64_t bytes = n / info->block_elems * info->block_bytes;
    tensors_.push_back(TensorInfo{std::string(name), type, ne, bytes});
    return bytes;
}

std::string GgufWriter::header() const {
    std::string out = "GGUF";
    gguf_put_u32(out, version);
    gguf_put_u64(out, tensors_.size());
    gguf_put_u64(out, kvs_.size());
    for (const std::string &kv : kvs_) out += kv;
    uint64_t offset = 0;
    for (const TensorInfo &t : tensors_) {
        gguf_put_str(out, t.name);
        gguf_put_u32(out, uint32_t(t.ne.size()));
        for (uint64_t d : t.ne) gguf_put_u64(out, d);
        gguf_put_u32(out, t.type);
        gguf_put_u64(out, offset);
        offset += t.bytes + padding(t.bytes);
    }
    out.append(padding(out.size()), '\0');
    return out;
}

}  // namespace mst
