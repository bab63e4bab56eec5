#include "convert/gguf_export.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <vector>

#include "convert/gguf_export_edits.h"
#include "convert/gguf_model_metadata.h"
#include "core/error.h"
#include "core/file_io.h"
#include "core/output_file.h"
#include "experts/expert_layout.h"
#include "format/checkpoint.h"
#include "format/gguf_names.h"
#include "format/gguf_writer.h"
#include "format/packed_format.h"

namespace mst {
namespace {

nlohmann::json metadata_json(const PackedContents &packed, const char *key, const std::string &source) {
    const std::string *text = packed.find_metadata(key);
    if (!text) fail(MST_ERR_BAD_FORMAT, "'{}' carries no {}, which the GGUF file needs", source, key);
    try {
        return nlohmann::json::parse(*text);
    } catch (const nlohmann::json::exception &e) {
        fail(MST_ERR_BAD_FORMAT, "'{}': its {} is not JSON: {}", source, key, e.what());
    }
}

uint32_t ggml_type_of(DType dtype, const std::string &what) {
    const auto type = dtype_to_ggml_type(dtype);
    if (!type) fail(MST_ERR_UNSUPPORTED, "{} is {}, which GGUF has no type for", what, dtype_name(dtype));
    return *type;
}

// A layer's experts as three stacked tensors; every expert must have the same parts.
struct StackedPart {
    std::string name;
    uint32_t type;
    std::vector<uint64_t> ne;  // cols, rows, experts
    size_t part;               // index into ExpertLayout::parts
};

std::vector<StackedPart> stacked_parts(const std::vector<ExpertLayout> &experts, size_t layer) {
    static const char *const kNames[] = {"ffn_gate_exps", "ffn_up_exps", "ffn_down_exps"};
    std::vector<StackedPart> out;
    for (size_t p = 0; p < 3; ++p) {
        const ExpertMatrix &first = experts.front().parts.at(p);
        for (size_t e = 0; e < experts.size(); ++e) {
            const ExpertLayout &x = experts[e];
            if (x.parts.size() != 3)
                fail(MST_ERR_UNSUPPORTED, "layer {} expert {} has {} parts; a GGUF expert has gate, up and down", layer,
                     e, x.parts.size());
            if (!x.blob || x.blob->codec != BlobCodec::None)
                fail(MST_ERR_UNSUPPORTED,
                     "layer {} expert {} is zstd-compressed; GGUF stores experts plain (convert again without --zstd)",
                     layer, e);
            const ExpertMatrix &m = x.parts[p];
            if (m.dtype != first.dtype || m.rows != first.rows || m.cols != first.cols)
                fail(MST_ERR_UNSUPPORTED, "layer {} expert {}'s {} is {} [{}, {}] where expert 0's is {} [{}, {}]", layer,
                     e, kNames[p], dtype_name(m.dtype), m.rows, m.cols, dtype_name(first.dtype), first.rows, first.cols);
        }
        const uint32_t type = ggml_type_of(first.dtype, fmt::format("layer {}'s {}", layer, kNames[p]));
        // A packed file pads a row that is not whole blocks (a K-quant's 256-element
        // super-blocks, mostly) with zeros; a GGUF tensor holds whole blocks only.
        if (const uint32_t block = ggml_type_info(type)->block_elems; first.cols % block != 0)
            fail(MST_ERR_UNSUPPORTED,
                 "layer {}'s {} is {} with rows of {} elements, not whole {}-element blocks, which GGUF cannot hold "
                 "(convert the experts to q4 or q8 instead)",
                 layer, kNames[p], dtype_name(first.dtype), first.cols, block);
        out.push_back({fmt::format("blk.{}.{}.weight", layer, kNames[p]), type,
                       {uint64_t(first.cols), uint64_t(first.rows), uint64_t(experts.size())}, p});
    }
    return out;
}

// general.file_type by the experts' type, which is most of the file's bytes.
uint32_t llama_ftype_of(DType experts) {
    switch (experts) {
        case DType::Q4: return llama_ftype::MOSTLY_Q4_1;
        case DType::Q8: return llama_ftype::MOSTLY_Q8_0;
        case DType::GGML_Q2_K: return llama_ftype::MOSTLY_Q2_K;
        case DType::GGML_Q3_K: return llama_ftype::MOSTLY_Q3_K_S;
        case DType::GGML_Q4_K: return llama_ftype::MOSTLY_Q4_K_S;
        case DType::GGML_Q5_K: return llama_ftype::MOSTLY_Q5_K_S;
        case DType::GGML_Q6_K: return llama_ftype::MOSTLY_Q6_K;
        default: return llama_ftype::MOSTLY_BF16;
    }
}

}  // namespace

GgufExportReport export_gguf(const std::string &source, const std::string &destination, bool force) {
    const auto start = std::chrono::steady_clock::now();
    const auto ckpt = Checkpoint::open(source);
    const PackedContents *packed = ckpt->packed();
    if (!packed)
        fail(MST_ERR_INVALID_ARGUMENT,
             "'{}' is not a packed .mst file: the GGUF export reads one (moestream convert SRC OUT.mst makes it)", source);
    if (!force && std::filesystem::exists(destination))
        fail(MST_ERR_IO, "'{}' exists (--force replaces it)", destination);
    const nlohmann::json config = metadata_json(*packed, packed::kConfigKey, source);
    const std::string model_type = config.value("model_type", "");
    const GgufArchitecture *arch = model_type == "qwen3_moe"          ? find_gguf_architecture("qwen3moe")
                                   : model_type == "deepseek_v3"      ? find_gguf_architecture("deepseek2")
                                   : model_type == "qwen3_5_moe_text" ? find_gguf_architecture("qwen35moe")
                                                                      : nullptr;
    if (!arch)
        fail(MST_ERR_UNSUPPORTED, "GGUF export writes qwen3_moe, qwen3_5_moe_text and deepseek_v3 models; '{}' is {}",
             source, model_type);
    // deepseek2's first layers are dense (first_k_dense_replace); qwen3moe has none.
    const int64_t leading_dense = arch->gguf_name == "deepseek2" ? config.value("first_k_dense_replace", int64_t(0)) : 0;

    GgufWriter w;
    const DType expert_dtype = packed->experts.empty() || packed->experts.front().empty()
                                   ? DType::BF16
                                   : packed->experts.front().front().parts.at(0).dtype;
    add_gguf_model_metadata(w, *arch, config, metadata_json(*packed, packed::kTokenizerKey, source),
                            metadata_json(*packed, packed::kTokenizerConfigKey, source), llama_ftype_of(expert_dtype));

    // Declarations: the resident tensors under llama.cpp's names, as its converter changes
    // them (convert/gguf_export_edits.h), then each layer's experts.
    struct Resident {
        const TensorInfo *tensor;
        GgufExportEdit edit;
    };
    std::vector<Resident> resident;
    GgufExportReport report;
    uint64_t data_bytes = 0;
    for (const TensorInfo &t : ckpt->tensors()) {
        const auto name = hf_to_gguf_name(*arch, t.name);
        if (!name) fail(MST_ERR_UNSUPPORTED, "tensor '{}' of '{}' has no name in llama.cpp's {}", t.name, source, arch->gguf_name);
        GgufExportEdit edit = gguf_export_edit(arch->gguf_name, t, config);
        const uint32_t type = edit.to_f32 ? ggml_type::F32 : ggml_type_of(t.dtype, "tensor '" + t.name + "'");
        const auto &shape = edit.how.shape;
        const uint64_t bytes = w.add_tensor(*name, type, std::vector<uint64_t>(shape.rbegin(), shape.rend()));
        if (!edit.to_f32 && bytes != t.nbytes)
            fail(MST_ERR_BAD_FORMAT, "tensor '{}' holds {} bytes where GGUF's {} needs {}", t.name, t.nbytes,
                 ggml_type_name(type), bytes);
        data_bytes += bytes + w.padding(bytes);
        resident.push_back({&t, std::move(edit)});
    }
    const int64_t n_layers = config.value("num_hidden_layers", int64_t(0));
    std::vector<std::vector<StackedPart>> layers(size_t(std::max<int64_t>(n_layers, 0)));
    for (size_t l = 0; l < layers.size(); ++l) {
        const bool dense = l >= packed->experts.size() || packed->experts[l].empty();
        if (dense && int64_t(l) < leading_dense) continue;
        if (dense)
            fail(MST_ERR_UNSUPPORTED, "layer {} of '{}' is dense, which llama.cpp's {} cannot load{}", l, source,
                 arch->gguf_name, leading_dense > 0 ? fmt::format(" after its {} leading dense layers", leading_dense) : "");
        if (int64_t(l) < leading_dense)
            fail(MST_ERR_BAD_FORMAT, "layer {} of '{}' has experts, but config.json's first_k_dense_replace is {}", l,
                 source, leading_dense);
        layers[l] = stacked_parts(packed->experts[l], l);
        for (const StackedPart &p : layers[l]) {
            const uint64_t bytes = w.add_tensor(p.name, p.type, p.ne);
            data_bytes += bytes + w.padding(bytes);
            report.expert_bytes += bytes;
        }
    }

    const std::string header = w.header();
    report.file_bytes = header.size() + data_bytes;
    const std::filesystem::path parent = std::filesystem::absolute(destination).parent_path();
    if (const uint64_t free = free_disk_bytes(parent.string()); free < report.file_bytes)
        fail(MST_ERR_IO, "'{}' needs {} bytes but {} has {} free", destination, report.file_bytes, parent.string(), free);

    OutputFile out(destination);
    out.write(header.data(), header.size());
    std::vector<uint8_t> buffer;
    const auto put = [&](const void *data, uint64_t n) {
        out.write(data, size_t(n));
        out.pad_to(w.alignment());
    };
    for (const Resident &r : resident) {
        const TensorInfo &t = *r.tensor;
        const int64_t rows = t.shape.empty() ? 1 : std::max<int64_t>(t.shape.front(), 1);  // an empty tensor: no rows to move
        if (r.edit.to_f32) {
            const std::vector<float> values = ckpt->read_f32(t);
            std::vector<float> edited(values.size());
            gather_rows_and_columns(r.edit.how, values.data(), rows, int64_t(values.size()) / rows, edited.data());
            put(edited.data(), edited.size() * sizeof(float));
        } else {
            buffer.resize(size_t(t.nbytes));
            ckpt->read(t, buffer.data());
            std::vector<uint8_t> edited(buffer.size());
            gather_rows_and_columns(r.edit.how, buffer.data(), rows, size_t(t.nbytes / uint64_t(rows)), t.dtype,
                                    edited.data());
            put(edited.data(), edited.size());
        }
        ++report.resident_tensors;
    }
    const File &file = ckpt->file(0);
    for (size_t l = 0; l < layers.size(); ++l)
        for (const StackedPart &p : layers[l]) {
            for (const ExpertLayout &x : packed->experts[l]) {
                const ExpertMatrix &m = x.parts[p.part];
                buffer.resize(size_t(m.nbytes()));
                file.pread_exact(buffer.data(), buffer.size(), x.blob->offset + m.offset);
                out.write(buffer.data(), buffer.size());
            }
            out.pad_to(w.alignment());
            ++report.expert_tensors;
        }
    out.commit(force);
    report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    return report;
}

}  // namespace mst
