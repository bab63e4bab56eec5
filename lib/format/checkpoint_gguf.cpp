// Checkpoint over a GGUF file: file 0 is the GGUF file; its tensors are renamed to the
// Hugging Face names the architectures look up, and each stacked expert tensor
// [E][rows][cols] becomes E tensors of [rows][cols] at consecutive offsets, so the expert
// store reads one expert as its three byte ranges, as it reads a safetensors expert.
#include <fmt/ranges.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <optional>
#include <set>

#include "core/error.h"
#include "format/checkpoint.h"
#include "format/gguf_derived_tensors.h"
#include "format/gguf_file.h"
#include "format/gguf_names.h"
#include "format/gguf_split.h"
#include "format/safetensors.h"

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

// MLA's kv_b_proj [heads * (nope + v)][latent] as newer llama.cpp conversions split it:
// attn_k_b [heads][latent][nope] (each head's key rows transposed, for the absorbed
// query) and attn_v_b [heads][v][latent].
struct SplitKvB {
    TensorInfo k_b, v_b;  // as stored in the file
    int64_t heads = 0, nope = 0, v = 0, latent = 0;
};

// A GGUF checkpoint whose reads put llama.cpp's interleaved attn_q / attn_k rows back
// in transformers' order (GgufArchitecture::interleaved_qk_rows) and join a split
// attn_k_b / attn_v_b back into kv_b_proj. Only reads change: the table, files and sizes
// are the base class's.
class GgufCheckpoint final : public Checkpoint {
public:
    // Tensor name -> its number of heads, for the tensors whose rows are interleaved.
    std::map<std::string, int64_t, std::less<>> interleaved_heads;
    // kv_b_proj name -> the two tensors it is joined from.
    std::map<std::string, SplitKvB, std::less<>> split_kv_b;
    // Name -> how it derives from its stored tensor (format/gguf_derived_tensors.h).
    struct Derived {
        GgufDerivedTensor how;
        TensorInfo stored;
        std::optional<TensorInfo> appended;
        const TensorInfo *appended_ptr() const { return appended ? &*appended : nullptr; }
    };
    std::map<std::string, Derived, std::less<>> derived;

    // Joined, derived and reordered tensors are not in the file as read() returns them.
    const uint8_t *mapped(const TensorInfo &t) const override {
        if (split_kv_b.contains(t.name) || derived.contains(t.name) || interleaved_heads.contains(t.name)) return nullptr;
        return Checkpoint::mapped(t);
    }

