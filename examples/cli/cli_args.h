// A small command-line option reader: "--name value", "--name=value", short aliases and
// flags, with errors that name the option. Numbers are read strictly: the whole text must
// be one number within the option's range, or the error gives the range.
#pragma once

#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace mst::cli {

struct UsageError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

class Args {
public:
    // `flags` are options that take no value; `aliases` maps other names ("-m",
    // "--n-predict") to long ones ("--model", "--max-tokens").
    Args(const std::vector<std::string> &argv, const std::vector<std::string> &flags,
         const std::map<std::string, std::string> &aliases);

    bool flag(const std::string &name) const;
    std::optional<std::string> get(const std::string &name) const;
    // The last value given, owned by this object; nullptr when absent.
    const char *get_ptr(const std::string &name) const;
    std::string get_or(const std::string &name, const std::string &fallback) const;
    std::string require(const std::string &name) const;
    // The option's whole text as an integer in [min, max]; `fallback` when it is absent.
    int64_t int_in(const std::string &name, int64_t fallback, int64_t min, int64_t max) const;
    // A finite number in [min, max].
    double float_in(const std::string &name, double fallback, double min, double max) const;
    // A comma-separated list of integers, each in [min, max]; empty when the option is absent.
    std::vector<int64_t> int_list(const std::string &name, int64_t min, int64_t max) const;
    std::vector<std::string> all(const std::string &name) const;  // an option given several times
    // Fails with UsageError on the first problem of the command line, in this order: an
    // option not in `known` (an option of llama.cpp's with no counterpart here says what to
    // use instead), a flag given a value, an option missing its value. Unknown options are
    // named first, so that one given last is not reported as missing its value.
    void reject_unknown(const std::vector<std::string> &known) const;
    // Fails with UsageError naming the first word that is not an option or its value
    // (for commands that take no positional arguments).
    void reject_positional() const;
    const std::vector<std::string> &positional() const { return positional_; }

private:
    std::multimap<std::string, std::string> values_;
    std::vector<std::string> positional_;
    struct Given {
        std::string word;  // as typed, e.g. "-ngl" or "--n-predict"
        std::string name;  // the long name it stands for, without "--"; empty for a short word that is no alias
    };
    std::vector<Given> given_;  // in command-line order
    std::vector<std::string> flag_with_value_, missing_value_;
};

}  // namespace mst::cli
