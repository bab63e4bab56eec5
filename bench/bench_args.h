// The command line of the CPU benches (bench_decode, bench_prefill): the options they share,
// the others read one at a time, values checked, and a mistake reported on stderr as "PROGRAM: what is wrong" (with
// the usage for an unknown option) and exit status 2, before anything is loaded; and the
// run itself, whose error is "PROGRAM: the error" and exit status 1.
#pragma once

#include <fmt/format.h>

#include <cstdint>
#include <cstdlib>
#include <exception>
#include <string>

namespace mst::bench {

// What every CPU bench takes: the model, the thread count and the prompt's length (whose
// default is each bench's own).
struct CommonOptions {
    explicit CommonOptions(int default_prompt) : prompt(default_prompt) {}
    std::string model;
    int threads = 2;
    int prompt;
};

class ArgReader {
public:
    ArgReader(const char *program, const char *usage, int argc, char **argv)
        : program_(program), usage_(usage), argc_(argc), argv_(argv) {}

    // Moves to the next option; false when there is none left.
    bool next() {
        if (++i_ >= argc_) return false;
        option_ = argv_[i_];
        return true;
    }
    const std::string &option() const { return option_; }

    // The current option's value: the next argument.
    std::string value() {
        if (i_ + 1 >= argc_) fail(fmt::format("{} needs a value", option_));
        return argv_[++i_];
    }

    // The current option's value as a whole number in lo..hi.
    int64_t count(int64_t lo, int64_t hi) {
        const std::string v = value();
        char *end = nullptr;
        const long long n = std::strtoll(v.c_str(), &end, 10);
        if (v.empty() || *end != '\0' || n < lo || n > hi)
            fail(fmt::format("{} must be an integer in {}..{}, got '{}'", option_, lo, hi, v));
        return int64_t(n);
    }

    // Reads the current option into `o` when it is one of CommonOptions' (-m/--model,
    // --threads, --prompt); false when it is not.
    bool common(CommonOptions &o) {
        if (option_ == "-m" || option_ == "--model") o.model = value();
        else if (option_ == "--threads") o.threads = int(count(1, 1024));
        else if (option_ == "--prompt") o.prompt = int(count(1, 100000));
        else return false;
        return true;
    }

    [[noreturn]] void unknown() const { fail(fmt::format("unknown option '{}'\nusage: {}", option_, usage_)); }

    [[noreturn]] void fail(const std::string &message) const {
        fmt::print(stderr, "{}: {}\n", program_, message);
        std::exit(2);
    }

private:
    const char *program_;
    const char *usage_;
    int argc_;
    char **argv_;
    int i_ = 0;
    std::string option_;
};

// Reads the command line into `o`: CommonOptions' options, and the bench's own through
// own(args), which reads the current option and returns false for one it does not know (an
// error, with `usage`). `-m MODEL` is required, named `model_arg` in the error.
template <typename Own>
void parse_options(CommonOptions &o, const char *program, const char *usage, const char *model_arg, int argc,
                   char **argv, Own &&own) {
    ArgReader args(program, usage, argc, argv);
    while (args.next())
        if (!args.common(o) && !own(args)) args.unknown();
    if (o.model.empty()) args.fail(fmt::format("-m {} is required", model_arg));
}

// run(): the bench's exit status; an exception it throws is printed as "PROGRAM: what".
template <typename Run>
int run_reporting_errors(const char *program, Run &&run) {
    try {
        return run();
    } catch (const std::exception &e) {
        fmt::print(stderr, "{}: {}\n", program, e.what());
        return 1;
    }
}

}  // namespace mst::bench
