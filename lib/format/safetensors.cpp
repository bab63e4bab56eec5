#include "format/safetensors.h"

#include <algorithm>
#include <limits>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/file_io.h"

namespace mst {

namespace {

using nlohmann::json;

// A non-negative JSON integer as uint64, or an error naming what it is.
uint64_t json_to_u64(const json &value, const std::string &path, const std::string &tensor, const char *what) {
    if (value.is_number_unsigned()) return value.get<uint64_t>();
    if (value.is_number_integer()) {
        const int64_t v = value.get<int64_t>();
        if (v < 0) fail(MST_ERR_BAD_FORMAT, "{}: tensor '{}' has a negative {} ({})", path, tensor, what, v);
        return uint64_t(v);
    }
    fail(MST_ERR_BAD_FORMAT, "{}: tensor '{}' has a {} that is not an integer", path, tensor, what);
}

std::map<std::string, std::string> parse_metadata(const json &value, const std::string &path) {
    if (!value.is_object()) fail(MST_ERR_BAD_FORMAT, "{}: '__metadata__' is not a JSON object", path);
    std::map<std::string, std::string> metadata;
    for (const auto &[key, item] : value.items()) {
        if (!item.is_string()) fail(MST_ERR_BAD_FORMAT, "{}: '__metadata__' value '{}' is not a string", path, key);
        metadata.emplace(key, item.get<std::string>());
    }
    return metadata;
}

TensorInfo parse_tensor(const std::string &name, const json &entry, uint64_t data_start, uint64_t file_size,
                        const std::string &path) {
    if (!entry.is_object()) fail(MST_ERR_BAD_FORMAT, "{}: tensor '{}' entry is not a JSON object", path, name);
    TensorInfo info;
    info.name = name;

    const auto dtype_it = entry.find("dtype");
    if (dtype_it == entry.end()) fail(MST_ERR_BAD_FORMAT, "{}: tensor '{}' lacks 'dtype'", path, name);
    if (!dtype_it->is_string()) fail(MST_ERR_BAD_FORMAT, "{}: tensor '{}' has a 'dtype' that is not a string", path, name);
    const auto &dtype_name_ref = dtype_it->get_ref<const std::string &>();
    const auto dtype = dtype_from_safetensors(dtype_name_ref);
    if (!dtype) {
        fail(MST_ERR_UNSUPPORTED, "{}: tensor '{}' has dtype '{}', which moestream does not support", path, name,
             dtype_name_ref);
    }
    info.dtype = *dtype;

    const auto shape_it = entry.find("shape");
    if (shape_it == entry.end()) fail(MST_ERR_BAD_FORMAT, "{}: tensor '{}' lacks 'shape'", path, name);
    if (!shape_it->is_array()) fail(MST_ERR_BAD_FORMAT, "{}: tensor '{}' has a 'shape' that is not an array", path, name);
    info.shape.reserve(shape_it->size());
    uint64_t numel = 1;
    for (const json &dim_value : *shape_it) {
        const uint64_t dim = json_to_u64(dim_value, path, name, "dimension");
        if (dim > uint64_t(std::numeric_limits<int64_t>::max()) || __builtin_mul_overflow(numel, dim, &numel) ||
            numel > uint64_t(std::numeric_limits<int64_t>::max())) {
            fail(MST_ERR_BAD_FORMAT, "{}: tensor '{}' has a shape whose element count overflows", path, name);
        }
        info.shape.push_back(int64_t(dim));
    }

    const auto offsets_it = entry.find("data_offsets");
    if (offsets_it == entry.end()) fail(MST_ERR_BAD_FORMAT, "{}: tensor '{}' lacks 'data_offsets'", path, name);
    if (!offsets_it->is_array() || offsets_it->size() != 2) {
        fail(MST_ERR_BAD_FORMAT, "{}: tensor '{}' has 'data_offsets' that is not an array of two integers", path, name);
    }
    const uint64_t begin = json_to_u64((*offsets_it)[0], path, name, "data offset");
    const uint64_t end = json_to_u64((*offsets_it)[1], path, name, "data offset");
    if (begin > end) {
        fail(MST_ERR_BAD_FORMAT, "{}: tensor '{}' has data_offsets [{}, {}) whose begin is past its end", path, name,
             begin, end);
    }
    // data_start <= file_size is checked by the caller, so the subtraction is safe.
    if (end > file_size - data_start) {
        fail(MST_ERR_BAD_FORMAT,
             "{}: tensor '{}' data [{}, {}) lies beyond the end of the file ({} bytes; data_offsets count from "
             "byte {})",
             path, name, begin, end, file_size, data_start);
    }
    uint64_t expected = 0;
    const bool too_large = __builtin_mul_overflow(numel, uint64_t(dtype_size(info.dtype)), &expected);
    if (too_large || expected != end - begin) {
        fail(MST_ERR_BAD_FORMAT, "{}: tensor '{}' holds {} bytes, but dtype {} and shape {} need {}", path, name,
             end - begin, dtype_name(info.dtype), shape_to_string(info.shape),
             too_large ? std::string("more than 2^64") : std::to_string(expected));
    }
    info.offset = data_start + begin;
    info.nbytes = end - begin;
    return info;
}

}  // namespace

std::string shape_to_string(const std::vector<int64_t> &shape) {
    std::string text = "[";
    for (size_t i = 0; i < shape.size(); ++i) {
        if (i) text += ", ";
        text += std::to_string(shape[i]);
    }
    return text + "]";
}

int64_t TensorInfo::numel() const {
    int64_t n = 1;
    for (const int64_t dim : shape) n *= dim;  // validated not to overflow when parsed
    return n;
}

SafetensorsHeader parse_safetensors_header(std::string_view header_json, uint64_t data_start, uint64_t file_size,
                                           const std::string &path_for_errors) {
    const std::string &path = path_for_errors;
    if (data_start > file_size) {
        fail(MST_ERR_BAD_FORMAT, "{}: truncated: the header ends at byte {}, but the file has {} bytes", path,
             data_start, file_size);
    }
    json root;
    try {
        root = json::parse(header_json.begin(), header_json.end());
    } catch (const json::exception &e) {
        fail(MST_ERR_BAD_FORMAT, "{}: header is not valid JSON: {}", path, e.what());
    }
    if (!root.is_object()) fail(MST_ERR_BAD_FORMAT, "{}: header is not a JSON object", path);

    SafetensorsHeader header;
    header.tensors.reserve(root.size());
    for (const auto &[key, value] : root.items()) {
        if (key == "__metadata__") {
            header.metadata = parse_metadata(value, path);
            continue;
        }
        header.tensors.push_back(parse_tensor(key, value, data_start, file_size, path));
    }
    // nlohmann's object is ordered by key already; sorting states the contract.
    std::sort(header.tensors.begin(), header.tensors.end(),
              [](const TensorInfo &a, const TensorInfo &b) { return a.name < b.name; });
    return header;
}

SafetensorsHeader read_safetensors_header(const File &file) {
    const std::string &path = file.path();
    const uint64_t file_size = file.size();
    if (file_size < 8) {
        fail(MST_ERR_BAD_FORMAT, "{}: truncated: {} bytes is too short for the 8-byte safetensors header length", path,
             file_size);
    }
    unsigned char length_bytes[8];
    file.pread_exact(length_bytes, sizeof length_bytes, 0);
    uint64_t header_len = 0;
    for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | length_bytes[i];  // little-endian
    if (header_len > file_size - 8) {
        fail(MST_ERR_BAD_FORMAT, "{}: truncated: the header length is {} bytes, but only {} follow it", path,
             header_len, file_size - 8);
    }
    if (header_len > kMaxSafetensorsHeaderBytes) {
        fail(MST_ERR_BAD_FORMAT, "{}: the header length {} exceeds the {}-byte limit", path, header_len,
             kMaxSafetensorsHeaderBytes);
    }
    std::string header_json(size_t(header_len), '\0');
    file.pread_exact(header_json.data(), header_json.size(), 8);
    return parse_safetensors_header(header_json, 8 + header_len, file_size, path);
}

}  // namespace mst
