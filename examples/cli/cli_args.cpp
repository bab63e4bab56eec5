#include "cli_args.h"

#include <algorithm>
#include <cerrno>
#include <cstdlib>

namespace mst::cli {

Args::Args(const std::vector<std::string> &argv, const std::vector<std::string> &flags,
           const std::map<std::string, std::string> &aliases) {
    for (size_t i = 0; i < argv.size(); ++i) {
        std::string arg = argv[i];
        if (auto a = aliases.find(arg); a != aliases.end()) arg = a->second;
        if (arg.rfind("--", 0) != 0 || arg == "--") {
            positional_.push_back(arg);
            continue;
        }
        std::string name = arg.substr(2), value;
        const size_t eq = name.find('=');
        const bool is_flag = std::find(flags.begin(), flags.end(), name) != flags.end();
        if (eq != std::string::npos) {
            value = name.substr(eq + 1);
            name = name.substr(0, eq);
        } else if (is_flag) {
            value = "1";
        } else {
            if (i + 1 >= argv.size()) throw UsageError("option --" + name + " needs a value");
            value = argv[++i];
        }
        values_.emplace(name, value);
    }
}

bool Args::flag(const std::string &name) const { return values_.count(name) > 0; }

std::optional<std::string> Args::get(const std::string &name) const {
    auto range = values_.equal_range(name);
    if (range.first == range.second) return std::nullopt;
    return std::prev(range.second)->second;  // the last one given wins
}

std::string Args::get_or(const std::string &name, const std::string &fallback) const {
    return get(name).value_or(fallback);
}

std::string Args::require(const std::string &name) const {
    auto v = get(name);
    if (!v) throw UsageError("missing required option --" + name);
    return *v;
}

int64_t Args::int_or(const std::string &name, int64_t fallback) const {
    auto v = get(name);
    if (!v) return fallback;
    char *end = nullptr;
    errno = 0;
    const long long parsed = std::strtoll(v->c_str(), &end, 10);
    if (errno || end == v->c_str() || *end) throw UsageError("option --" + name + " needs an integer, got '" + *v + "'");
    return parsed;
}

double Args::float_or(const std::string &name, double fallback) const {
    auto v = get(name);
    if (!v) return fallback;
    char *end = nullptr;
    errno = 0;
    const double parsed = std::strtod(v->c_str(), &end);
    if (errno || end == v->c_str() || *end) throw UsageError("option --" + name + " needs a number, got '" + *v + "'");
    return parsed;
}

std::vector<std::string> Args::all(const std::string &name) const {
    std::vector<std::string> out;
    auto range = values_.equal_range(name);
    for (auto it = range.first; it != range.second; ++it) out.push_back(it->second);
    return out;
}

void Args::reject_unknown(const std::vector<std::string> &known) const {
    for (const auto &[name, value] : values_)
        if (std::find(known.begin(), known.end(), name) == known.end())
            throw UsageError("unknown option --" + name);
}

}  // namespace mst::cli
