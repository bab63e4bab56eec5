// A small command-line option reader: "--name value", "--name=value", short aliases and
// flags, with errors that name the option.
#pragma once

#include <cstdint>
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
    // `flags` are options that take no value; `aliases` maps short names ("-m") to long ones.
    Args(const std::vector<std::string> &argv, const std::vector<std::string> &flags,
         const std::map<std::string, std::string> &aliases);

    bool flag(const std::string &name) const;
    std::optional<std::string> get(const std::string &name) const;
    std::string get_or(const std::string &name, const std::string &fallback) const;
    std::string require(const std::string &name) const;
    int64_t int_or(const std::string &name, int64_t fallback) const;
    double float_or(const std::string &name, double fallback) const;
    std::vector<std::string> all(const std::string &name) const;  // an option given several times
    // Fails with UsageError naming any option not in `known`.
    void reject_unknown(const std::vector<std::string> &known) const;
    const std::vector<std::string> &positional() const { return positional_; }

private:
    std::multimap<std::string, std::string> values_;
    std::vector<std::string> positional_;
};

}  // namespace mst::cli