    void read(const TensorInfo &t, void *dst) const override {
        if (const auto joined = split_kv_b.find(t.name); joined != split_kv_b.end()) {
            if (t.nbytes != joined_bytes(joined->second, t.dtype))
                fail(MST_ERR_INVALID_ARGUMENT, "tensor '{}': {} bytes do not match its join of attn_k_b and attn_v_b",
                     t.name, t.nbytes);
            join_kv_b(joined->second, t.dtype, dst);
            return;
        }
        if (const auto d = derived.find(t.name); d != derived.end()) {
            const Derived &x = d->second;
            if (t.nbytes != derived_bytes(x.how, x.stored, x.appended_ptr()) ||
                t.dtype != derived_dtype(x.how, x.stored, x.appended_ptr()))
                fail(MST_ERR_INVALID_ARGUMENT, "tensor '{}': {} bytes of {} are not how it is derived from '{}'",
                     t.name, t.nbytes, dtype_name(t.dtype), d->second.stored.name);
            read_derived(d->second, dst);
            return;
        }
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

    std::vector<float> read_f32(const TensorInfo &t) const override {
        if (!split_kv_b.contains(t.name) && !derived.contains(t.name)) return Checkpoint::read_f32(t);
        std::vector<uint8_t> raw(t.nbytes);
        read(t, raw.data());
        std::vector<float> values(size_t(t.numel()));
        convert_to_f32(t.dtype, raw.data(), values.data(), values.size());
        return values;
    }

    // The joined tensor keeps the stored type when it is one element per value (a plain
    // transpose is exact); block-quantized halves are decoded to F32, since their blocks
    // run along the rows that the join transposes.
    static DType joined_dtype(const SplitKvB &s) {
        const DType k = s.k_b.dtype;
        return k == s.v_b.dtype && dtype_is_float_weight(k) ? k : DType::F32;
    }
    static uint64_t joined_bytes(const SplitKvB &s, DType dtype) {
        return uint64_t(s.heads * (s.nope + s.v) * s.latent) * dtype_size(dtype);
    }

private:
    // A stored tensor as floats, read past the overrides (a derived tensor's stored
    // tensor has the derived one's name).
    std::vector<float> stored_f32(const TensorInfo &t) const {
        std::vector<uint8_t> raw(t.nbytes);
        Checkpoint::read(t, raw.data());
        const int64_t cols = t.shape.empty() ? 1 : t.shape.back();
        const uint64_t row_bytes = dtype_row_bytes(t.dtype, cols);
        if (row_bytes == 0 || t.nbytes % row_bytes != 0)
            fail(MST_ERR_UNSUPPORTED, "tensor '{}' of {} cannot be read as float32", t.name, dtype_name(t.dtype));
        std::vector<float> values(size_t(t.numel()));
        for (uint64_t r = 0; r < t.nbytes / row_bytes; ++r)
            convert_to_f32(t.dtype, raw.data() + r * row_bytes, values.data() + r * uint64_t(cols), size_t(cols));
        return values;
    }

    // Gathers rows, then column groups, of the stored tensor, viewed as [rows][cols] with
    // cols the product of its inner dimensions (1 for a vector); as stored bytes when the
    // type is kept, as floats otherwise.
    void read_derived(const Derived &x, void *dst) const {
        const GgufDerivedTensor &d = x.how;
        const TensorInfo &s = x.stored;
        const int64_t rows = s.shape.empty() ? 1 : s.shape.front();
        const int64_t cols = rows > 0 ? s.numel() / rows : 0;
        const int64_t all_rows = rows + (x.appended ? x.appended->numel() / std::max<int64_t>(cols, 1) : 0);
        const DType dtype = derived_dtype(d, s, x.appended_ptr());
        if (!d.value && dtype == s.dtype) {
            std::vector<uint8_t> raw(s.nbytes + (x.appended ? x.appended->nbytes : 0));
            Checkpoint::read(s, raw.data());
            if (x.appended) Checkpoint::read(*x.appended, raw.data() + s.nbytes);
            gather_rows_and_columns(d, raw.data(), all_rows, size_t(s.nbytes / uint64_t(rows)), dtype,
                                    static_cast<uint8_t *>(dst));
            return;
        }
        std::vector<float> values = stored_f32(s);
        if (x.appended) {
            const std::vector<float> more = stored_f32(*x.appended);
            values.insert(values.end(), more.begin(), more.end());
        }
        gather_rows_and_columns(d, values.data(), all_rows, cols, static_cast<float *>(dst));
    }

    // Element (row, col) of kv_b: row h * (nope + v) + n is head h's key row n, column l
    // the latent; k_b holds it at [h][l][n], v_b at [h][n - nope][l].
    void join_kv_b(const SplitKvB &s, DType dtype, void *dst) const {
        const size_t es = dtype_size(dtype);
        const auto source = [&](const TensorInfo &t) {
            std::vector<uint8_t> bytes;
            if (dtype == t.dtype) {
                bytes.resize(t.nbytes);
                Checkpoint::read(t, bytes.data());
            } else {
                const std::vector<float> values = stored_f32(t);
                bytes.resize(values.size() * sizeof(float));
                std::memcpy(bytes.data(), values.data(), bytes.size());
            }
            return bytes;
        };
        const std::vector<uint8_t> k = source(s.k_b), v = source(s.v_b);
        auto *out = static_cast<uint8_t *>(dst);
        const int64_t rows_per_head = s.nope + s.v;
        for (int64_t h = 0; h < s.heads; ++h) {
            for (int64_t n = 0; n < s.nope; ++n)
                for (int64_t l = 0; l < s.latent; ++l)
                    std::memcpy(out + size_t((h * rows_per_head + n) * s.latent + l) * es,
                                k.data() + size_t((h * s.latent + l) * s.nope + n) * es, es);
            std::memcpy(out + size_t((h * rows_per_head + s.nope) * s.latent) * es,
                        v.data() + size_t(h * s.v * s.latent) * es, size_t(s.v * s.latent) * es);
        }
    }
};

// Collects blk.N.attn_k_b / attn_v_b pairs of a deepseek2 file into the kv_b_proj they
// were split from, checking that their shapes agree ([heads][latent][nope] and
// [heads][v][latent]). Returns the names of the tensors consumed.
std::set<std::string, std::less<>> collect_split_kv_b(const GgufFile &g, GgufCheckpoint &checkpoint) {
    std::set<std::string, std::less<>> consumed;
    for (const GgufTensor &k_b : g.tensors) {
        static constexpr std::string_view kSuffix = ".attn_k_b.weight";
        if (!std::string_view(k_b.name).ends_with(kSuffix)) continue;
        const std::string block = k_b.name.substr(0, k_b.name.size() - kSuffix.size());  // "blk.N"
        const std::string v_name = block + ".attn_v_b.weight";
        const GgufTensor *v_b = g.find_tensor(v_name);
        if (!v_b) fail(MST_ERR_BAD_FORMAT, "{}: tensor '{}' has no '{}' beside it", g.path, k_b.name, v_name);
        if (k_b.ne.size() != 3 || v_b->ne.size() != 3 || k_b.ne[1] != v_b->ne[0] || k_b.ne[2] != v_b->ne[2])
            fail(MST_ERR_BAD_FORMAT,
                 "{}: '{}' {} and '{}' {} are not [heads, latent, nope] and [heads, v, latent] of one attention",
                 g.path, k_b.name, shape_to_string(k_b.shape()), v_name, shape_to_string(v_b->shape()));
        const std::string layer = block.substr(4);
        SplitKvB s;
        s.heads = int64_t(k_b.ne[2]);
        s.nope = int64_t(k_b.ne[0]);
        s.latent = int64_t(k_b.ne[1]);
        s.v = int64_t(v_b->ne[1]);
        const auto info = [&](const GgufTensor &t) {
            TensorInfo i;
            i.name = t.name;
            i.dtype = tensor_dtype(g, t);
            i.shape = t.shape();
            i.file_index = t.file;
            i.offset = t.offset;
            i.nbytes = t.nbytes;
            return i;
        };
        s.k_b = info(k_b);
        s.v_b = info(*v_b);
        checkpoint.split_kv_b["model.layers." + layer + ".self_attn.kv_b_proj.weight"] = s;
        consumed.insert(k_b.name);
        consumed.insert(v_name);
    }
    return consumed;
}

int64_t numel_of_shape(const std::vector<int64_t> &shape) {
    int64_t n = 1;
    for (const int64_t d : shape) n *= d;
    return n;
}

// Puts each derived tensor in the table in place of the stored tensor(s) it reads.
void apply_derived(const std::map<std::string, GgufDerivedTensor, std::less<>> &derived, const std::string &path,
                   GgufCheckpoint &checkpoint, std::vector<TensorInfo> &table) {
    const auto take = [&](const std::string &name) {
        const auto it = std::find_if(table.begin(), table.end(), [&](const TensorInfo &x) { return x.name == name; });
        if (it == table.end()) fail(MST_ERR_BAD_FORMAT, "{}: tensor '{}' is missing", path, name);
        TensorInfo t = std::move(*it);
        table.erase(it);
        return t;
    };
    for (const auto &[name, how] : derived) {
        GgufCheckpoint::Derived x{how, take(how.source), std::nullopt};
        if (!how.appended.empty()) x.appended = take(how.appended);
        const int64_t stored = x.stored.numel() + (x.appended ? x.appended->numel() : 0);
        if (numel_of_shape(how.shape) != stored ||
            (x.appended && x.appended->shape.back() != x.stored.shape.back()))
            fail(MST_ERR_BAD_FORMAT, "{}: tensor '{}' has shape {}, which does not make {}", path, x.stored.name,
                 shape_to_string(x.stored.shape), shape_to_string(how.shape));
        TensorInfo t = x.stored;
        t.name = name;
        t.dtype = derived_dtype(how, x.stored, x.appended_ptr());
        t.nbytes = derived_bytes(how, x.stored, x.appended_ptr());
        t.shape = how.shape;
        checkpoint.derived[name] = std::move(x);
        table.push_back(std::move(t));
    }
}

std::vector<std::string> architecture_names() {
    std::vector<std::string> names;
    for (const GgufArchitecture &a : gguf_architectures()) names.push_back(a.gguf_name);
    return names;
}

}  // namespace

