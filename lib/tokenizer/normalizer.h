// The tokenizer.json "normalizer": null, a Unicode normalization form (NFC, NFD, NFKC,
// NFKD, computed by ICU) or a Sequence of those. Anything else is MST_ERR_UNSUPPORTED.
#pragma once

#include <nlohmann/json.hpp>

#include <memory>
#include <string>
#include <string_view>
#include <vector>

struct UNormalizer2;

namespace mst {

class Normalizer {
public:
    // spec is the "normalizer" value; returns nullptr for null (no normalization).
    static std::unique_ptr<Normalizer> from_json(const nlohmann::json &spec, const std::string &origin);

    // text must be valid UTF-8; so is the result.
    std::string apply(std::string_view text) const;

private:
    std::vector<const UNormalizer2 *> forms_;
    std::vector<std::string> names_;
};

}  // namespace mst
