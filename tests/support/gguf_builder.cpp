#include "gguf_builder.h"

#include <fstream>
#include <stdexcept>

namespace mst::test {
namespace {

template <typename T>
void put(std::string &out, T v) {
    for (size_t i = 0; i < sizeof v; ++i) out.push_back(char((uint64_t(v) >> (8 * i)) & 0xff));
}

std::string encode_kv(std::string_view key, GgufValueType type, const std::string &value) {
    std::string out;
    put_str(out, key);
    put_u32(out, uint32_t(type));
    out += value;
    return out;
}

uint32_t f32_bits(float f) {
    uint32_t b;
    static_assert(sizeof b == sizeof f);
    __builtin_memcpy(&b, &f, sizeof b);
    return b;
}

}  // namespace

void put_u32(std::string &out, uint32_t v) { put(out, v); }
void put_u64(std::string &out, uint64_t v) { put(out, v); }
void put_str(std::string &out, std::string_view s) {
    put_u64(out, s.size());
    out.append(s);
}

void GgufBuilder::add_raw(std::string_view key, GgufValueType type, std::string encoded_value) {
    kvs_.push_back(encode_kv(key, type, encoded_value));
}

void GgufBuilder::add_u32(std::string_view key, uint32_t v) {
    std::string s;
    put_u32(s, v);
    add_raw(key, GgufValueType::UInt32, s);
}

void GgufBuilder::add_i32(std::string_view key, int32_t v) {
    std::string s;
    put_u32(s, uint32_t(v));
    add_raw(key, GgufValueType::Int32, s);
}

void GgufBuilder::add_u64(std::string_view key, uint64_t v) {
    std::string s;
    put_u64(s, v);
    add_raw(key, GgufValueType::UInt64, s);
}

void GgufBuilder::add_f32(std::string_view key, float v) {
    std::string s;
    put_u32(s, f32_bits(v));
    add_raw(key, GgufValueType::Float32, s);
}

void GgufBuilder::add_bool(std::string_view key, bool v) { add_raw(key, GgufValueType::Bool, std::string(1, char(v))); }

void GgufBuilder::add_string(std::string_view key, std::string_view v) {
    std::string s;
    put_str(s, v);
    add_raw(key, GgufValueType::String, s);
}

void GgufBuilder::add_string_array(std::string_view key, const std::vector<std::string> &v) {
    std::string s;
    put_u32(s, uint32_t(GgufValueType::String));
    put_u64(s, v.size());
    for (const std::string &e : v) put_str(s, e);
    add_raw(key, GgufValueType::Array, s);
}

void GgufBuilder::add_i32_array(std::string_view key, const std::vector<int32_t> &v) {
    std::string s;
    put_u32(s, uint32_t(GgufValueType::Int32));
    put_u64(s, v.size());
    for (int32_t e : v) put_u32(s, uint32_t(e));
    add_raw(key, GgufValueType::Array, s);
}

void GgufBuilder::add_f32_array(std::string_view key, const std::vector<float> &v) {
    std::string s;
    put_u32(s, uint32_t(GgufValueType::Float32));
    put_u64(s, v.size());
    for (float e : v) put_u32(s, f32_bits(e));
    add_raw(key, GgufValueType::Array, s);
}

void GgufBuilder::set_alignment(uint32_t alignment) {
    alignment_ = alignment;
    add_u32("general.alignment", alignment);
}

void GgufBuilder::add_tensor(std::string_view name, uint32_t type, std::vector<uint64_t> ne, std::string bytes) {
    const auto info = ggml_type_info(type);
    if (!info) throw std::invalid_argument("GgufBuilder: unknown ggml type");
    uint64_t n = 1;
    for (uint64_t d : ne) n *= d;
    if (n / info->block_elems * info->block_bytes != bytes.size())
        throw std::invalid_argument("GgufBuilder: tensor " + std::string(name) + " has the wrong byte count");
    tensors_.push_back(Tensor{std::string(name), type, std::move(ne), std::move(bytes)});
}

std::string GgufBuilder::build() const {
    const auto pad = [&](std::string &s) { s.append((alignment_ - s.size() % alignment_) % alignment_, '\0'); };
    std::string out = "GGUF";
    put_u32(out, version);
    put_u64(out, tensors_.size());
    put_u64(out, kvs_.size());
    for (const std::string &kv : kvs_) out += kv;
    uint64_t offset = 0;
    for (const Tensor &t : tensors_) {
        put_str(out, t.name);
        put_u32(out, uint32_t(t.ne.size()));
        for (uint64_t d : t.ne) put_u64(out, d);
        put_u32(out, t.type);
        put_u64(out, offset);
        offset += t.bytes.size() + (alignment_ - t.bytes.size() % alignment_) % alignment_;
    }
    pad(out);
    for (const Tensor &t : tensors_) {
        out += t.bytes;
        pad(out);
    }
    return out;
}

void GgufBuilder::write(const std::string &path) const {
    const std::string bytes = build();
    std::ofstream f(path, std::ios::binary);
    f.write(bytes.data(), std::streamsize(bytes.size()));
    if (!f) throw std::runtime_error("GgufBuilder: cannot write " + path);
}

}  // namespace mst::test
