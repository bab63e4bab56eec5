#include "tokenizer/normalizer.h"

#include <unicode/unorm2.h>
#include <unicode/ustring.h>

#include <climits>

#include "core/error.h"
#include "tokenizer/json_fields.h"

namespace mst {

namespace {

const UNormalizer2 *icu_form(const std::string &name, const std::string &origin) {
    UErrorCode status = U_ZERO_ERROR;
    const UNormalizer2 *form = nullptr;
    if (name == "NFC") form = unorm2_getNFCInstance(&status);
    else if (name == "NFD") form = unorm2_getNFDInstance(&status);
    else if (name == "NFKC") form = unorm2_getNFKCInstance(&status);
    else if (name == "NFKD") form = unorm2_getNFKDInstance(&status);
    else fail(MST_ERR_UNSUPPORTED, "{}: normalizer type \"{}\" is not supported", origin, name);
    if (U_FAILURE(status) || !form)
        fail(MST_ERR_INTERNAL, "{}: ICU has no {} normalizer ({})", origin, name, u_errorName(status));
    return form;
}

void collect(const nlohmann::json &spec, const std::string &origin, std::string_view where,
             std::vector<std::string> &names) {
    const std::string type = tokjson::type_of(spec, origin, where);
    if (type == "Sequence") {
        const nlohmann::json &items = tokjson::require(spec, "normalizers", origin, where);
        tokjson::require_array(items, origin, std::string(where) + ".normalizers");
        for (size_t i = 0; i < items.size(); ++i)
            collect(items[i], origin, fmt::format("{}.normalizers[{}]", where, i), names);
        return;
    }
    names.push_back(type);
}

std::u16string to_utf16(std::string_view text) {
    UErrorCode status = U_ZERO_ERROR;
    int32_t length = 0;
    u_strFromUTF8(nullptr, 0, &length, text.data(), static_cast<int32_t>(text.size()), &status);
    std::u16string out(static_cast<size_t>(length), u'\0');
    status = U_ZERO_ERROR;
    u_strFromUTF8(out.data(), length, nullptr, text.data(), static_cast<int32_t>(text.size()), &status);
    if (U_FAILURE(status)) fail(MST_ERR_INTERNAL, "UTF-8 to UTF-16 conversion failed: {}", u_errorName(status));
    return out;
}

std::string to_utf8(const std::u16string &text) {
    UErrorCode status = U_ZERO_ERROR;
    int32_t length = 0;
    u_strToUTF8(nullptr, 0, &length, text.data(), static_cast<int32_t>(text.size()), &status);
    std::string out(static_cast<size_t>(length), '\0');
    status = U_ZERO_ERROR;
    u_strToUTF8(out.data(), length, nullptr, text.data(), static_cast<int32_t>(text.size()), &status);
    if (U_FAILURE(status)) fail(MST_ERR_INTERNAL, "UTF-16 to UTF-8 conversion failed: {}", u_errorName(status));
    return out;
}

bool is_ascii(std::string_view text) {
    for (char c : text)
        if (static_cast<unsigned char>(c) >= 0x80) return false;
    return true;
}

}  // namespace

std::unique_ptr<Normalizer> Normalizer::from_json(const nlohmann::json &spec, const std::string &origin) {
    if (spec.is_null()) return nullptr;
    std::vector<std::string> names;
    collect(spec, origin, "normalizer", names);
    auto normalizer = std::unique_ptr<Normalizer>(new Normalizer());
    for (const std::string &name : names) normalizer->forms_.push_back(icu_form(name, origin));
    normalizer->names_ = std::move(names);
    return normalizer;
}

std::string Normalizer::apply(std::string_view text) const {
    // Every normalization form leaves ASCII unchanged, and most prompts are ASCII.
    if (forms_.empty() || is_ascii(text)) return std::string(text);
    // ICU counts in int32_t UTF-16 units; a UTF-8 byte never needs more than one unit.
    if (text.size() > static_cast<size_t>(INT32_MAX) / 2)
        fail(MST_ERR_INVALID_ARGUMENT, "text of {} bytes is too long to normalize", text.size());
    std::u16string current = to_utf16(text);
    bool changed = false;
    for (size_t i = 0; i < forms_.size(); ++i) {
        UErrorCode status = U_ZERO_ERROR;
        const auto length = static_cast<int32_t>(current.size());
        if (unorm2_quickCheck(forms_[i], current.data(), length, &status) == UNORM_YES && U_SUCCESS(status))
            continue;
        status = U_ZERO_ERROR;
        const int32_t needed = unorm2_normalize(forms_[i], current.data(), length, nullptr, 0, &status);
        std::u16string next(static_cast<size_t>(needed), u'\0');
        status = U_ZERO_ERROR;
        unorm2_normalize(forms_[i], current.data(), length, next.data(), needed, &status);
        if (U_FAILURE(status)) fail(MST_ERR_INTERNAL, "{} normalization failed: {}", names_[i], u_errorName(status));
        current = std::move(next);
        changed = true;
    }
    return changed ? to_utf8(current) : std::string(text);
}

}  // namespace mst
