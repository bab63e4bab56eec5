#include "convert/convert_plan.h"

#include <algorithm>
#include <map>
#include <set>

#include <fmt/format.h>

#include "core/error.h"
#include "format/packed_format.h"
#include "model/model_registry.h"
#include "storage/storage_tier.h"

namespace mst {
namespace {

uint64_t align_up(uint64_t n, uint64_t alignment) { return (n + alignment - 1) / alignment * alignment; }

struct Interval {
    uint64_t begin, end;
};

// The bytes of each source file that belong to some expert part, merged and sorted.
std::map<uint32_t, std::vector<Interval>> expert_bytes(const std::vector<std::vector<ExpertLayout>> &experts) {
    std::map<uint32_t, std::vector<Interval>> by_file;
    for (const auto &layer : experts)
        for (const ExpertLayout &e : layer)
            for (const ExpertMatrix &m : e.parts) by_file[m.file].push_back({m.offset, m.offset + m.nbytes()});
    for (auto &[file, intervals] : by_file) {
        std::sort(intervals.begin(), intervals.end(), [](const Interval &a, const Interval &b) { return a.begin < b.begin; });
        std::vector<Interval> merged;
        for (const Interval &i : intervals) {
            if (!merged.empty() && i.begin <= merged.back().end)
                merged.back().end = std::max(merged.back().end, i.end);
            else
                merged.push_back(i);
        }
        intervals = std::move(merged);
    }
    return by_file;
}

uint64_t covered_bytes(const std::vector<Interval> &intervals, uint64_t begin, uint64_t end) {
    uint64_t covered = 0;
    auto it = std::upper_bound(intervals.begin(), intervals.end(), begin,
                               [](uint64_t v, const Interval &i) { return v < i.begin; });
    if (it != intervals.begin()) --it;
    for (; it != intervals.end() && it->begin < end; ++it)
        if (it->end > begin) covered += std::min(end, it->end) - std::max(begin, it->begin);
    return covered;
}

// compressed-tensors' `<proj>.weight_shape` beside a `<proj>.weight_packed` that went into
// an expert's blob: the architecture reads it only to check the shape at load time, which
// the packed index records, so it is neither kept nor reported as dropped.
bool is_packed_expert_shape(const Checkpoint &source, const TensorInfo &t,
                            const std::map<uint32_t, std::vector<Interval>> &experts_by_file) {
    constexpr std::string_view kSuffix = ".weight_shape";
    if (!t.name.ends_with(kSuffix)) return false;
    const TensorInfo *packed = source.find(t.name.substr(0, t.name.size() - kSuffix.size()) + ".weight_packed");
    if (packed == nullptr || packed->nbytes == 0) return false;
    const auto it = experts_by_file.find(packed->file_index);
    return it != experts_by_file.end() &&
           covered_bytes(it->second, packed->offset, packed->offset + packed->nbytes) == packed->nbytes;
}

// What the options could not change, counted by the note that tells it.
using KeptCounts = std::map<std::string, uint64_t>;

// An FP8 weight's parts are the codes and, next, their block scales; requantized, the
// scales are folded into the Q8 / Q4 blocks and leave the layout.
ExpertLayout plan_expert(const ExpertLayout &source, const ConvertOptions &options, KeptCounts &kept) {
    ExpertLayout out;
    uint64_t pos = 0;
    const std::string asked = convert_type_name(options.experts);
    for (size_t i = 0; i < source.parts.size(); ++i) {
        const ExpertMatrix &m = source.parts[i];
        ExpertMatrix p = m;
        const bool fp8 = m.dtype == DType::F8_E4M3 && i + 1 < source.parts.size();
        // A block-quantized part (a GGUF's Q8_0, Q4_K, ...) is decoded and quantized again, so
        // that `--experts q2k` makes experts below 4 bits from any source.
        if (options.experts && m.quantizable &&
            (dtype_is_float_weight(m.dtype) || dtype_is_quantized(m.dtype) || fp8)) {
            p.dtype = *options.experts;
            if (fp8) ++i;
        } else if (options.experts) {
            ++kept[fmt::format("--experts {}: {{}} expert parts of dtype {} kept as stored ({})", asked,
                               dtype_name(m.dtype),
                               m.quantizable ? "only float, block-quantized and FP8 matrices are requantized"
                                             : "not plain row-major matrices: transposed, biases or block scales")];
        } else if (fp8) {
            ++kept["--experts bf16: {} FP8 expert matrices kept as stored, F8_E4M3 with their block scales"];
        }
        p.file = 0;
        p.offset = align_up(pos, packed::kTensorAlignment);
        pos = p.offset + p.nbytes();
        out.parts.push_back(p);
    }
    ExpertBlob blob;
    blob.raw_bytes = pos;
    blob.stored_bytes = pos;
    out.blob = blob;
    return out;
}

std::vector<std::string> notes_of(const KeptCounts &kept) {
    std::vector<std::string> notes;
    for (const auto &[format, count] : kept) notes.push_back(fmt::format(fmt::runtime(format), count));
    return notes;
}

}  // namespace

ConvertPlan plan_conversion(Checkpoint &source, const ModelConfig &config, const ConvertOptions &options) {
    ConvertPlan plan;
    std::set<std::string> looked_up;
    std::map<std::string, WeightUse> uses;
    source.set_lookup_observer([&](const TensorInfo &t) { looked_up.insert(t.name); });
    {
        const std::unique_ptr<Backend> backend = create_backend("cpu", 1);
        ExpertStoreFactory capture = [&](std::vector<std::vector<ExpertLayout>> layouts) {
            plan.source_experts = layouts;
            return std::make_unique<ExpertStore>(open_storage(source.files(), StorageOptions{}), std::move(layouts), 0,
                                                 "none");
        };
        WeightUseRecorder record = [&](const std::string &name, WeightUse use) {
            const auto [it, inserted] = uses.emplace(name, use);
            if (!inserted && use == WeightUse::KeepStored) it->second = WeightUse::KeepStored;
        };
        ModelBuildContext ctx{config, source, *backend, capture, record};
        const std::unique_ptr<Model> model = build_model(ctx);  // reads the resident weights once
    }
    source.set_lookup_observer({});

    const auto experts_by_file = expert_bytes(plan.source_experts);
    const auto is_expert = [&](const TensorInfo &t) {
        const auto it = experts_by_file.find(t.file_index);
        const uint64_t covered =
            it == experts_by_file.end() ? 0 : covered_bytes(it->second, t.offset, t.offset + t.nbytes);
        return covered == t.nbytes && t.nbytes > 0;  // an expert's: goes into its blob
    };
    const std::vector<TensorInfo> &all = source.tensors();
    if (std::any_of(all.begin(), all.end(), [](const TensorInfo &t) { return t.dtype == DType::F8_E4M3; }))
        plan.fp8_block = fp8_block_size(config);
    KeptCounts kept;
    // FP8 weights requantized to Q8: their scales are folded in and not written.
    std::set<std::string> folded_scales;
    for (const TensorInfo &t : all) {
        if (is_expert(t) || !looked_up.count(t.name)) continue;
        const auto use = uses.find(t.name);
        const bool matrix = use != uses.end() && use->second == WeightUse::Matrix && t.shape.size() == 2;
        const bool fp8 = t.dtype == DType::F8_E4M3;
        if (options.dense && matrix && fp8) folded_scales.insert(fp8_scale_name(t.name));
        if (options.dense && !matrix && use != uses.end() && (fp8 || dtype_is_float_weight(t.dtype)))
            ++kept["--dense q8: {} 2-D weights kept as stored: the architecture does not use them as plain matrices "
                   "(routers, gates, weights multiplied transposed)"];
        if (!options.dense && fp8)
            ++kept["--dense bf16: {} FP8 dense weights kept as stored, F8_E4M3 with their block scales"];
    }

    uint64_t output = packed::kAlignment;  // header
    for (const TensorInfo &t : all) {
        if (is_expert(t) || folded_scales.count(t.name)) continue;
        if (is_packed_expert_shape(source, t, experts_by_file)) continue;
        if (!looked_up.count(t.name)) {
            plan.dropped.push_back(t);
            continue;
        }
        ResidentPlan r{t, t.dtype, t.nbytes, std::nullopt};
        const auto use = uses.find(t.name);
        const bool matrix = use != uses.end() && use->second == WeightUse::Matrix && t.shape.size() == 2;
        if (options.dense && matrix && (dtype_is_float_weight(t.dtype) || t.dtype == DType::F8_E4M3)) {
            r.dtype = *options.dense;
            r.nbytes = uint64_t(t.shape[0]) * dtype_row_bytes(r.dtype, t.shape[1]);
            if (t.dtype == DType::F8_E4M3) {
                const TensorInfo *scale = source.find(fp8_scale_name(t.name));
                if (scale == nullptr)
                    fail(MST_ERR_BAD_FORMAT, "FP8 tensor '{}' has no block scales '{}' in checkpoint '{}'", t.name,
                         fp8_scale_name(t.name), source.dir());
                r.fp8_scale = *scale;
                plan.source_bytes += scale->nbytes;
            }
        }
        plan.source_bytes += t.nbytes;
        output += align_up(r.nbytes, packed::kTensorAlignment);
        plan.resident.push_back(std::move(r));
    }
    output = align_up(output, packed::kAlignment);

    plan.packed_experts.resize(plan.source_experts.size());
    for (size_t l = 0; l < plan.source_experts.size(); ++l)
        for (const ExpertLayout &e : plan.source_experts[l]) {
            plan.packed_experts[l].push_back(plan_expert(e, options, kept));
            for (const ExpertMatrix &m : e.parts) plan.source_bytes += m.nbytes();
            output += align_up(plan.packed_experts[l].back().blob->raw_bytes, packed::kAlignment);
        }
    // The index's size does not depend on the values in it.
    std::vector<TensorInfo> tensors;
    for (const ResidentPlan &r : plan.resident) tensors.push_back(r.source);
    output += align_up(encode_packed_index(tensors, plan.packed_experts).size(), packed::kAlignment);
    plan.max_output_bytes = output;
    plan.notes = notes_of(kept);
    return plan;
}

}  // namespace mst
