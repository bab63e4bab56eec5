// `moestream synth`: a packed model with the real shapes of a config.json and random
// weights, with a progress line (bytes, rate, ETA) when stderr is a terminal and the
// write rate at the end. Ctrl-C, SIGTERM and SIGHUP cancel cleanly, as for convert.

#include <cstdio>
#include <string>
#include <string_view>

#include <fmt/format.h>

#include "cli_args.h"
#include "commands.h"
#include "human.h"
#include "moestream.h"
#include "progress_line.h"
#include "thread_count.h"

namespace mst::cli {
namespace {

const char *const kSynthHelp =
    "usage: moestream synth --config FILE [options] OUT.mst\n"
    "Write a packed model with the shapes of a Hugging Face config.json and random weights (any\n"
    "architecture the loader supports), to measure streaming on models you do not have. The\n"
    "weights are scaled so that activations stay finite; the generated text is noise.\n"
    "  --config FILE             the model's config.json (required)\n"
    "  --layers N                keep the first N layers (default: all); per-layer lists such as\n"
    "                            layer_types and mlp_only_layers are cut to match, and the file's\n"
    "                            config says num_hidden_layers N (and the source's depth)\n"
    "  --experts q4|q8|bf16      routed experts' matrices (default q4); experts whose published\n"
    "                            form is MXFP4 (gpt-oss) stay MXFP4, as convert keeps them\n"
    "  --dense q8|bf16           attention, embeddings, shared experts, dense MLPs (default bf16);\n"
    "                            routers and norms stay bf16. An FP8 config's weights are written in\n"
    "                            the types asked for; a note at the end says where that differs from\n"
    "                            what convert makes of the FP8 checkpoint (which keeps FP8 for bf16)\n"
    "  --routing-from TRACE      scale each layer's router rows so that the experts are chosen with the\n"
    "                            popularity (usage entropy) of a trained model's layers, taken from a\n"
    "                            routing trace (`bench_routing record`, or the trace file bench\n"
    "                            writes); its layers are spread over this model's, another expert\n"
    "                            count takes its sorted popularity curve. The scales are found by\n"
    "                            running drafts of the model (8 rounds: about 8x the time to write\n"
    "                            it). A router that selects by score + e_score_correction_bias\n"
    "                            (DeepSeek-V3) gets that bias calibrated instead of its rows. Gated\n"
    "                            DeltaNet layers (Qwen3.5) get a slow state decay (A_log -4), so\n"
    "                            experts come back at a trained model's distances; otherwise reuse\n"
    "                            between tokens follows popularity only unless --routing-reuse\n"
    "  --routing-reuse           with --routing-from: also shape reuse between tokens. Full attention\n"
    "                            (Qwen3-MoE, DeepSeek-V3, Qwen3.5-MoE) gets recency heads: every\n"
    "                            embedding gains a constant direction, some heads' q / k read it into\n"
    "                            slow RoPE pairs so they attend to the last ~15 tokens (Qwen3.5's Gated\n"
    "                            DeltaNet: one key head's q / k read only it, a moving average of v),\n"
    "                            and their output gain per layer is calibrated in the same\n"
    "                            draft rounds against the trace's next-token reuse over the first\n"
    "                            tokens it covers (weights only: any engine runs the file alike). Give\n"
    "                            --tokenizer-from too, so both sides count the same tokens, and\n"
    "                            --routing-text the text the trace was recorded on\n"
    "  --routing-text FILE       with --routing-from: calibrate on this text's first 1024 tokens (default:\n"
    "                            letters with English frequencies); use text like the one you will run\n"
    "  --tokenizer-from PATH     copy a trained model's tokenizer.json (or the one in checkpoint\n"
    "                            directory PATH, with its tokenizer_config.json) instead of the\n"
    "                            byte-level one; vocab_size is raised to hold its ids if smaller.\n"
    "                            With --routing-from give the traced model's own: the calibration\n"
    "                            and traces of this model then count the trained model's tokens\n"
    "  --seed S                  random seed (default 0); the same seed gives the same file\n"
    "  --force                   replace OUT.mst if it exists\n"
    "  --threads N               generation threads (default: all cores)\n";

}  // namespace

int cmd_synth(const std::vector<std::string> &argv) {
    const Args args(argv, {"force", "routing-reuse", "help"}, {{"-h", "--help"}});
    if (args.flag("help")) {
        fmt::print("{}", kSynthHelp);
        return 0;
    }
    args.reject_unknown({"config", "layers", "experts", "dense", "seed", "force", "threads", "routing-from", "routing-text", "tokenizer-from", "routing-reuse", "help"});
    if (args.positional().size() != 1) throw UsageError("expected one OUT.mst (see moestream synth --help)");
    const std::string config = args.require("config");
    const std::string experts = args.get_or("experts", "q4"), dense = args.get_or("dense", "bf16");
    const int64_t layers = args.int_in("layers", 0, 0, INT32_MAX), seed = args.int_in("seed", 0, 0, INT64_MAX);
    mst_synthesize_params params;
    mst_synthesize_default_params(&params);
    params.layers = int32_t(layers);
    params.experts = experts.c_str();
    params.dense = dense.c_str();
    params.seed = uint64_t(seed);
    params.force = args.flag("force") ? 1 : 0;
    const std::string routing_from = args.get_or("routing-from", "");
    if (!routing_from.empty()) params.routing_from = routing_from.c_str();
    const std::string routing_text = args.get_or("routing-text", "");
    if (!routing_text.empty()) params.routing_text = routing_text.c_str();
    const std::string tokenizer_from = args.get_or("tokenizer-from", "");
    if (!tokenizer_from.empty()) params.tokenizer_from = tokenizer_from.c_str();
    params.routing_reuse = args.flag("routing-reuse") ? 1 : 0;
    params.n_threads = thread_count_from(args);

    const std::string &out = args.positional()[0];
    mst_synthesize_report report{};
    report.struct_size = sizeof report;
    const mst_status status =
        write_with_progress(params, [&] { return mst_synthesize(config.c_str(), out.c_str(), &params, &report); });
    if (status != MST_OK) return write_failed("synth", status);
    print_synth_report(out, report);
    return 0;
}

void print_synth_report(const std::string &path, const mst_synthesize_report &report) {
    fmt::print(stderr, "wrote {} ({}) in {}: {} of {} layers, random weights\n", path, bytes_str(report.file_bytes),
               duration_str(report.seconds), report.layers, report.source_layers);
    fmt::print(stderr, "  resident: {} tensors, {} ({} as q8)\n", report.resident_tensors,
               bytes_str(report.resident_bytes), report.quantized_tensors);
    fmt::print(stderr, "  experts:  {} blobs, {}\n", report.expert_blobs, bytes_str(report.expert_bytes));
    fmt::print(stderr, "  rate:     {}/s written (including the final fsync)\n",
               bytes_str(report.seconds > 0 ? uint64_t(double(report.file_bytes) / report.seconds) : 0));
    print_notes(report.notes);
}

void print_notes(const char *notes) {
    if (notes == nullptr) return;
    std::string_view rest = notes;
    while (!rest.empty()) {
        const size_t end = rest.find('\n');
        const std::string_view line = rest.substr(0, end);
        if (!line.empty()) fmt::print(stderr, "  note:     {}\n", line);
        rest = end == std::string_view::npos ? std::string_view() : rest.substr(end + 1);
    }
}

}  // namespace mst::cli
