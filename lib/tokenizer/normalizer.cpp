#include "tokenizer/normalizer.h"

#include <unicode/unorm2.h>
#include <unicode/ustring.h>

#include <climits>

#include "core/error.h"
#include "tokenizer/json_fields.h"
#include "tokenizer/replace_pattern.h"
#include "tokenizer/unicode_props.h"
#include "tokenizer/utf8.h"

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

bool is_white_space_at(std::string_view text, size_t pos, size_t *length) {
    const utf8::Decoded d = utf8::decode_at(text, pos);
    *length = d.length;
    return unicode::is_white_space(d.cp);
}

}  // namespace

Normalizer::~Normalizer() = default;

std::unique_ptr<Normalizer> Normalizer::from_json(const nlohmann::json &spec, const std::string &origin) {
    if (spec.is_null()) return nullptr;
    auto normalizer = std::unique_ptr<Normalizer>(new Normalizer());
    normalizer->add(spec, origin, "normalizer");
    return normalizer;
}

void Normalizer::add(const nlohmann::json &spec, const std::string &origin, const std::string &where) {
    const std::string type = tokjson::type_of(spec, origin, where);
    if (type == "Sequence") {
        const nlohmann::json &items = tokjson::require(spec, "normalizers", origin, where);
        tokjson::require_array(items, origin, where + ".normalizers");
        for (size_t i = 0; i < items.size(); ++i) add(items[i], origin, fmt::format("{}.normalizers[{}]", where, i));
        return;
    }
    Step step;
    if (type == "Prepend") {
        step.kind = Kind::Prepend;
        step.text = tokjson::require_string(spec, "prepend", origin, where);
    } else if (type == "Replace") {
        step.kind = Kind::Replace;
        step.regex = replace_pattern(spec, origin, where);
        step.text = tokjson::require_string(spec, "content", origin, where);
    } else if (type == "Strip") {
        step.kind = Kind::Strip;
        step.strip_left = tokjson::optional_bool(spec, "strip_left", true, origin, where);
        step.strip_right = tokjson::optional_bool(spec, "strip_right", true, origin, where);
    } else {
        step.kind = Kind::Form;
        step.form = icu_form(type, origin);
        step.name = type;
    }
    if (!utf8::is_valid(step.text)) fail(MST_ERR_BAD_FORMAT, "{}: {} holds text that is not valid UTF-8", origin, where);
    steps_.push_back(std::move(step));
}

std::string Normalizer::apply_form(const Step &step, std::string_view text) const {
    // Every normalization form leaves ASCII unchanged, and most prompts are ASCII.
    if (is_ascii(text)) return std::string(text);
    // ICU counts in int32_t UTF-16 units; a UTF-8 byte never needs more than one unit.
    if (text.size() > static_cast<size_t>(INT32_MAX) / 2)
        fail(MST_ERR_INVALID_ARGUMENT, "text of {} bytes is too long to normalize", text.size());
    std::u16string current = to_utf16(text);
    UErrorCode status = U_ZERO_ERROR;
    const auto length = static_cast<int32_t>(current.size());
    if (unorm2_quickCheck(step.form, current.data(), length, &status) == UNORM_YES && U_SUCCESS(status))
        return std::string(text);
    status = U_ZERO_ERROR;
    const int32_t needed = unorm2_normalize(step.form, current.data(), length, nullptr, 0, &status);
    std::u16string next(static_cast<size_t>(needed), u'\0');
    status = U_ZERO_ERROR;
    unorm2_normalize(step.form, current.data(), length, next.data(), needed, &status);
    if (U_FAILURE(status)) fail(MST_ERR_INTERNAL, "{} normalization failed: {}", step.name, u_errorName(status));
    return to_utf8(next);
}

std::string Normalizer::apply(std::string_view input) const {
    std::string text(input);
    for (const Step &step : steps_) {
        switch (step.kind) {
        case Kind::Form:
            text = apply_form(step, text);
            break;
        case Kind::Prepend:
            // The reference prepends only to non-empty text.
            if (!text.empty()) text.insert(0, step.text);
            break;
        case Kind::Replace: {
            std::vector<std::pair<size_t, size_t>> matches;
            step.regex->find_all(text, matches);
            if (matches.empty()) break;
            std::string out;
            size_t previous = 0;
            for (const auto &[begin, end] : matches) {
                out.append(text, previous, begin - previous);
                out += step.text;
                previous = end;
            }
            out.append(text, previous);
            text = std::move(out);
            break;
        }
        case Kind::Strip: {
            size_t begin = 0, end = text.size(), length = 0;
            if (step.strip_left)
                while (begin < end && is_white_space_at(text, begin, &length)) begin += length;
            if (step.strip_right) {
                while (end > begin) {
                    size_t last = end - 1;
                    while (last > begin && (static_cast<unsigned char>(text[last]) & 0xC0) == 0x80) --last;
                    if (!is_white_space_at(text, last, &length)) break;
                    end = last;
                }
            }
            text = text.substr(begin, end - begin);
            break;
        }
        }
    }
    return text;
}

}  // namespace mst
