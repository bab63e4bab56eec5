// `moestream convert`: a Hugging Face checkpoint directory or a GGUF file to a packed file
// (.mst), with a progress line (bytes, rate, ETA) when stderr is a terminal; or a packed
// file to a GGUF file (OUT ending in .gguf) that llama.cpp loads (convert/gguf_export.h).
// Ctrl-C, SIGTERM and
// SIGHUP cancel cleanly: the temporary file is removed and nothing appears under the
// output name.

#include <cstdio>
#include <string>

#include <fmt/format.h>

#include "cli_args.h"
#include "convert/gguf_export.h"
#include "core/error.h"
#include "commands.h"
#include "human.h"
#include "moestream.h"
#include "progress_line.h"
#include "thread_count.h"

namespace mst::cli {
namespace {

const char *const kConvertHelp =
    "usage: moestream convert SRC OUT.mst [options]\n"
    "       moestream convert MODEL.mst OUT.gguf [--force]\n"
    "Convert the Hugging Face checkpoint directory or GGUF file SRC (a split GGUF: its first\n"
    "shard) into one packed file for streaming. A GGUF's config, tokenizer and chat template\n"
    "come from its metadata; --experts bf16 keeps its expert types as stored.\n"
    "Or write a packed file as a GGUF file for llama.cpp (qwen3_moe, every layer MoE; deepseek_v3\n"
    "as deepseek2, kv_b_proj kept whole; qwen3_5_moe_text as qwen35moe, with its converter's\n"
    "changes: -exp(A_log), 1 + w norms, conv1d F32, value heads tiled): each\n"
    "tensor keeps its type (q4 is ggml's Q4_1 byte for byte, q8 is Q8_0, q2k..q6k experts are\n"
    "Q2_K..Q6_K when their rows are whole 256-weight super-blocks), norms become F32, a\n"
    "layer's experts are stacked, the tokenizer goes under tokenizer.ggml.*.\n"
    "  --experts TYPE            routed experts' matrices: q4 (default, 5.0 bits/weight), q8 (8.5),\n"
    "                            GGML's K-quants q6k (6.5625), q5k (5.5), q4k (4.5), q3k (3.4375),\n"
    "                            q2k (2.625; K-quant rows are padded to whole 256-weight\n"
    "                            super-blocks), or bf16 = kept as stored. FP8 (block-scaled E4M3) experts are\n"
    "                            requantized from their dequantized values by the quantized types,\n"
    "                            and so are a GGUF's block-quantized experts (Q8_0, Q4_K, ...)\n"
    "  --dense q8|bf16           attention, embeddings, shared experts, dense MLPs: bf16 = kept as\n"
    "                            stored (default; FP8 stays FP8), or q8 (FP8 requantized too).\n"
    "                            Routers and norms are never quantized. What an option cannot\n"
    "                            change is printed as a note at the end\n"
    "  --zstd LEVEL              compress each expert blob with zstd at LEVEL (1..19; default off)\n"
    "  --force                   replace OUT if it exists\n"
    "  --threads N               quantization threads (default: all cores)\n";

bool ends_with(const std::string &s, const std::string &suffix) {
    return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

int convert_to_gguf(const Args &args) {
    for (const char *name : {"experts", "dense", "zstd", "threads"})
        if (args.get(name))
            throw UsageError(fmt::format("--{} applies to OUT.mst; OUT.gguf keeps the types of MODEL.mst", name));
    const std::string &src = args.positional()[0], &out = args.positional()[1];
    try {
        const GgufExportReport r = export_gguf(src, out, args.flag("force"));
        fmt::print(stderr, "wrote {} ({}) in {}\n", out, bytes_str(r.file_bytes), duration_str(r.seconds));
        fmt::print(stderr, "  resident: {} tensors; experts: {} stacked tensors, {}\n", r.resident_tensors,
                   r.expert_tensors, bytes_str(r.expert_bytes));
        return 0;
    } catch (const Error &e) {
        fmt::print(stderr, "moestream convert: {}: {}\n", mst_status_string(e.code()), e.what());
        return 1;
    }
}

}  // namespace

int cmd_convert(const std::vector<std::string> &argv) {
    const Args args(argv, {"force", "help"}, {{"-h", "--help"}});
    if (args.flag("help")) {
        fmt::print("{}", kConvertHelp);
        return 0;
    }
    args.reject_unknown({"experts", "dense", "zstd", "force", "threads", "help"});
    if (args.positional().size() != 2) throw UsageError("expected SRC and OUT.mst (see moestream convert --help)");
    if (ends_with(args.positional()[1], ".gguf")) return convert_to_gguf(args);
    const std::string experts = args.get_or("experts", "q4"), dense = args.get_or("dense", "bf16");
    mst_convert_params params;
    mst_convert_default_params(&params);
    params.experts = experts.c_str();
    params.dense = dense.c_str();
    params.zstd_level = int32_t(args.int_in("zstd", 0, 0, 19));
    params.force = args.flag("force") ? 1 : 0;
    params.n_threads = thread_count_from(args);
    mst_convert_report report{};
    report.struct_size = sizeof report;
    const mst_status status = write_with_progress(params, [&] {
        return mst_convert(args.positional()[0].c_str(), args.positional()[1].c_str(), &params, &report);
    });
    if (status != MST_OK) return write_failed("convert", status);
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
