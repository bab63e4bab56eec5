#include "cli_args.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdlib>

#include <fmt/format.h>

#include "foreign_options.h"

namespace mst::cli {
namespace {

std::string int_range(int64_t min, int64_t max) {
    if (max == std::numeric_limits<int64_t>::max()) return fmt::format("at least {}", min);
    return fmt::format("in {}..{}", min, max);
}

// strtoll and strtod skip leading blanks and stop at the first character they do not
// understand; a number here is the whole text, so "0.03" is no integer and "12abc" no
// number at all.
int64_t parse_int(const std::string &name, const std::string &text, int64_t min, int64_t max) {
    const char *begin = text.c_str();
    char *end = nullptr;
    errno = 0;
    const long long parsed = text.empty() || std::isspace(static_cast<unsigned char>(text[0]))
                                 ? 0 : std::strtoll(begin, &end, 10);
    if (end == nullptr || end == begin || *end)
        throw UsageError(fmt::format("option --{} needs a whole number, got '{}'", name, text));
    if (errno == ERANGE || parsed < min || parsed > max)
        throw UsageError(fmt::format("option --{} must be {}, got {}", name, int_range(min, max), text));
    return parsed;
}

}  // namespace

Args::Args(const std::vector<std::string> &argv, const std::vector<std::string> &flags,
           const std::map<std::string, std::string> &aliases) {
    for (size_t i = 0; i < argv.size(); ++i) {
        const std::string &word = argv[i];
        if (word == "--") {  // everything after it is positional, even words starting with '-'
            positional_.insert(positional_.end(), argv.begin() + ptrdiff_t(i) + 1, argv.end());
            break;
        }
        const bool is_long = word.rfind("--", 0) == 0;
        const size_t eq = is_long ? word.find('=') : std::string::npos;
        const std::string typed = word.substr(0, eq);
        std::string key = typed;
        if (auto a = aliases.find(key); a != aliases.end()) key = a->second;
        if (key.rfind("--", 0) != 0) {
            // A dash and a letter is an option this command has no alias for ("-ngl");
            // a lone "-" or a negative number is a stray word, like any other.
            if (key.size() > 1 && key[0] == '-' && std::isalpha(static_cast<unsigned char>(key[1])))
                given_.push_back({typed, ""});
            else
                positional_.push_back(word);
            continue;
        }
        const std::string name = key.substr(2);
        given_.push_back({typed, name});
        const bool is_flag = std::find(flags.begin(), flags.end(), name) != flags.end();
        if (eq != std::string::npos) {
            if (is_flag) flag_with_value_.push_back(name);
            else values_.emplace(name, word.substr(eq + 1));
        } else if (is_flag) {
            values_.emplace(name, "1");
        } else if (i + 1 < argv.size()) {
            values_.emplace(name, argv[++i]);
        } else {
            missing_value_.push_back(name);
        }
    }
}

bool Args::flag(const std::string &name) const { return values_.count(name) > 0; }

std::optional<std::string> Args::get(const std::string &name) const {
    auto range = values_.equal_range(name);
    if (range.first == range.second) return std::nullopt;
    return std::prev(range.second)->second;  // the last one given wins
}

const char *Args::get_ptr(const std::string &name) const {
    auto range = values_.equal_range(name);
    return range.first == range.second ? nullptr : std::prev(range.second)->second.c_str();
}

std::string Args::get_or(const std::string &name, const std::string &fallback) const {
    return get(name).value_or(fallback);
}

std::string Args::require(const std::string &name) const {
    auto v = get(name);
    if (!v) throw UsageError("missing required option --" + name);
    return *v;
}

int64_t Args::int_in(const std::string &name, int64_t fallback, int64_t min, int64_t max) const {
    auto v = get(name);
    return v ? parse_int(name, *v, min, max) : fallback;
}

double Args::float_in(const std::string &name, double fallback, double min, double max) const {
    auto v = get(name);
    if (!v) return fallback;
    const char *begin = v->c_str();
    char *end = nullptr;
    errno = 0;
    const double parsed = v->empty() || std::isspace(static_cast<unsigned char>((*v)[0])) ? 0.0
                                                                                          : std::strtod(begin, &end);
    if (end == nullptr || end == begin || *end || !std::isfinite(parsed))
        throw UsageError(fmt::format("option --{} needs a number, got '{}'", name, *v));
    if (errno == ERANGE || parsed < min || parsed > max)
        throw UsageError(fmt::format("option --{} must be in {}..{}, got {}", name, min, max, *v));
    return parsed;
}

std::vector<int64_t> Args::int_list(const std::string &name, int64_t min, int64_t max) const {
    std::vector<int64_t> out;
    auto v = get(name);
    if (!v) return out;
    size_t start = 0;
    while (true) {
        const size_t comma = v->find(',', start);
        out.push_back(parse_int(name, v->substr(start, comma - start), min, max));
        if (comma == std::string::npos) break;
        start = comma + 1;
    }
    return out;
}

std::vector<std::string> Args::all(const std::string &name) const {
    std::vector<std::string> out;
    auto range = values_.equal_range(name);
    for (auto it = range.first; it != range.second; ++it) out.push_back(it->second);
    return out;
}

void Args::reject_unknown(const std::vector<std::string> &known) const {
    for (const Given &g : given_) {
        if (!g.name.empty() && std::find(known.begin(), known.end(), g.name) != known.end()) continue;
        std::string message = "unknown option " + g.word;
        if (auto hint = foreign_option_hint(g.word)) message += ": " + *hint;
        throw UsageError(message);
    }
    if (!flag_with_value_.empty()) throw UsageError("option --" + flag_with_value_.front() + " takes no value");
    if (!missing_value_.empty()) throw UsageError("option --" + missing_value_.front() + " needs a value");
}

void Args::reject_positional() const {
    if (!positional_.empty())
        throw UsageError("unexpected argument '" + positional_.front() +
                         "' (every value belongs to an option; see --help)");
}

}  // namespace mst::cli
