// GgufFile's typed lookups: a value of another type than the one a key must have is a
// named error, never a reinterpretation of its bits.
#include <cstring>

#include "core/error.h"
#include "format/gguf_file.h"

namespace mst {
namespace {

int64_t sign_extend(uint64_t bits, GgufValueType t) {
    switch (t) {
        case GgufValueType::Int8: return int8_t(bits);
        case GgufValueType::Int16: return int16_t(bits);
        case GgufValueType::Int32: return int32_t(bits);
        default: return int64_t(bits);
    }
}

double float_of(uint64_t bits, GgufValueType t) {
    if (t == GgufValueType::Float32) {
        float f;
        const auto b = uint32_t(bits);
        std::memcpy(&f, &b, sizeof f);
        return f;
    }
    double d;
    std::memcpy(&d, &bits, sizeof d);
    return d;
}

[[noreturn]] void wrong_type(const GgufFile &f, std::string_view key, const GgufValue &v, const char *expected) {
    std::string got = gguf_value_type_name(v.type);
    if (v.type == GgufValueType::Array) got += " of " + gguf_value_type_name(v.element_type);
    fail(MST_ERR_BAD_FORMAT, "{}: metadata '{}' is {}, expected {}", f.path, key, got, expected);
}

}  // namespace

std::vector<int64_t> GgufTensor::shape() const { return std::vector<int64_t>(ne.rbegin(), ne.rend()); }

int64_t GgufValue::int_at(uint64_t i) const {
    const size_t size = gguf_value_type_size(element_type);
    uint64_t raw = 0;
    std::memcpy(&raw, fixed.data() + i * size, size);
    return sign_extend(raw, element_type);
}

double GgufValue::float_at(uint64_t i) const {
    const size_t size = gguf_value_type_size(element_type);
    uint64_t raw = 0;
    std::memcpy(&raw, fixed.data() + i * size, size);
    return float_of(raw, element_type);
}

const GgufValue *GgufFile::find(std::string_view key) const {
    const auto it = key_index.find(key);
    return it == key_index.end() ? nullptr : &metadata[it->second].second;
}

const GgufTensor *GgufFile::find_tensor(std::string_view name) const {
    const auto it = tensor_index.find(name);
    return it == tensor_index.end() ? nullptr : &tensors[it->second];
}

std::optional<uint64_t> GgufFile::find_uint(std::string_view key) const {
    const GgufValue *v = find(key);
    if (!v) return std::nullopt;
    if (!gguf_value_type_is_integer(v->type)) wrong_type(*this, key, *v, "an integer");
    if (gguf_value_type_is_signed(v->type) && sign_extend(v->bits, v->type) < 0)
        fail(MST_ERR_BAD_FORMAT, "{}: metadata '{}' is {}, expected a count (not negative)", path, key,
             sign_extend(v->bits, v->type));
    return v->bits;
}

uint64_t GgufFile::require_uint(std::string_view key) const {
    const auto v = find_uint(key);
    if (!v) fail(MST_ERR_BAD_FORMAT, "{}: GGUF metadata lacks '{}'", path, key);
    return *v;
}

std::optional<double> GgufFile::find_float(std::string_view key) const {
    const GgufValue *v = find(key);
    if (!v) return std::nullopt;
    if (v->type != GgufValueType::Float32 && v->type != GgufValueType::Float64) wrong_type(*this, key, *v, "a float");
    return float_of(v->bits, v->type);
}

double GgufFile::require_float(std::string_view key) const {
    const auto v = find_float(key);
    if (!v) fail(MST_ERR_BAD_FORMAT, "{}: GGUF metadata lacks '{}'", path, key);
    return *v;
}

std::optional<bool> GgufFile::find_bool(std::string_view key) const {
    const GgufValue *v = find(key);
    if (!v) return std::nullopt;
    if (v->type != GgufValueType::Bool) wrong_type(*this, key, *v, "BOOL");
    return v->bits != 0;
}

std::optional<std::string> GgufFile::find_string(std::string_view key) const {
    const GgufValue *v = find(key);
    if (!v) return std::nullopt;
    if (v->type != GgufValueType::String) wrong_type(*this, key, *v, "STRING");
    return v->string;
}

std::string GgufFile::require_string(std::string_view key) const {
    auto v = find_string(key);
    if (!v) fail(MST_ERR_BAD_FORMAT, "{}: GGUF metadata lacks '{}'", path, key);
    return std::move(*v);
}

const std::vector<std::string> &GgufFile::require_string_array(std::string_view key) const {
    const GgufValue *v = find(key);
    if (!v) fail(MST_ERR_BAD_FORMAT, "{}: GGUF metadata lacks '{}'", path, key);
    if (v->type != GgufValueType::Array || v->element_type != GgufValueType::String)
        wrong_type(*this, key, *v, "ARRAY of STRING");
    return v->strings;
}

std::vector<int64_t> GgufFile::find_int_array(std::string_view key) const {
    const GgufValue *v = find(key);
    if (!v) return {};
    if (v->type != GgufValueType::Array || !gguf_value_type_is_integer(v->element_type))
        wrong_type(*this, key, *v, "ARRAY of an integer type");
    std::vector<int64_t> out(size_t(v->count));
    for (uint64_t i = 0; i < v->count; ++i) out[size_t(i)] = v->int_at(i);
    return out;
}

}  // namespace mst
