// `moestream convert`: a Hugging Face checkpoint directory or a GGUF file to a packed file (.mst),
// with a progress line (bytes, rate, ETA) when stderr is a terminal. Ctrl-C, SIGTERM and
// SIGHUP cancel cleanly: the temporary file is removed and nothing appears under the
// output name.
#include <unistd.h>

#include <cstdio>
#include <string>

#include <fmt/format.h>

#include "cli_args.h"
#include "commands.h"
#include "human.h"
#include "moestream.h"
#include "progress_line.h"
#include "thread_count.h"

namespace mst::cli {
namespace {

const char *const kConvertHelp =
    "usage: moestream convert SRC OUT.mst [options]\n"
    "Convert the Hugging Face checkpoint directory or GGUF file SRC (a split GGUF: its first\n"
    "shard) into one packed file for streaming. A GGUF's config, tokenizer and chat template\n"
    "come from its metadata; --experts bf16 keeps its expert types (Q8_0 included) as stored.\n"
    "  --experts q4|q8|bf16      routed experts' matrices: q4 (default, 5.0 bits/weight), q8 (8.5),\n"
    "                            or bf16 = kept as stored. FP8 (block-scaled E4M3) experts are\n"
    "                            requantized from their dequantized values by q4 / q8\n"
    "  --dense q8|bf16           attention, embeddings, shared experts, dense MLPs: bf16 = kept as\n"
    "                            stored (default; FP8 stays FP8), or q8 (FP8 requantized too).\n"
    "                            Routers and norms are never quantized. What an option cannot\n"
    "                            change is printed as a note at the end\n"
    "  --zstd LEVEL              compress each expert blob with zstd at LEVEL (1..19; default off)\n"
    "  --force                   replace OUT.mst if it exists\n"
    "  --threads N               quantization threads (default: all cores)\n";

}  // namespace

int cmd_convert(const std::vector<std::string> &argv) {
    const Args args(argv, {"force", "help"}, {{"-h", "--help"}});
    if (args.flag("help")) {
        fmt::print("{}", kConvertHelp);
        return 0;
    }
    args.reject_unknown({"experts", "dense", "zstd", "force", "threads", "help"});
    if (args.positional().size() != 2) throw UsageError("expected SRC and OUT.mst (see moestream convert --help)");
    const std::string experts = args.get_or("experts", "q4"), dense = args.get_or("dense", "bf16");
    mst_convert_params params;
    mst_convert_default_params(&params);
    params.experts = experts.c_str();
    params.dense = dense.c_str();
    params.zstd_level = int32_t(args.int_in("zstd", 0, 0, 19));
    params.force = args.flag("force") ? 1 : 0;
    params.n_threads = thread_count_from(args);
    ProgressLine line;
    line.tty = isatty(STDERR_FILENO) != 0;
    params.progress = progress_line_callback;
    params.progress_user_data = &line;

    mst_convert_report report{};
    report.struct_size = sizeof report;
    mst_status status;
    {
        const InterruptGuard interrupt;
        status = mst_convert(args.positional()[0].c_str(), args.positional()[1].c_str(), &params, &report);
    }
    if (status != MST_OK) {
        if (line.tty) fmt::print(stderr, "\n");
        fmt::print(stderr, "moestream convert: {}: {}\n", mst_status_string(status), mst_last_error());
        return status == MST_ERR_CANCELLED ? 130 : 1;
    }
    fmt::print(stderr, "wrote {} ({}) in {}\n", args.positional()[1], bytes_str(report.file_bytes),
               duration_str(report.seconds));
    fmt::print(stderr, "  resident: {} tensors, {} ({} quantized to q8{})\n", report.resident_tensors,
               bytes_str(report.resident_bytes), report.quantized_tensors,
               report.requantized_fp8_tensors ? fmt::format(", {} of them from FP8", report.requantized_fp8_tensors)
                                              : std::string());
    fmt::print(stderr, "  experts:  {} blobs, {} decoded, {} on disk ({} compressed)\n", report.expert_blobs,
               bytes_str(report.expert_raw_bytes), bytes_str(report.expert_stored_bytes), report.compressed_blobs);
    if (report.dropped_tensors)
        fmt::print(stderr, "  left out: {} tensors the architecture never reads\n", report.dropped_tensors);
    fmt::print(stderr, "  rate:     {}/s of source\n",
               bytes_str(report.seconds > 0 ? uint64_t(double(report.source_bytes) / report.seconds) : 0));
    print_notes(report.notes);
    return 0;
}

}  // namespace mst::cli
