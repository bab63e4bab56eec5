#include "tokenizer/replace_pattern.h"

#include "core/error.h"
#include "tokenizer/json_fields.h"

namespace mst {

std::unique_ptr<OnigRegex> replace_pattern(const nlohmann::json &spec, const std::string &origin,
                                           const std::string &where) {
    const nlohmann::json &pattern = tokjson::require(spec, "pattern", origin, where);
    tokjson::require_object(pattern, origin, where + ".pattern");
    if (tokjson::find(pattern, "String")) {
        const std::string text = tokjson::require_string(pattern, "String", origin, where + ".pattern");
        // An empty pattern would match between every two characters; nothing writes one.
        if (text.empty()) fail(MST_ERR_BAD_FORMAT, "{}: {}.pattern.String is empty", origin, where);
        return std::make_unique<OnigRegex>(text, true, origin);
    }
    if (tokjson::find(pattern, "Regex"))
        return std::make_unique<OnigRegex>(tokjson::require_string(pattern, "Regex", origin, where + ".pattern"), false,
                                           origin);
    fail(MST_ERR_BAD_FORMAT, "{}: {}.pattern has neither \"String\" nor \"Regex\"", origin, where);
}

}  // namespace mst
