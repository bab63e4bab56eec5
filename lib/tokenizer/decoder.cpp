#include "tokenizer/decoder.h"

#include "core/error.h"
#include "tokenizer/byte_level.h"
#include "tokenizer/json_fields.h"
#include "tokenizer/replace_pattern.h"
#include "tokenizer/utf8.h"

namespace mst {

namespace {

int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

// The byte a "<0xNN>" token stands for, or -1.
int fallback_byte(const std::string &token) {
    if (token.size() != 6 || token.compare(0, 3, "<0x") != 0 || token[5] != '>') return -1;
    const int high = hex_value(token[3]), low = hex_value(token[4]);
    return high < 0 || low < 0 ? -1 : high * 16 + low;
}

void replace_all(std::string &text, std::string_view from, std::string_view to) {
    if (from.empty() || text.find(from) == std::string::npos) return;
    std::string out;
    out.reserve(text.size());
    size_t previous = 0;
    for (size_t at = text.find(from); at != std::string::npos; at = text.find(from, previous)) {
        out.append(text, previous, at - previous);
        out.append(to);
        previous = at + from.size();
    }
    out.append(text, previous);
    text = std::move(out);
}

// One UTF-8 character, as the decoders that name a character (Strip, Metaspace) need.
std::string one_character(const nlohmann::json &spec, const char *key, const std::string &origin,
                          const std::string &where) {
    const std::string text = tokjson::require_string(spec, key, origin, where);
    if (text.empty() || !utf8::is_valid(text) || utf8::decode_at(text, 0).length != text.size())
        fail(MST_ERR_BAD_FORMAT, "{}: {}.{} is not one character", origin, where, key);
    return text;
}

size_t count(const nlohmann::json &spec, const char *key, const std::string &origin, const std::string &where) {
    const nlohmann::json *value = tokjson::find(spec, key);
    if (!value) return 0;
    // A document built in memory (a GGUF's vocabulary) holds 1 as a signed integer, a parsed
    // one as an unsigned one: both count.
    if (!value->is_number_integer() || value->get<int64_t>() < 0 || value->get<int64_t>() > 1024)
        fail(MST_ERR_BAD_FORMAT, "{}: {}.{} is not a small non-negative integer", origin, where, key);
    return value->get<size_t>();
}

}  // namespace

Decoder::~Decoder() = default;

std::unique_ptr<Decoder> Decoder::from_json(const nlohmann::json &spec, const std::string &origin) {
    // Token bytes follow from the decoder; without one a token's meaning is unknown, so it
    // is refused rather than decoded wrongly.
    if (spec.is_null())
        fail(MST_ERR_UNSUPPORTED, "{}: a tokenizer without a decoder is not supported (ByteLevel expected)", origin);
    auto decoder = std::unique_ptr<Decoder>(new Decoder());
    decoder->add(spec, origin, "decoder");
    return decoder;
}

void Decoder::add(const nlohmann::json &spec, const std::string &origin, const std::string &where) {
    const std::string type = tokjson::type_of(spec, origin, where);
    if (type == "Sequence") {
        const nlohmann::json &items = tokjson::require(spec, "decoders", origin, where);
        tokjson::require_array(items, origin, where + ".decoders");
        for (size_t i = 0; i < items.size(); ++i) add(items[i], origin, fmt::format("{}.decoders[{}]", where, i));
        return;
    }
    Step step;
    if (type == "ByteLevel") {
        step.kind = Kind::ByteLevel;
    } else if (type == "Replace") {
        step.kind = Kind::Replace;
        step.regex = replace_pattern(spec, origin, where);
        step.text = tokjson::require_string(spec, "content", origin, where);
        concatenates_ = false;
    } else if (type == "ByteFallback") {
        step.kind = Kind::ByteFallback;
        concatenates_ = false;
        sentencepiece_ = true;
    } else if (type == "Fuse") {
        step.kind = Kind::Fuse;
        concatenates_ = false;
    } else if (type == "Strip") {
        step.kind = Kind::Strip;
        step.text = one_character(spec, "content", origin, where);
        step.start = count(spec, "start", origin, where);
        step.stop = count(spec, "stop", origin, where);
        concatenates_ = false;
    } else if (type == "Metaspace") {
        step.kind = Kind::Metaspace;
        step.text = tokjson::find(spec, "replacement") ? one_character(spec, "replacement", origin, where)
                                                        : std::string("\xE2\x96\x81");  // "▁", the default
        // Older files say add_prefix_space; newer ones prepend_scheme, which wins.
        step.strip_first = tokjson::optional_bool(spec, "add_prefix_space", true, origin, where);
        const std::string scheme = tokjson::optional_string(spec, "prepend_scheme", origin, where);
        if (!scheme.empty()) {
            if (scheme != "always" && scheme != "first" && scheme != "never")
                fail(MST_ERR_BAD_FORMAT, "{}: {}.prepend_scheme \"{}\" is not always, first or never", origin, where,
                     scheme);
            step.strip_first = scheme != "never";
        }
        concatenates_ = false;
        sentencepiece_ = true;
    } else {
        fail(MST_ERR_UNSUPPORTED, "{}: decoder type \"{}\" ({}) is not supported", origin, type, where);
    }
    steps_.push_back(std::move(step));
}

void Decoder::apply_to_token(const Step &step, std::string &token) {
    switch (step.kind) {
    case Kind::ByteLevel: {
        // A token with a character outside the byte alphabet (an added token) stays as is.
        std::string bytes;
        if (byte_level::decode_append(token, bytes)) token = std::move(bytes);
        return;
    }
    case Kind::Replace: {
        std::vector<std::pair<size_t, size_t>> matches;
        // The regex needs valid UTF-8; a token that is not (bytes from ByteFallback) is
        // left alone, as a String pattern could not be in it either.
        if (!utf8::is_valid(token)) return;
        step.regex->find_all(token, matches);
        if (matches.empty()) return;
        std::string out;
        size_t previous = 0;
        for (const auto &[begin, end] : matches) {
            out.append(token, previous, begin - previous);
            out += step.text;
            previous = end;
        }
        out.append(token, previous);
        token = std::move(out);
        return;
    }
    case Kind::ByteFallback: {
        const int byte = fallback_byte(token);
        if (byte >= 0) token.assign(1, static_cast<char>(byte));
        return;
    }
    case Kind::Metaspace:
        replace_all(token, step.text, " ");
        return;
    case Kind::Fuse:
    case Kind::Strip:
        return;
    }
}

std::string Decoder::token_bytes(const std::string &token) const {
    std::string bytes = token;
    for (const Step &step : steps_) apply_to_token(step, bytes);
    return bytes;
}

std::string Decoder::decode(std::vector<std::string> tokens) const {
    for (const Step &step : steps_) {
        switch (step.kind) {
        case Kind::Fuse: {
            std::string joined;
            for (const std::string &t : tokens) joined += t;
            tokens.assign(1, std::move(joined));
            break;
        }
        case Kind::Strip:
            for (std::string &t : tokens) {
                size_t begin = 0, end = t.size();
                for (size_t k = 0; k < step.start && t.compare(begin, step.text.size(), step.text) == 0; ++k)
                    begin += step.text.size();
                for (size_t k = 0; k < step.stop && end >= begin + step.text.size() &&
                                   t.compare(end - step.text.size(), step.text.size(), step.text) == 0;
                     ++k)
                    end -= step.text.size();
                t = t.substr(begin, end - begin);
            }
            break;
        case Kind::Metaspace:
            for (size_t i = 0; i < tokens.size(); ++i) {
                // The reference drops the replacement from the first token altogether
                // (where the pre-tokenizer put it), and makes it a space elsewhere.
                if (i == 0 && step.strip_first) replace_all(tokens[i], step.text, "");
                else replace_all(tokens[i], step.text, " ");
            }
            break;
        default:
            for (std::string &t : tokens) apply_to_token(step, t);
            break;
        }
    }
    std::string out;
    for (const std::string &t : tokens) out += t;
    return out;
}

}  // namespace mst
