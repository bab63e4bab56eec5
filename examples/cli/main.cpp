// moestream: the command-line tool.
#include <cstdio>
#include <cstdlib>
#include <unistd.h>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "cli_args.h"
#include "commands.h"
#include "moestream.hpp"

namespace {

constexpr char kUsage[] =
    "moestream {} - run Mixture-of-Experts models with experts streamed from disk\n"
    "usage: moestream COMMAND [options]   (moestream COMMAND --help for its options)\n"
    "commands:\n"
    "  run       generate text from a prompt\n"
    "  chat      a conversation through the model's chat template, the context kept between turns\n"
    "  serve     an OpenAI-compatible HTTP server (chat, completions, tool calls, streaming)\n"
    "  info      print a model's architecture, sizes and per-token expert bytes; the Vulkan devices\n"
    "  convert   write a checkpoint directory as one packed file (.mst) for streaming\n"
    "  eval      perplexity, KL divergence and speed of expert budgets on a text\n"
    "  bench     speed against the device's limits: TTFT, tok/s, stalls, roofline\n"
    "  synth     write a model with a config.json's real shapes and random weights\n"
    "  demo      synthesize a Qwen3-30B-A3B-shaped model (once) and stream it under a small cache\n"
    "  version   print the library version\n";

}  // namespace

int main(int argc, char **argv) {
    // OpenMP's default spin-waiting after each parallel region takes the cores the
    // expert-read threads need (5-15x slower decode on 2 cores). libgomp reads
    // OMP_WAIT_POLICY once, when it is loaded, before main runs, so setting it here is
    // not enough: set it and start this program again, only when the user has not
    // chosen. Should the exec fail, run on as we are.
    if (!std::getenv("OMP_WAIT_POLICY")) {
        setenv("OMP_WAIT_POLICY", "passive", 1);
        execv("/proc/self/exe", argv);
    }
    if (argc < 2) {
        fmt::print(stderr, kUsage, mst_version_string());
        return 2;
    }
    const std::string command = argv[1];
    const std::vector<std::string> rest(argv + 2, argv + argc);
    try {
        if (command == "run") return mst::cli::cmd_run(rest);
        if (command == "chat") return mst::cli::cmd_chat(rest);
        if (command == "serve") {
#ifdef MST_HAVE_HTTPLIB
            return mst::cli::cmd_serve(rest);
#else
            fmt::print(stderr, "moestream serve: this build has no HTTP server: cpp-httplib was not found when it was "
                               "configured (Debian: libcpp-httplib-dev)\n");
            return 1;
#endif
        }
        if (command == "info") return mst::cli::cmd_info(rest);
        if (command == "convert") return mst::cli::cmd_convert(rest);
        if (command == "eval") return mst::cli::cmd_eval(rest);
        if (command == "bench") return mst::cli::cmd_bench(rest);
        if (command == "synth") return mst::cli::cmd_synth(rest);
        if (command == "demo") return mst::cli::cmd_demo(rest);
        if (command == "version" || command == "--version") {
            fmt::print("moestream {}\n", mst_version_string());
            return 0;
        }
        if (command == "help" || command == "--help" || command == "-h") {
            fmt::print(kUsage, mst_version_string());
            return 0;
        }
        fmt::print(stderr, "moestream: unknown command '{}'\n", command);
        fmt::print(stderr, kUsage, mst_version_string());
        return 2;
    } catch (const mst::cli::UsageError &e) {
        fmt::print(stderr, "moestream {}: {}\n", command, e.what());
        return 2;
    } catch (const mst::Exception &e) {
        fmt::print(stderr, "moestream {}: {}\n", command, e.what());
        return 1;
    }
}
