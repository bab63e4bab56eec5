#include "tokenizer/pre_tokenizer.h"

#include <algorithm>

#include "core/error.h"
#include "tokenizer/byte_level.h"
#include "tokenizer/json_fields.h"
#include "tokenizer/utf8.h"

namespace mst {

namespace {

// The split pattern of GPT-2, applied by ByteLevel when use_regex is true.
constexpr std::string_view kGpt2Pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

struct Range {
    size_t begin, end;
    bool is_match;
};

using Behavior = PreTokenizer::Behavior;

Behavior parse_behavior(const std::string &name, const std::string &origin, std::string_view where) {
    if (name == "Removed") return Behavior::Removed;
    if (name == "Isolated") return Behavior::Isolated;
    if (name == "MergedWithPrevious") return Behavior::MergedWithPrevious;
    if (name == "MergedWithNext") return Behavior::MergedWithNext;
    if (name == "Contiguous") return Behavior::Contiguous;
    fail(MST_ERR_BAD_FORMAT, "{}: {} has an unknown split behavior \"{}\"", origin, where, name);
}

// Covers the whole text with alternating gaps and matches, as the reference does before
// it applies a split behavior.
void cover(size_t length, const std::vector<std::pair<size_t, size_t>> &matches, bool invert,
           std::vector<Range> &ranges) {
    size_t previous = 0;
    for (const auto &[begin, end] : matches) {
        if (previous != begin) ranges.push_back({previous, begin, invert});
        ranges.push_back({begin, end, !invert});
        previous = end;
    }
    if (previous != length) ranges.push_back({previous, length, invert});
}

// Reduces the covering ranges to the pieces a behavior keeps. Mirrors the reference's
// folds, including what they do with empty matches.
void apply_behavior(Behavior behavior, std::vector<Range> &ranges) {
    std::vector<Range> out;
    out.reserve(ranges.size());
    bool previous_match = false;
    switch (behavior) {
    case Behavior::Isolated:
        return;
    case Behavior::Removed:
        for (const Range &r : ranges)
            if (!r.is_match) out.push_back(r);
        break;
    case Behavior::MergedWithPrevious:
        for (const Range &r : ranges) {
            if (r.is_match && !previous_match && !out.empty()) out.back().end = r.end;
            else out.push_back(r);
            previous_match = r.is_match;
        }
        break;
    case Behavior::MergedWithNext:
        for (size_t i = ranges.size(); i-- > 0;) {
            const Range &r = ranges[i];
            if (r.is_match && !previous_match && !out.empty()) out.back().begin = r.begin;
            else out.push_back(r);
            previous_match = r.is_match;
        }
        std::reverse(out.begin(), out.end());
        break;
    case Behavior::Contiguous:
        for (const Range &r : ranges) {
            if (r.is_match == previous_match && !out.empty()) out.back().end = r.end;
            else out.push_back(r);
            previous_match = r.is_match;
        }
        break;
    }
    ranges = std::move(out);
}

}  // namespace

PreTokenizer::~PreTokenizer() = default;

std::unique_ptr<PreTokenizer> PreTokenizer::from_json(const nlohmann::json &spec, const std::string &origin) {
    auto pre = std::unique_ptr<PreTokenizer>(new PreTokenizer());
    if (!spec.is_null()) pre->add_steps(spec, origin, "pre_tokenizer");
    return pre;
}

void PreTokenizer::add_steps(const nlohmann::json &spec, const std::string &origin, const std::string &where) {
    const std::string type = tokjson::type_of(spec, origin, where);
    Step step;
    if (type == "Sequence") {
        const nlohmann::json &items = tokjson::require(spec, "pretokenizers", origin, where);
        tokjson::require_array(items, origin, where + ".pretokenizers");
        for (size_t i = 0; i < items.size(); ++i)
            add_steps(items[i], origin, fmt::format("{}.pretokenizers[{}]", where, i));
        return;
    }
    if (type == "Split") {
        const nlohmann::json &pattern = tokjson::require(spec, "pattern", origin, where);
        tokjson::require_object(pattern, origin, where + ".pattern");
        const std::string behavior = tokjson::require_string(spec, "behavior", origin, where);
        step.behavior = parse_behavior(behavior, origin, where);
        step.invert = tokjson::optional_bool(spec, "invert", false, origin, where);
        if (tokjson::find(pattern, "Regex")) {
            step.regex = std::make_unique<OnigRegex>(
                tokjson::require_string(pattern, "Regex", origin, where + ".pattern"), false, origin);
        } else if (tokjson::find(pattern, "String")) {
            step.regex = std::make_unique<OnigRegex>(
                tokjson::require_string(pattern, "String", origin, where + ".pattern"), true, origin);
        } else {
            fail(MST_ERR_BAD_FORMAT, "{}: {}.pattern has neither \"Regex\" nor \"String\"", origin, where);
        }
        step.kind = Kind::Split;
    } else if (type == "ByteLevel") {
        step.kind = Kind::ByteLevel;
        step.add_prefix_space = tokjson::optional_bool(spec, "add_prefix_space", true, origin, where);
        if (tokjson::optional_bool(spec, "use_regex", true, origin, where))
            step.regex = std::make_unique<OnigRegex>(kGpt2Pattern, false, origin);
    } else if (type == "Digits") {
        step.kind = Kind::Digits;
        step.behavior = tokjson::optional_bool(spec, "individual_digits", false, origin, where) ? Behavior::Isolated
                                                                                                : Behavior::Contiguous;
    } else if (type == "Metaspace") {
        step.kind = Kind::Metaspace;
        step.replacement = tokjson::optional_string(spec, "replacement", origin, where);
        if (step.replacement.empty()) step.replacement = "\xE2\x96\x81";  // "▁", the reference's default
        if (!utf8::is_valid(step.replacement) || utf8::decode_at(step.replacement, 0).length != step.replacement.size())
            fail(MST_ERR_BAD_FORMAT, "{}: {}.replacement is not one character", origin, where);
        // Older files say add_prefix_space; newer ones prepend_scheme, which wins.
        step.prepend = tokjson::optional_bool(spec, "add_prefix_space", true, origin, where) ? Prepend::Always
                                                                                              : Prepend::Never;
        const std::string scheme = tokjson::optional_string(spec, "prepend_scheme", origin, where);
        if (scheme == "always") step.prepend = Prepend::Always;
        else if (scheme == "first") step.prepend = Prepend::First;
        else if (scheme == "never") step.prepend = Prepend::Never;
        else if (!scheme.empty())
            fail(MST_ERR_BAD_FORMAT, "{}: {}.prepend_scheme \"{}\" is not always, first or never", origin, where, scheme);
        if (tokjson::optional_bool(spec, "split", true, origin, where)) {
            step.regex = std::make_unique<OnigRegex>(step.replacement, true, origin);
            step.behavior = Behavior::MergedWithNext;
        }
    } else {
        fail(MST_ERR_UNSUPPORTED, "{}: pre-tokenizer type \"{}\" ({}) is not supported", origin, type, where);
    }
    steps_.push_back(std::move(step));
}

void PreTokenizer::apply(const Step &step, std::string_view piece, bool at_start, std::vector<std::string> &out) const {
    std::vector<std::pair<size_t, size_t>> matches;
    std::vector<Range> ranges;
    switch (step.kind) {
    case Kind::Split:
        step.regex->find_all(piece, matches);
        cover(piece.size(), matches, step.invert, ranges);
        apply_behavior(step.behavior, ranges);
        for (const Range &r : ranges)
            if (r.end > r.begin) out.emplace_back(piece.substr(r.begin, r.end - r.begin));
        return;
    case Kind::Digits:
        // Each ASCII digit is a match of its own; the behavior then joins or isolates them.
        for (size_t i = 0; i < piece.size(); ++i)
            if (piece[i] >= '0' && piece[i] <= '9') matches.emplace_back(i, i + 1);
        cover(piece.size(), matches, false, ranges);
        apply_behavior(step.behavior, ranges);
        for (const Range &r : ranges)
            if (r.end > r.begin) out.emplace_back(piece.substr(r.begin, r.end - r.begin));
        return;
    case Kind::Metaspace: {
        std::string replaced;
        replaced.reserve(piece.size() + step.replacement.size());
        const bool starts = piece.substr(0, step.replacement.size()) == step.replacement;
        if (!starts && (step.prepend == Prepend::Always || (step.prepend == Prepend::First && at_start)))
            replaced += step.replacement;
        for (char c : piece) {
            if (c == ' ') replaced += step.replacement;
            else replaced.push_back(c);
        }
        if (!step.regex) {
            out.push_back(std::move(replaced));
            return;
        }
        // Each "▁" starts a word: split on it, merged with what follows.
        step.regex->find_all(replaced, matches);
        cover(replaced.size(), matches, false, ranges);
        apply_behavior(step.behavior, ranges);
        for (const Range &r : ranges)
            if (r.end > r.begin) out.emplace_back(replaced.substr(r.begin, r.end - r.begin));
        return;
    }
    case Kind::ByteLevel: {
        std::string prefixed;
        if (step.add_prefix_space && piece.front() != ' ') {
            prefixed.reserve(piece.size() + 1);
            prefixed.push_back(' ');
            prefixed.append(piece);
            piece = prefixed;
        }
        if (step.regex) {
            step.regex->find_all(piece, matches);
            cover(piece.size(), matches, false, ranges);
        } else {
            ranges.push_back({0, piece.size(), false});
        }
        for (const Range &r : ranges) {
            if (r.end == r.begin) continue;
            std::string &word = out.emplace_back();
            word.reserve(2 * (r.end - r.begin));
            byte_level::encode_append(piece.substr(r.begin, r.end - r.begin), word);
        }
        return;
    }
    }
}

bool PreTokenizer::has_metaspace() const {
    return std::any_of(steps_.begin(), steps_.end(), [](const Step &s) { return s.kind == Kind::Metaspace; });
}

void PreTokenizer::split(std::string_view piece, std::vector<std::string> &words, bool at_start) const {
    if (piece.empty()) return;
    if (steps_.empty()) {
        words.emplace_back(piece);
        return;
    }
    std::vector<std::string> current{std::string(piece)};
    std::vector<std::string> next;
    for (size_t s = 0; s < steps_.size(); ++s) {
        std::vector<std::string> &target = s + 1 == steps_.size() ? words : next;
        // Only the first piece of the first step's output can still begin the text.
        for (size_t k = 0; k < current.size(); ++k) apply(steps_[s], current[k], at_start && k == 0, target);
        if (s + 1 < steps_.size()) {
            current.swap(next);
            next.clear();
        }
    }
}

}  // namespace mst
