// Checkpoint over a GGUF file: file 0 is the GGUF file; its tensors are renamed to the
// Hugging Face names the architectures look up, and each stacked expert tensor
// [E][rows][cols] becomes E tensors of [rows][cols] at consecutive offsets, so the expert
// store reads one expert as its three byte ranges, as it reads a safetensors expert.
#include <fmt/ranges.h>

#include <algorithm>
#include <cstring>
#include <map>

#include "core/error.h"
#include "format/checkpoint.h"
#include "format/gguf_file.h"
#include "format/gguf_names.h"

namespace mst {
namespace {

DType tensor_dtype(const GgufFile &g, const GgufTensor &t) {
    const auto dtype = ggml_type_to_dtype(t.type);
    if (!dtype)
        fail(MST_ERR_UNSUPPORTED,
             "{}: tensor '{}' has ggml type {}, which moestream cannot compute on (it runs F32, F16, BF16, Q8_0, "
             "Q4_0, Q4_1, Q5_0, Q5_1, IQ4_NL, IQ4_XS, MXFP4 and Q2_K..Q6_K GGUF tensors)",
             g.path, t.name, ggml_type_name(t.type));
    return *dtype;
}

// A GGUF checkpoint whose reads put llama.cpp's interleaved attn_q / attn_k rows back
// in transformers' order (GgufArchitecture::interleaved_qk_rows). Only reads change:
// the table, files and sizes are the base class's.
class GgufCheckpoint final : public Checkpoint {
public:
    // Tensor name -> its number of heads, for the tensors whose rows are interleaved.
    std::map<std::string, int64_t, std::less<>> interleaved_heads;

    void read(const TensorInfo &t, void *dst) const override {
        Checkpoint::read(t, dst);
        const auto it = interleaved_heads.find(t.name);
        if (it == interleaved_heads.end()) return;
        // Within each head of d rows, llama.cpp stored row 2i + j at transformers' row
        // j * d/2 + i (i < d/2, j < 2): the inverse of its convert script's permute().
        const int64_t rows = t.shape.front(), heads = it->second, d = rows / heads;
        const size_t row_bytes = size_t(t.nbytes / uint64_t(rows));
        std::vector<uint8_t> stored(static_cast<const uint8_t *>(dst), static_cast<const uint8_t *>(dst) + t.nbytes);
        auto *out = static_cast<uint8_t *>(dst);
        for (int64_t h = 0; h < heads; ++h)
            for (int64_t i = 0; i < d / 2; ++i)
                for (int64_t j = 0; j < 2; ++j)
                    std::memcpy(out + size_t(h * d + j * (d / 2) + i) * row_bytes,
                                stored.data() + size_t(h * d + 2 * i + j) * row_bytes, row_bytes);
    }
};

std::vector<std::string> architecture_names() {
    std::vector<std::string> names;
    for (const GgufArchitecture &a : gguf_architectures()) names.push_back(a.gguf_name);
    return names;
}

}  // namespace

std::unique_ptr<Checkpoint> Checkpoint::open_gguf(const std::string &path, File file) {
    auto gguf = std::make_shared<GgufFile>(read_gguf(file));
    const std::string arch_name = gguf->require_string("general.architecture");
    const GgufArchitecture *arch = find_gguf_architecture(arch_name);
    if (!arch)
        fail(MST_ERR_UNSUPPORTED, "{}: GGUF architecture '{}' is not supported; supported: {}", path, arch_name,
             fmt::join(architecture_names(), ", "));

    auto *gguf_checkpoint = new GgufCheckpoint();
    std::unique_ptr<Checkpoint> checkpoint(gguf_checkpoint);
    checkpoint->dir_ = path;
    if (arch->interleaved_qk_rows) {
        const std::string p = arch->gguf_name + ".attention.";
        const auto n_heads = int64_t(gguf->require_uint(p + "head_count"));
        const auto n_kv_heads = int64_t(gguf->find_uint(p + "head_count_kv").value_or(uint64_t(n_heads)));
        for (const GgufTensor &t : gguf->tensors) {
            const auto hf = gguf_to_hf_name(*arch, t.name);
            if (!hf || (!hf->ends_with("self_attn.q_proj.weight") && !hf->ends_with("self_attn.k_proj.weight"))) continue;
            const int64_t heads = hf->ends_with("q_proj.weight") ? n_heads : n_kv_heads;
            const int64_t rows = t.ne.size() == 2 ? int64_t(t.ne[1]) : 0;
            if (heads < 1 || rows % heads != 0 || (rows / heads) % 2 != 0)
                fail(MST_ERR_BAD_FORMAT, "{}: tensor '{}' has {} rows, not {} heads of an even size", path, t.name,
                     rows, heads);
            gguf_checkpoint->interleaved_heads[*hf] = heads;
        }
    }
    std::vector<TensorInfo> &table = checkpoint->tensors_;
    for (const GgufTensor &t : gguf->tensors) {
        if (const auto stacked = gguf_stacked_experts(*arch, t.name)) {
            const DType dtype = tensor_dtype(*gguf, t);
            if (t.ne.size() != 3 || t.ne[2] == 0)
                fail(MST_ERR_BAD_FORMAT, "{}: stacked expert tensor '{}' has shape {}, expected [experts, rows, cols]",
                     path, t.name, shape_to_string(t.shape()));
            const uint64_t n_experts = t.ne[2], per_expert = t.nbytes / n_experts;
            for (uint64_t e = 0; e < n_experts; ++e) {
                TensorInfo info;
                info.name = stacked->part_prefix + std::to_string(e) + stacked->part_suffix;
                info.dtype = dtype;
                info.shape = {int64_t(t.ne[1]), int64_t(t.ne[0])};
                info.offset = t.offset + e * per_expert;
                info.nbytes = per_expert;
                table.push_back(std::move(info));
            }
            continue;
        }
        const auto hf_name = gguf_to_hf_name(*arch, t.name);
        // A tensor the architecture does not name is kept under its own name if moestream
        // can hold its type (nothing looks it up), and left out otherwise.
        if (!hf_name && !ggml_type_to_dtype(t.type)) continue;
        TensorInfo info;
        info.name = hf_name.value_or(t.name);
        info.dtype = tensor_dtype(*gguf, t);
        info.shape = t.shape();
        info.offset = t.offset;
        info.nbytes = t.nbytes;
        table.push_back(std::move(info));
    }
    std::sort(table.begin(), table.end(), [](const TensorInfo &a, const TensorInfo &b) { return a.name < b.name; });
    for (size_t i = 0; i < table.size(); ++i) {
        if (i > 0 && table[i].name == table[i - 1].name)
            fail(MST_ERR_BAD_FORMAT, "{}: two GGUF tensors map to the tensor '{}'", path, table[i].name);
        checkpoint->by_name_[table[i].name] = i;
    }
    checkpoint->paths_.push_back(path);
    checkpoint->files_.push_back(std::move(file));
    checkpoint->gguf_ = std::move(gguf);
    return checkpoint;
}

}  // namespace mst
