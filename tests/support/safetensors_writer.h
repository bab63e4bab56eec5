// Test helper: builds safetensors files in memory and writes them, so tests can make
// valid checkpoints of any shape and, through the raw functions, malformed ones.
// Header-only; failures to write throw std::runtime_error (a test setup failure).
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <map>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/dtype.h"
#include "file_bytes.h"

namespace mst::test {

// The 8-byte little-endian length prefix of a safetensors file.
inline std::string safetensors_length_prefix(uint64_t header_len) {
    std::string prefix(8, '\0');
    for (int i = 0; i < 8; ++i) prefix[size_t(i)] = char((header_len >> (8 * i)) & 0xff);
    return prefix;
}

// A file made of an arbitrary header text and data section; the length prefix says
// header.size() unless length_override is given.
inline std::string safetensors_raw_bytes(std::string_view header, std::string_view data,
                                         const uint64_t *length_override = nullptr) {
    std::string bytes = safetensors_length_prefix(length_override ? *length_override : header.size());
    bytes.append(header);
    bytes.append(data);
    return bytes;
}

class SafetensorsWriter {
public:
    // A tensor given as raw bytes of a safetensors dtype string (which may be one
    // moestream does not support, to test that path).
    SafetensorsWriter &add_raw(const std::string &name, const std::string &dtype, std::vector<int64_t> shape,
                               const void *data, size_t nbytes) {
        Entry entry{name, dtype, std::move(shape), std::string(nbytes, '\0')};
        if (nbytes) std::memcpy(entry.data.data(), data, nbytes);
        entries_.push_back(std::move(entry));
        return *this;
    }

    template <typename T>
    SafetensorsWriter &add(const std::string &name, DType dtype, std::vector<int64_t> shape,
                           const std::vector<T> &values) {
        if (sizeof(T) != dtype_size(dtype)) throw std::runtime_error("element size does not match dtype");
        return add_raw(name, std::string(dtype_name(dtype)), std::move(shape), values.data(), values.size() * sizeof(T));
    }

    SafetensorsWriter &add_f32(const std::string &name, std::vector<int64_t> shape, const std::vector<float> &v) {
        return add(name, DType::F32, std::move(shape), v);
    }
    // Converted with the library's rounding, so the stored bits are what it would write.
    SafetensorsWriter &add_f16(const std::string &name, std::vector<int64_t> shape, const std::vector<float> &v) {
        std::vector<uint16_t> bits(v.size());
        for (size_t i = 0; i < v.size(); ++i) bits[i] = f32_to_f16(v[i]);
        return add(name, DType::F16, std::move(shape), bits);
    }
    SafetensorsWriter &add_bf16(const std::string &name, std::vector<int64_t> shape, const std::vector<float> &v) {
        std::vector<uint16_t> bits(v.size());
        for (size_t i = 0; i < v.size(); ++i) bits[i] = f32_to_bf16(v[i]);
        return add(name, DType::BF16, std::move(shape), bits);
    }

    SafetensorsWriter &set_metadata(const std::string &key, const std::string &value) {
        metadata_[key] = value;
        return *this;
    }

    // The JSON header, padded with spaces to a multiple of 8 bytes as the reference
    // writer does, so that the data section starts aligned.
    std::string header_json() const {
        nlohmann::json header = nlohmann::json::object();
        uint64_t offset = 0;
        for (const Entry &e : entries_) {
            header[e.name] = {{"dtype", e.dtype}, {"shape", e.shape}, {"data_offsets", {offset, offset + e.data.size()}}};
            offset += e.data.size();
        }
        if (!metadata_.empty()) header["__metadata__"] = metadata_;
        std::string text = header.dump();
        while ((8 + text.size()) % 8 != 0) text.push_back(' ');
        return text;
    }

    std::string data_section() const {
        std::string data;
        for (const Entry &e : entries_) data += e.data;
        return data;
    }

    // The whole file.
    std::string bytes() const { return safetensors_raw_bytes(header_json(), data_section()); }

    void write(const std::string &path) const { write_file_bytes(path, bytes()); }

private:
    struct Entry {
        std::string name;
        std::string dtype;
        std::vector<int64_t> shape;
        std::string data;
    };
    std::vector<Entry> entries_;
    std::map<std::string, std::string> metadata_;
};

}  // namespace mst::test