std::unique_ptr<Checkpoint> Checkpoint::open_gguf(const std::string &path, File file) {
    auto gguf = std::make_shared<GgufFile>(read_gguf(file));
    // A split model: the other shards' tensors join the first's (files 1..n-1).
    std::vector<std::pair<std::string, File>> shards = open_gguf_shards(*gguf);
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
    const auto joined = collect_split_kv_b(*gguf, *gguf_checkpoint);
    for (const auto &[name, split] : gguf_checkpoint->split_kv_b) {
        // Listed at the key half's place in the file: nothing reads it from there.
        TensorInfo info;
        info.name = name;
        info.dtype = GgufCheckpoint::joined_dtype(split);
        info.shape = {split.heads * (split.nope + split.v), split.latent};
        info.file_index = split.k_b.file_index;
        info.offset = split.k_b.offset;
        info.nbytes = GgufCheckpoint::joined_bytes(split, info.dtype);
        table.push_back(std::move(info));
    }
    for (const GgufTensor &t : gguf->tensors) {
        if (joined.contains(t.name)) continue;
        if (const auto stacked = gguf_stacked_experts(*arch, t.name)) {
            const DType dtype = tensor_dtype(*gguf, t);
            // Matrices are [experts, rows, cols]; stacked biases (gpt-oss) [experts, rows].
            const size_t dims = stacked->part_suffix.ends_with(".bias") ? 2 : 3;
            if (t.ne.size() != dims || t.ne.back() == 0)
                fail(MST_ERR_BAD_FORMAT, "{}: stacked expert tensor '{}' has shape {}, expected {}", path, t.name,
                     shape_to_string(t.shape()), dims == 3 ? "[experts, rows, cols]" : "[experts, rows]");
            const uint64_t n_experts = t.ne.back(), per_expert = t.nbytes / n_experts;
            std::vector<int64_t> shape = t.shape();
            shape.erase(shape.begin());
            for (uint64_t e = 0; e < n_experts; ++e) {
                TensorInfo info;
                info.name = stacked->part_prefix + std::to_string(e) + stacked->part_suffix;
                info.dtype = dtype;
                info.shape = shape;
                info.file_index = t.file;
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
        info.file_index = t.file;
        info.offset = t.offset;
        info.nbytes = t.nbytes;
        table.push_back(std::move(info));
    }
    if (arch->gguf_name == "qwen35moe" || arch->gguf_name == "qwen3next")
        apply_derived(qwen_hybrid_derived_tensors(*gguf, *arch, table), path, *gguf_checkpoint, table);
    std::sort(table.begin(), table.end(), [](const TensorInfo &a, const TensorInfo &b) { return a.name < b.name; });
    for (size_t i = 0; i < table.size(); ++i) {
        if (i > 0 && table[i].name == table[i - 1].name)
            fail(MST_ERR_BAD_FORMAT, "{}: two GGUF tensors map to the tensor '{}'", path, table[i].name);
        checkpoint->by_name_[table[i].name] = i;
    }
    checkpoint->paths_.push_back(path);
    checkpoint->files_.push_back(std::move(file));
    for (auto &[shard_path, shard_file] : shards) {
        checkpoint->paths_.push_back(shard_path);
        checkpoint->files_.push_back(std::move(shard_file));
    }
    checkpoint->gguf_ = std::move(gguf);
    return checkpoint;
}

}  // namespace mst
