#include "convert/converter.h"

#include <omp.h>

#include <algorithm>
#include <chrono>
#include <exception>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "convert/convert_plan.h"
#include "convert/fp8_requantize.h"
#include "convert/output_room.h"
#include "convert/tensor_packing.h"
#include "core/error.h"
#include "core/file_io.h"
#include "core/log.h"
#include "format/gguf_file.h"
#include "format/packed_writer.h"
#include "model/gguf_model_files.h"
#include "model/model_files.h"
#include "moestream.h"

namespace mst {
namespace {

namespace fs = std::filesystem;

// Source bytes of experts converted in parallel before their blobs are written.
constexpr uint64_t kGroupBytes = uint64_t(256) << 20;
constexpr size_t kMaxConfigFileBytes = size_t(64) << 20;
constexpr size_t kMaxTokenizerFileBytes = size_t(1) << 30;

void check_options(const ConvertOptions &o) {
    if (o.experts && !dtype_is_quantized(*o.experts))
        fail(MST_ERR_INVALID_ARGUMENT, "experts type {} is not Q8, Q4 or a K-quant (Q2_K..Q6_K)", dtype_name(*o.experts));
    if (o.dense && *o.dense != DType::Q8)
        fail(MST_ERR_INVALID_ARGUMENT, "dense type {} is not Q8", dtype_name(*o.dense));
    if (o.zstd_level < 0 || o.zstd_level > 19)
        fail(MST_ERR_INVALID_ARGUMENT, "zstd level {} is outside 0..19 (0 = no compression)", o.zstd_level);
    if (o.n_threads < 0) fail(MST_ERR_INVALID_ARGUMENT, "n_threads must not be negative, got {}", o.n_threads);
}

std::string type_name(const std::optional<DType> &t) { return t ? convert_type_name(t) : "bf16 (as stored)"; }

// config.json, the tokenizer files and generation_config.json, verbatim (for a GGUF
// file: made from its metadata, the chat template inside tokenizer_config.json), and how
// the file was made.
std::map<std::string, std::string> source_metadata(const std::string &source, const Checkpoint &checkpoint,
                                                   const ConvertOptions &o) {
    std::map<std::string, std::string> metadata;
    const auto add = [&](const char *name, size_t limit, bool required) {
        const fs::path path = fs::path(source) / name;
        std::error_code ec;
        if (!required && !fs::exists(path, ec)) return;
        metadata[name] = read_text_file(path.string(), limit);
    };
    if (const GgufFile *gguf = checkpoint.gguf()) {
        metadata[packed::kConfigKey] = gguf_config_json(*gguf);
        const GgufTokenizerJson tokenizer = gguf_tokenizer_json(*gguf);
        metadata[packed::kTokenizerKey] = tokenizer.tokenizer;
        metadata[packed::kTokenizerConfigKey] = tokenizer.config;
    } else {
        add(packed::kConfigKey, kMaxConfigFileBytes, true);
        add(packed::kTokenizerKey, kMaxTokenizerFileBytes, true);
        add(packed::kTokenizerConfigKey, kMaxConfigFileBytes, false);
        add("generation_config.json", kMaxConfigFileBytes, false);
    }
    nlohmann::json info = {{"writer", std::string("moestream ") + mst_version_string()},
                           {"source", fs::path(source).filename().string()},
                           {"experts", type_name(o.experts)},
                           {"dense", type_name(o.dense)},
                           {"zstd_level", o.zstd_level}};
    metadata[packed::kConversionKey] = info.dump(2);
    return metadata;
}

// A regular file that starts with GGUF's magic (a split model's first shard included).
bool is_gguf_file(const std::string &path) {
    std::error_code ec;
    if (!fs::is_regular_file(path, ec)) return false;
    std::ifstream f(path, std::ios::binary);
    uint8_t magic[4] = {};
    f.read(reinterpret_cast<char *>(magic), sizeof magic);
    return f.gcount() == 4 && has_gguf_magic(magic);
}

class Progress {
public:
    Progress(const ConvertProgressFn &fn, uint64_t total) : fn_(fn), total_(total) {}
    void add(uint64_t bytes) {
        done_ += bytes;
        if (fn_ && !fn_(ConvertProgress{done_, total_, seconds()}))
            fail(MST_ERR_CANCELLED, "conversion cancelled after {} of {} bytes", done_, total_);
    }
    double seconds() const { return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count(); }

private:
    const ConvertProgressFn &fn_;
    uint64_t total_, done_ = 0;
    std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
};

}  // namespace

ConvertReport convert_checkpoint(const std::string &source, const std::string &destination,
                                 const ConvertOptions &options, const ConvertProgressFn &progress_fn) {
    check_options(options);
    std::error_code ec;
    if (!fs::is_directory(source, ec) && !is_gguf_file(source))
        fail(MST_ERR_INVALID_ARGUMENT, "convert: source '{}' is neither a checkpoint directory nor a GGUF file", source);
    if (fs::exists(destination, ec)) {
        if (!options.force) fail(MST_ERR_IO, "'{}' exists; pass --force (mst_convert_params.force) to replace it", destination);
        if (fs::is_directory(destination, ec)) fail(MST_ERR_IO, "'{}' is a directory", destination);
    }

    std::unique_ptr<Checkpoint> checkpoint = Checkpoint::open(source);
    const ModelConfig config = read_model_config(*checkpoint);
    read_model_tokenizer(*checkpoint);  // a tokenizer that cannot load fails now, not at every load
    const std::map<std::string, std::string> metadata = source_metadata(source, *checkpoint, options);
    const ConvertPlan plan = plan_conversion(*checkpoint, config, options);

    uint64_t metadata_bytes = 0;
    for (const auto &[key, value] : metadata) metadata_bytes += key.size() + value.size() + 12;
    const uint64_t needed = plan.max_output_bytes + metadata_bytes + packed::kAlignment;
    ensure_room_for(destination, needed);

    ConvertReport report;
    report.source_bytes = plan.source_bytes;
    for (const TensorInfo &t : plan.dropped) {
        ++report.dropped_tensors;
        report.dropped_bytes += t.nbytes;
    }
    if (!plan.dropped.empty())
        log(MST_LOG_INFO, "convert: leaving out {} tensors ({} bytes) the architecture never reads, e.g. '{}'",
            plan.dropped.size(), report.dropped_bytes, plan.dropped.front().name);

    report.notes = plan.notes;
    for (const std::string &note : plan.notes) log(MST_LOG_INFO, "convert: {}", note);
    Progress progress(progress_fn, plan.source_bytes);
    PackedWriter writer(destination);
    writer.write_metadata(metadata);

    writer.begin_resident();
    std::vector<TensorInfo> tensors;
    for (const ResidentPlan &r : plan.resident) {
        std::vector<uint8_t> bytes(size_t(r.source.nbytes));
        checkpoint->read(r.source, bytes.data());
        if (r.fp8_scale) {
            std::vector<uint8_t> scales(size_t(r.fp8_scale->nbytes));
            checkpoint->read(*r.fp8_scale, scales.data());
            bytes = requantize_block_fp8(bytes, scales, r.fp8_scale->dtype, r.source.shape[0], r.source.shape[1],
                                         plan.fp8_block, r.dtype, "tensor '" + r.source.name + "'");
            ++report.quantized_tensors;
            ++report.requantized_fp8_tensors;
        } else if (r.dtype != r.source.dtype) {
            bytes = convert_tensor(bytes, r.source.dtype, r.dtype, r.source.shape[0], r.source.shape[1],
                                   "tensor '" + r.source.name + "'");
            ++report.quantized_tensors;
        }
        TensorInfo t = r.source;
        t.dtype = r.dtype;
        t.nbytes = bytes.size();
        t.file_index = 0;
        t.offset = writer.add_resident(bytes.data(), bytes.size());
        tensors.push_back(std::move(t));
        progress.add(r.source.nbytes + (r.fp8_scale ? r.fp8_scale->nbytes : 0));
    }
    writer.end_resident();
    report.resident_tensors = tensors.size();

    const int threads = options.n_threads > 0 ? options.n_threads : omp_get_max_threads();
    std::vector<std::vector<ExpertLayout>> experts = plan.packed_experts;
    writer.begin_experts();
    for (size_t l = 0; l < experts.size(); ++l) {
        const int n = int(experts[l].size());
        for (int first = 0; first < n;) {
            // A group of experts small enough to hold, large enough to keep every thread busy.
            int last = first;
            uint64_t group_bytes = 0;
            while (last < n && (last == first || group_bytes < kGroupBytes)) {
                group_bytes += plan.source_experts[l][size_t(last)].nbytes();
                ++last;
            }
            std::vector<PackedBlobBytes> blobs(size_t(last - first));
            std::exception_ptr error;
#pragma omp parallel for num_threads(threads) schedule(dynamic)
            for (int e = first; e < last; ++e) {
                try {
                    blobs[size_t(e - first)] = pack_expert(*checkpoint, plan.source_experts[l][size_t(e)],
                                                           experts[l][size_t(e)], plan.fp8_block, options.zstd_level,
                                                           int(l), e);
                } catch (...) {
#pragma omp critical(mst_convert_error)
                    if (!error) error = std::current_exception();
                }
            }
            if (error) std::rethrow_exception(error);
            for (int e = first; e < last; ++e) {
                const PackedBlobBytes &b = blobs[size_t(e - first)];
                experts[l][size_t(e)].blob =
                    writer.add_blob(b.stored.data(), b.stored.size(), b.raw_bytes, b.codec, b.xxh64);
                ++report.experts;
                report.expert_raw_bytes += b.raw_bytes;
                report.expert_stored_bytes += b.stored.size();
                if (b.codec == BlobCodec::Zstd) ++report.compressed_experts;
            }
            progress.add(group_bytes);
            first = last;
        }
    }
    writer.end_experts();
    for (const TensorInfo &t : tensors) report.resident_bytes += t.nbytes;
    writer.finish(tensors, experts, options.force);
    report.file_bytes = writer.bytes_written();
    report.seconds = progress.seconds();
    return report;
}

}  // namespace mst
