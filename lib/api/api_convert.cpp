// mst_convert: a checkpoint directory to a packed file; mst_synthesize: a config.json to a
// packed file of random weights.
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "api/guard.h"
#include "core/compute_threads.h"
#include "convert/converter.h"
#include "convert/synthesize.h"

using namespace mst;
using namespace mst::api;

namespace {

mst_convert_params default_convert_params() {
    mst_convert_params p{};
    p.struct_size = sizeof(mst_convert_params);
    p.experts = "q4";
    p.dense = "bf16";
    p.zstd_level = 0;
    p.force = 0;
    p.n_threads = 0;
    p.progress = nullptr;
    p.progress_user_data = nullptr;
    return p;
}

// "q8" | "q4" (where allowed) | "bf16" (nullopt: kept as stored).
std::optional<DType> parse_type(const char *name, const char *what, bool allow_q4) {
    const std::string_view n = name ? name : "";
    if (n == "bf16") return std::nullopt;
    if (n == "q8") return DType::Q8;
    if (n == "q4" && allow_q4) return DType::Q4;
    fail(MST_ERR_INVALID_ARGUMENT, "{} type '{}' is not one of {}", what, n, allow_q4 ? "q4, q8, bf16" : "q8, bf16");
}

mst_synthesize_params default_synthesize_params() {
    mst_synthesize_params p{};
    p.struct_size = sizeof(mst_synthesize_params);
    p.layers = 0;
    p.experts = "q4";
    p.dense = "bf16";
    p.seed = 0;
    p.force = 0;
    p.n_threads = 0;
    p.progress = nullptr;
    p.progress_user_data = nullptr;
    p.routing_from = nullptr;
    p.routing_text = nullptr;
    p.tokenizer_from = nullptr;
    p.routing_reuse = 0;
    return p;
}

// The notes of this thread's last conversion or synthesis (the reports point here).
thread_local std::string t_notes;

const char *keep_notes(const std::vector<std::string> &notes) {
    t_notes.clear();
    for (const std::string &n : notes) t_notes += n + "\n";
    return t_notes.c_str();
}

ConvertProgressFn progress_fn(mst_convert_progress_callback callback, void *user_data) {
    if (!callback) return {};
    return [callback, user_data](const ConvertProgress &pr) {
        return callback(pr.done_bytes, pr.total_bytes, user_data) == 0;
    };
}

// The caller's report as far as its struct_size reaches (checked as read_params checks
// it) over a zeroed one of this version, so that a bad report fails before any work.
template <typename Report>
Report report_in(const Report *report, const char *name) {
    Report out{};
    out.struct_size = sizeof(Report);
    return report ? read_params(report, out, name) : out;
}

// What conversion and synthesis report alike (r: ConvertReport or SynthReport), and the
// report written back as far as the caller's struct_size reaches.
template <typename Report, typename Result>
void report_out(Report *report, Report out, const Result &r) {
    out.file_bytes = r.file_bytes;
    out.resident_bytes = r.resident_bytes;
    out.resident_tensors = r.resident_tensors;
    out.quantized_tensors = r.quantized_tensors;
    out.expert_blobs = r.experts;
    out.seconds = r.seconds;
    out.notes = keep_notes(r.notes);
    std::memcpy(report, &out, report->struct_size);
}

}  // namespace

extern "C" {

void mst_convert_default_params(mst_convert_params *params) {
    if (params) *params = default_convert_params();
}

mst_status mst_convert(const char *src, const char *dst, const mst_convert_params *params, mst_convert_report *report) {
    return guard([&] {
        require_arg(src, "src");
        require_arg(dst, "dst");
        const mst_convert_params p = read_params(params, default_convert_params(), "mst_convert_params");
        mst_convert_report out = report_in(report, "mst_convert_report");
        ConvertOptions options;
        options.experts = parse_expert_type_name(p.experts ? p.experts : "", "experts");
        options.dense = parse_type(p.dense, "dense", false);
        options.zstd_level = p.zstd_level;
        options.force = p.force != 0;
        options.n_threads = resolve_compute_threads(p.n_threads, "n_threads");
        const ConvertReport r = convert_checkpoint(src, dst, options, progress_fn(p.progress, p.progress_user_data));
        if (!report) return;
        out.source_bytes = r.source_bytes;
        out.dropped_tensors = r.dropped_tensors;
        out.expert_raw_bytes = r.expert_raw_bytes;
        out.expert_stored_bytes = r.expert_stored_bytes;
        out.compressed_blobs = r.compressed_experts;
        out.requantized_fp8_tensors = r.requantized_fp8_tensors;
        report_out(report, out, r);
    });
}

void mst_synthesize_default_params(mst_synthesize_params *params) {
    if (params) *params = default_synthesize_params();
}

mst_status mst_synthesize(const char *config_path, const char *dst, const mst_synthesize_params *params,
                          mst_synthesize_report *report) {
    return guard([&] {
        require_arg(config_path, "config_path");
        require_arg(dst, "dst");
        const mst_synthesize_params p = read_params(params, default_synthesize_params(), "mst_synthesize_params");
        mst_synthesize_report out = report_in(report, "mst_synthesize_report");
        SynthOptions options;
        options.layers = p.layers;
        options.experts = parse_type(p.experts, "experts", true);
        options.dense = parse_type(p.dense, "dense", false);
        options.seed = p.seed;
        options.force = p.force != 0;
        options.n_threads = resolve_compute_threads(p.n_threads, "n_threads");
        if (p.routing_from) options.routing_from = p.routing_from;
        if (p.routing_text) options.routing_text = p.routing_text;
        if (p.tokenizer_from) options.tokenizer_from = p.tokenizer_from;
        options.routing_reuse = p.routing_reuse != 0;
        const SynthReport r = synthesize_model(config_path, dst, options, progress_fn(p.progress, p.progress_user_data));
        if (!report) return;
        out.expert_bytes = r.expert_bytes;
        out.layers = int32_t(r.layers);
        out.source_layers = int32_t(r.source_layers);
        report_out(report, out, r);
    });
}

}  // extern "C"
