// Typed access to tokenizer.json fields. Every failure is MST_ERR_BAD_FORMAT naming the file
// and the field path, so a malformed file never surfaces as a bare nlohmann exception.
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <string_view>

namespace mst::tokjson {

using nlohmann::json;

// The member `key` of obj, or nullptr when it is absent or null.
const json *find(const json &obj, std::string_view key);

// The member `key`; fails when absent or null.
const json &require(const json &obj, std::string_view key, const std::string &origin, std::string_view where);

std::string require_string(const json &obj, std::string_view key, const std::string &origin, std::string_view where);

// An optional string member: "" when absent or null.
std::string optional_string(const json &obj, std::string_view key, const std::string &origin, std::string_view where);

bool optional_bool(const json &obj, std::string_view key, bool fallback, const std::string &origin,
                   std::string_view where);

// The "type" member naming a component's kind.
std::string type_of(const json &obj, const std::string &origin, std::string_view where);

void require_object(const json &value, const std::string &origin, std::string_view where);
void require_array(const json &value, const std::string &origin, std::string_view where);

}  // namespace mst::tokjson
