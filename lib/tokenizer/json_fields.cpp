#include "tokenizer/json_fields.h"

#include "core/error.h"

namespace mst::tokjson {

const json *find(const json &obj, std::string_view key) {
    if (!obj.is_object()) return nullptr;
    const auto it = obj.find(key);
    if (it == obj.end() || it->is_null()) return nullptr;
    return &*it;
}

const json &require(const json &obj, std::string_view key, const std::string &origin, std::string_view where) {
    const json *value = find(obj, key);
    if (!value) fail(MST_ERR_BAD_FORMAT, "{}: {} has no \"{}\"", origin, where, key);
    return *value;
}

std::string require_string(const json &obj, std::string_view key, const std::string &origin, std::string_view where) {
    const json &value = require(obj, key, origin, where);
    if (!value.is_string()) fail(MST_ERR_BAD_FORMAT, "{}: {}.{} is not a string", origin, where, key);
    return value.get<std::string>();
}

std::string optional_string(const json &obj, std::string_view key, const std::string &origin, std::string_view where) {
    const json *value = find(obj, key);
    if (!value) return {};
    if (!value->is_string()) fail(MST_ERR_BAD_FORMAT, "{}: {}.{} is not a string", origin, where, key);
    return value->get<std::string>();
}

bool optional_bool(const json &obj, std::string_view key, bool fallback, const std::string &origin,
                   std::string_view where) {
    const json *value = find(obj, key);
    if (!value) return fallback;
    if (!value->is_boolean()) fail(MST_ERR_BAD_FORMAT, "{}: {}.{} is not a boolean", origin, where, key);
    return value->get<bool>();
}

std::string type_of(const json &obj, const std::string &origin, std::string_view where) {
    require_object(obj, origin, where);
    return require_string(obj, "type", origin, where);
}

void require_object(const json &value, const std::string &origin, std::string_view where) {
    if (!value.is_object()) fail(MST_ERR_BAD_FORMAT, "{}: {} is not an object", origin, where);
}

void require_array(const json &value, const std::string &origin, std::string_view where) {
    if (!value.is_array()) fail(MST_ERR_BAD_FORMAT, "{}: {} is not an array", origin, where);
}

}  // namespace mst::tokjson
