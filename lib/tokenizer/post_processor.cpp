#include "tokenizer/post_processor.h"

#include <limits>

#include "core/error.h"
#include "tokenizer/json_fields.h"

namespace mst {

namespace {

int32_t as_id(const nlohmann::json &value, const std::string &origin, std::string_view where) {
    if (!value.is_number_integer() || value.get<int64_t>() < 0 ||
        value.get<int64_t>() > std::numeric_limits<int32_t>::max())
        fail(MST_ERR_BAD_FORMAT, "{}: {} is not a token id", origin, where);
    return static_cast<int32_t>(value.get<int64_t>());
}

// The ["token", id] pairs of Roberta/BertProcessing.
int32_t pair_id(const nlohmann::json &spec, const char *key, const std::string &origin, const std::string &where) {
    const nlohmann::json &pair = tokjson::require(spec, key, origin, where);
    if (!pair.is_array() || pair.size() != 2)
        fail(MST_ERR_BAD_FORMAT, "{}: {}.{} is not a [token, id] pair", origin, where, key);
    return as_id(pair[1], origin, where + "." + key);
}

}  // namespace

std::unique_ptr<PostProcessor> PostProcessor::from_json(const nlohmann::json &spec, const std::string &origin) {
    auto processor = std::unique_ptr<PostProcessor>(new PostProcessor());
    if (!spec.is_null()) processor->add(spec, origin, "post_processor");
    return processor;
}

void PostProcessor::add(const nlohmann::json &spec, const std::string &origin, const std::string &where) {
    const std::string type = tokjson::type_of(spec, origin, where);
    if (type == "Sequence") {
        const nlohmann::json &items = tokjson::require(spec, "processors", origin, where);
        tokjson::require_array(items, origin, where + ".processors");
        for (size_t i = 0; i < items.size(); ++i) add(items[i], origin, fmt::format("{}.processors[{}]", where, i));
        return;
    }
    if (type == "ByteLevel") return;  // it only adjusts offsets, which are not computed here
    std::vector<Item> items;
    if (type == "RobertaProcessing" || type == "BertProcessing") {
        items.push_back({false, {pair_id(spec, "cls", origin, where)}});
        items.push_back({true, {}});
        items.push_back({false, {pair_id(spec, "sep", origin, where)}});
    } else if (type == "TemplateProcessing") {
        const nlohmann::json &single = tokjson::require(spec, "single", origin, where);
        tokjson::require_array(single, origin, where + ".single");
        const nlohmann::json &specials = tokjson::require(spec, "special_tokens", origin, where);
        tokjson::require_object(specials, origin, where + ".special_tokens");
        for (size_t i = 0; i < single.size(); ++i) {
            const std::string at = fmt::format("{}.single[{}]", where, i);
            if (const nlohmann::json *sequence = tokjson::find(single[i], "Sequence")) {
                if (tokjson::require_string(*sequence, "id", origin, at + ".Sequence") != "A")
                    fail(MST_ERR_BAD_FORMAT, "{}: {} refers to a second sequence in a single template", origin, at);
                items.push_back({true, {}});
            } else if (const nlohmann::json *special = tokjson::find(single[i], "SpecialToken")) {
                const std::string name = tokjson::require_string(*special, "id", origin, at + ".SpecialToken");
                const nlohmann::json *entry = tokjson::find(specials, name);
                if (!entry)
                    fail(MST_ERR_BAD_FORMAT, "{}: {} names \"{}\", which is not in special_tokens", origin, at, name);
                const nlohmann::json &ids = tokjson::require(*entry, "ids", origin, where + ".special_tokens." + name);
                tokjson::require_array(ids, origin, where + ".special_tokens." + name + ".ids");
                Item item;
                for (const nlohmann::json &id : ids) item.ids.push_back(as_id(id, origin, at));
                items.push_back(std::move(item));
            } else {
                fail(MST_ERR_BAD_FORMAT, "{}: {} is neither a Sequence nor a SpecialToken", origin, at);
            }
        }
    } else {
        fail(MST_ERR_UNSUPPORTED, "{}: post-processor type \"{}\" ({}) is not supported", origin, type, where);
    }
    templates_.push_back(std::move(items));
}

std::vector<int32_t> PostProcessor::apply(std::vector<int32_t> ids) const {
    for (const std::vector<Item> &items : templates_) {
        std::vector<int32_t> out;
        out.reserve(ids.size() + 4);
        for (const Item &item : items) {
            if (item.is_text) out.insert(out.end(), ids.begin(), ids.end());
            else out.insert(out.end(), item.ids.begin(), item.ids.end());
        }
        ids = std::move(out);
    }
    return ids;
}

}  // namespace mst
