// The tokenizer.json "post_processor", applied when encoding with add_special_tokens (the
// reference's default): TemplateProcessing (its "single" template), RobertaProcessing and
// BertProcessing (cls + text + sep), ByteLevel (ids unchanged), and a Sequence of those.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace mst {

class PostProcessor {
public:
    // spec is the "post_processor" value; null gives a processor that changes nothing.
    static std::unique_ptr<PostProcessor> from_json(const nlohmann::json &spec, const std::string &origin);

    // The ids of one encoded text with the special tokens the processor adds around it.
    std::vector<int32_t> apply(std::vector<int32_t> ids) const;

private:
    void add(const nlohmann::json &spec, const std::string &origin, const std::string &where);

    // One template per processor in the chain: each item is either the text (empty ids,
    // is_text) or fixed ids to insert.
    struct Item {
        bool is_text = false;
        std::vector<int32_t> ids;
    };
    std::vector<std::vector<Item>> templates_;
};

}  // namespace mst
