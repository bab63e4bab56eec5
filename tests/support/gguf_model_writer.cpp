#include "gguf_model_writer.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <map>
#include <optional>
#include <nlohmann/json.hpp>
#include <sstream>
#include <stdexcept>

#include "core/dtype.h"
#include "core/quant.h"
#include "format/checkpoint.h"
#include "convert/gguf_model_metadata.h"
#include "format/gguf_names.h"
#include "gguf_builder.h"

namespace mst::test {
namespace {

nlohmann::json read_json(const std::string &path) {
    std::ifstream f(path);
    if (!f) throw std::runtime_error("cannot read " + path);
    return nlohmann::json::parse(f);
}

// The moestream type with the same bytes as a block type's; nullopt for the float ones.
std::optional<DType> block_dtype(GgufWeightType type) {
    switch (type) {
        case GgufWeightType::Q4_0: return DType::GGML_Q4_0;
        case GgufWeightType::Q4_1: return DType::Q4;
        case GgufWeightType::Q5_0: return DType::GGML_Q5_0;
        case GgufWeightType::Q5_1: return DType::GGML_Q5_1;
        case GgufWeightType::IQ4_NL: return DType::GGML_IQ4_NL;
        case GgufWeightType::IQ4_XS: return DType::GGML_IQ4_XS;
        case GgufWeightType::MXFP4: return DType::GGML_MXFP4;
        default: return std::nullopt;
    }
}

// The type a matrix of rows of `cols` is stored in, for a file of `type` (see the header).
GgufWeightType matrix_type(GgufWeightType type, int64_t cols, bool expert) {
    if (type == GgufWeightType::MXFP4 && !expert) return GgufWeightType::Q8_0;
    if (type == GgufWeightType::IQ4_XS && cols % 256 != 0) return GgufWeightType::IQ4_NL;
    return type;
}

std::string encode(const std::vector<float> &values, GgufWeightType type) {
    std::string out;
    if (const auto dtype = block_dtype(type)) {
        out.resize(size_t(dtype_row_bytes(*dtype, int64_t(values.size()))));
        quantize_row(*dtype, values.data(), int64_t(values.size()), out.data());
        return out;
    }
    switch (type) {
        case GgufWeightType::F32:
            out.resize(values.size() * 4);
            std::memcpy(out.data(), values.data(), out.size());
            break;
        case GgufWeightType::F16:
        case GgufWeightType::BF16:
            for (float v : values) {
                const uint16_t h = type == GgufWeightType::F16 ? f32_to_f16(v) : f32_to_bf16(v);
                out.push_back(char(h & 0xff));
                out.push_back(char(h >> 8));
            }
            break;
        case GgufWeightType::Q8_0:
            out = quantize_q8_0(values.data(), values.size());
            break;
        default:
            throw std::logic_error("encode: unhandled GGUF weight type");
    }
    return out;
}

uint32_t ggml_of(GgufWeightType type) {
    switch (type) {
        case GgufWeightType::F32: return ggml_type::F32;
        case GgufWeightType::F16: return ggml_type::F16;
        case GgufWeightType::BF16: return ggml_type::BF16;
        case GgufWeightType::Q8_0: return ggml_type::Q8_0;
        case GgufWeightType::Q4_0: return ggml_type::Q4_0;
        case GgufWeightType::Q4_1: return ggml_type::Q4_1;
        case GgufWeightType::Q5_0: return ggml_type::Q5_0;
        case GgufWeightType::Q5_1: return ggml_type::Q5_1;
        case GgufWeightType::IQ4_NL: return ggml_type::IQ4_NL;
        case GgufWeightType::IQ4_XS: return ggml_type::IQ4_XS;
        case GgufWeightType::MXFP4: return ggml_type::MXFP4;
    }
    return ggml_type::F32;
}

// general.file_type holds llama.cpp's llama_ftype (LLAMA_FTYPE_MOSTLY_*), whose numbers
// differ from the ggml types'.
uint32_t llama_ftype_of(GgufWeightType type) {
    switch (type) {
        case GgufWeightType::F32: return llama_ftype::ALL_F32;
        case GgufWeightType::F16: return llama_ftype::MOSTLY_F16;
        case GgufWeightType::Q4_0: return llama_ftype::MOSTLY_Q4_0;
        case GgufWeightType::Q4_1: return llama_ftype::MOSTLY_Q4_1;
        case GgufWeightType::Q5_0: return llama_ftype::MOSTLY_Q5_0;
        case GgufWeightType::Q5_1: return llama_ftype::MOSTLY_Q5_1;
        case GgufWeightType::IQ4_NL: return llama_ftype::MOSTLY_IQ4_NL;
        case GgufWeightType::IQ4_XS: return llama_ftype::MOSTLY_IQ4_XS;
        case GgufWeightType::MXFP4: return llama_ftype::MOSTLY_MXFP4_MOE;
        case GgufWeightType::Q8_0: return llama_ftype::MOSTLY_Q8_0;
        case GgufWeightType::BF16: return llama_ftype::MOSTLY_BF16;
    }
    return llama_ftype::ALL_F32;
}


}  // namespace

std::string quantize_q8_0(const float *x, size_t n) {
    if (n % 32 != 0) throw std::invalid_argument("quantize_q8_0: length is not a multiple of 32");
    std::string out;
    out.reserve(n / 32 * 34);
    for (size_t b = 0; b < n; b += 32) {
        float amax = 0.0f;
        for (size_t j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(x[b + j]));
        const float d = amax / 127.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        const uint16_t h = f32_to_f16(d);
        out.push_back(char(h & 0xff));
        out.push_back(char(h >> 8));
        for (size_t j = 0; j < 32; ++j) out.push_back(char(int8_t(std::lround(x[b + j] * id))));
    }
    return out;
}

namespace {

struct ArchSpec {
    std::string arch;                    // general.architecture
    std::string model_type;              // the config.json's
    std::string experts;                 // "mlp.experts" | "block_sparse_moe.experts"
    std::vector<std::pair<std::string, std::string>> parts;  // gguf stacked part, HF part
    bool permute_qk = false;
};

// convert_hf_to_gguf.py's LlamaModel.permute: within each head of d rows, row j * d/2 + i
// moves to 2i + j.
std::vector<float> permute_rows(const std::vector<float> &w, int64_t rows, int64_t cols, int64_t heads) {
    std::vector<float> out(w.size());
    const int64_t d = rows / heads;
    for (int64_t h = 0; h < heads; ++h)
        for (int64_t i = 0; i < d / 2; ++i)
            for (int64_t j = 0; j < 2; ++j)
                std::copy_n(w.begin() + (h * d + j * (d / 2) + i) * cols, cols, out.begin() + (h * d + 2 * i + j) * cols);
    return out;
}

// A matrix stored in `type` and what it is written as: the type itself, or (decoded) F32
// values that the type's encoding decodes to.
void add_matrix(GgufBuilder &b, const std::string &name, GgufWeightType type, bool decoded, std::vector<uint64_t> ne,
                std::vector<float> values) {
    if (decoded && type != GgufWeightType::F32) {
        const std::string bytes = encode(values, type);
        const int64_t cols = int64_t(ne[0]);
        const std::optional<DType> dtype =
            type == GgufWeightType::F16 ? DType::F16 : type == GgufWeightType::BF16 ? DType::BF16
            : type == GgufWeightType::Q8_0 ? DType::Q8 : block_dtype(type);
        const uint64_t row_bytes = dtype_row_bytes(*dtype, cols);
        for (size_t r = 0; r < values.size() / size_t(cols); ++r)
            convert_to_f32(*dtype, bytes.data() + r * row_bytes, values.data() + r * size_t(cols), size_t(cols));
        type = GgufWeightType::F32;
    }
    b.add_tensor(name, ggml_of(type), std::move(ne), encode(values, type));
}

void write_gguf(const ArchSpec &spec, const std::string &dir, const std::string &gguf_path, GgufWeightType type,
                bool decoded = false) {
    const nlohmann::json config = read_json(dir + "/config.json");
    if (config.at("model_type") != spec.model_type) throw std::runtime_error(dir + " is not a " + spec.model_type + " checkpoint");
    const auto ckpt = Checkpoint::open(dir);
    const int64_t n_layers = config.at("num_hidden_layers");
    const int64_t n_heads = config.at("num_attention_heads"), n_kv_heads = config.at("num_key_value_heads");
    const int64_t n_experts = config.contains("num_experts") ? config.at("num_experts").get<int64_t>()
                                                             : config.at("num_local_experts").get<int64_t>();

    GgufBuilder b;
    const GgufArchitecture *arch = find_gguf_architecture(spec.arch);
    if (!arch) throw std::runtime_error("no GGUF architecture " + spec.arch);
    add_gguf_model_metadata(b, *arch, config, read_json(dir + "/tokenizer.json"),
                            read_json(dir + "/tokenizer_config.json"), llama_ftype_of(type));

    // One tensor: 1-D ones and the router in F32, as llama.cpp keeps them.
    const auto add = [&](const std::string &gguf_name, const TensorInfo &t, bool keep_f32, int64_t permute_heads = 0) {
        const GgufWeightType wt =
            keep_f32 || t.shape.size() < 2 ? GgufWeightType::F32 : matrix_type(type, t.shape.back(), false);
        std::vector<uint64_t> ne(t.shape.rbegin(), t.shape.rend());
        std::vector<float> values = ckpt->read_f32(t);
        if (permute_heads > 0) values = permute_rows(values, t.shape[0], t.shape[1], permute_heads);
        add_matrix(b, gguf_name, wt, decoded, ne, std::move(values));
    };
    add("token_embd.weight", ckpt->require("model.embed_tokens.weight"), false);
    for (int64_t l = 0; l < n_layers; ++l) {
        const std::string hf = fmt::format("model.layers.{}.", l), gg = fmt::format("blk.{}.", l);
        for (const TensorInfo &t : ckpt->tensors()) {
            if (t.name.rfind(hf, 0) != 0) continue;
            const auto name = hf_to_gguf_name(*arch, t.name);
            if (!name) continue;  // an expert's tensor: stacked below
            int64_t heads = 0;
            if (spec.permute_qk && *name == gg + "attn_q.weight") heads = n_heads;
            if (spec.permute_qk && *name == gg + "attn_k.weight") heads = n_kv_heads;
            add(*name, t, *name == gg + "ffn_gate_inp.weight", heads);
        }
        if (!ckpt->find(fmt::format("{}{}.0.{}.weight", hf, spec.experts, spec.parts[0].second))) continue;
        for (const auto &[part, hf_part] : spec.parts) {
            std::vector<float> stacked;
            std::vector<int64_t> shape;
            for (int64_t e = 0; e < n_experts; ++e) {
                const TensorInfo &t = ckpt->require(fmt::format("{}{}.{}.{}.weight", hf, spec.experts, e, hf_part));
                const std::vector<float> v = ckpt->read_f32(t);
                stacked.insert(stacked.end(), v.begin(), v.end());
                shape = t.shape;
            }
            const GgufWeightType wt = matrix_type(type, shape[1], true);
            add_matrix(b, fmt::format("{}ffn_{}_exps.weight", gg, part), wt, decoded,
                       {uint64_t(shape[1]), uint64_t(shape[0]), uint64_t(n_experts)}, std::move(stacked));
        }
    }
    add("output_norm.weight", ckpt->require("model.norm.weight"), true);
    if (const TensorInfo *lm = ckpt->find("lm_head.weight")) add("output.weight", *lm, false);
    b.write(gguf_path);
}

const ArchSpec kQwen3Moe{"qwen3moe", "qwen3_moe", "mlp.experts", {{"gate", "gate_proj"}, {"up", "up_proj"}, {"down", "down_proj"}},
                         false};

}  // namespace

void write_qwen3moe_gguf(const std::string &dir, const std::string &gguf_path, GgufWeightType type) {
    write_gguf(kQwen3Moe, dir, gguf_path, type);
}

void write_qwen3moe_gguf_decoded(const std::string &dir, const std::string &gguf_path, GgufWeightType type) {
    write_gguf(kQwen3Moe, dir, gguf_path, type, true);
}

void write_mixtral_gguf(const std::string &dir, const std::string &gguf_path, GgufWeightType type) {
    write_gguf({"llama", "mixtral", "block_sparse_moe.experts", {{"gate", "w1"}, {"up", "w3"}, {"down", "w2"}}, true},
               dir, gguf_path, type);
}

}  // namespace mst::test
