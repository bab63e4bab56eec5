// Writes the fuzz targets' seed corpora from the test data: OUT/<target>/ for each of
// safetensors_header, model_config, tokenizer, tiktoken (a small rank file written here),
// packed (a small packed file written here; scripts/fuzz.sh adds converted reference
// models when a regular build exists), jinja and gguf (small GGUF files written here: one
// of each value type, and one model's metadata per architecture moestream reads).
// Usage: mst_fuzz_seeds OUT
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/file_io.h"
#include "format/packed_writer.h"
#include "gguf_builder.h"

namespace fs = std::filesystem;

namespace {

void write_file(const fs::path &path, const std::string &bytes) {
    std::ofstream out(path, std::ios::binary);
    out.write(bytes.data(), std::streamsize(bytes.size()));
    if (!out) throw std::runtime_error("cannot write " + path.string());
}

std::string read_file(const fs::path &path) { return mst::read_text_file(path.string(), size_t(1) << 30); }

// The JSON header of a safetensors file (after its 8-byte length).
std::string safetensors_header(const fs::path &path) {
    const std::string bytes = read_file(path);
    uint64_t n = 0;
    for (int i = 7; i >= 0; --i) n = (n << 8) | uint8_t(bytes.at(size_t(i)));
    return bytes.substr(8, size_t(n));
}

// A small packed file: one resident tensor, one layer of two experts (one compressed),
// so the fuzzer has a cheap input that reaches every part of the index.
void write_small_packed(const fs::path &path) {
    mst::PackedWriter w(path.string());
    w.write_metadata({{"config.json", "{\"model_type\": \"qwen3_moe\"}"}, {"tokenizer.json", "{}"}});
    w.begin_resident();
    const std::vector<uint8_t> norm(128, 0x3f);
    mst::TensorInfo t;
    t.name = "model.norm.weight";
    t.dtype = mst::DType::BF16;
    t.shape = {64};
    t.nbytes = norm.size();
    t.offset = w.add_resident(norm.data(), norm.size());
    w.end_resident();
    w.begin_experts();
    std::vector<std::vector<mst::ExpertLayout>> experts(1);
    for (int e = 0; e < 2; ++e) {
        mst::ExpertLayout x;
        x.parts = {mst::ExpertMatrix{0, 0, mst::DType::Q4, 2, 32, true}, mst::ExpertMatrix{0, 64, mst::DType::BF16, 1, 8, true}};
        const std::vector<uint8_t> raw(80, uint8_t(e));
        x.blob = w.add_blob(raw.data(), raw.size(), raw.size(), mst::BlobCodec::None, 0);
        experts[0].push_back(x);
    }
    w.end_experts();
    w.finish({t}, experts, true);
}

// A tiktoken rank file: the 256 bytes and a few merges, each "<base64> <rank>".
std::string small_rank_file() {
    static const char *alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::vector<std::string> tokens;
    for (int b = 0; b < 256; ++b) tokens.emplace_back(1, char(b));
    for (const char *merged : {"he", "ll", "llo", "hello", " w", "or", " wor", "ld", "\xE4\xB8", "\xE4\xB8\xAD"})
        tokens.emplace_back(merged);
    std::string out;
    for (size_t r = 0; r < tokens.size(); ++r) {
        const std::string &t = tokens[r];
        for (size_t i = 0; i < t.size(); i += 3) {
            uint32_t g = uint32_t(uint8_t(t[i])) << 16;
            if (i + 1 < t.size()) g |= uint32_t(uint8_t(t[i + 1])) << 8;
            if (i + 2 < t.size()) g |= uint8_t(t[i + 2]);
            out += alphabet[(g >> 18) & 63];
            out += alphabet[(g >> 12) & 63];
            out += i + 1 < t.size() ? alphabet[(g >> 6) & 63] : '=';
            out += i + 2 < t.size() ? alphabet[g & 63] : '=';
        }
        out += " " + std::to_string(r) + "\n";
    }
    return out;
}

// Small GGUF files: every metadata value type, a nested array, float and Q8_0 tensors
// and a non-default alignment, so the fuzzer starts from inputs that reach every branch.
void write_small_ggufs(const fs::path &dir) {
    mst::test::GgufBuilder b;
    b.add_string("general.architecture", "qwen3moe");
    b.add_u32("qwen3moe.block_count", 1);
    b.add_f32("qwen3moe.rope.freq_base", 1e6f);
    b.add_bool("tokenizer.ggml.add_bos_token", false);
    b.add_u64("big", 1);
    b.add_string_array("tokenizer.ggml.tokens", {"a", "b", "Ġc"});
    b.add_i32_array("tokenizer.ggml.token_type", {1, 1, 3});
    b.add_f32_array("tokenizer.ggml.scores", {0.0f, -1.0f, -2.0f});
    std::string nested;
    mst::test::put_u32(nested, uint32_t(mst::GgufValueType::Array));
    mst::test::put_u64(nested, 1);
    mst::test::put_u32(nested, uint32_t(mst::GgufValueType::Int16));
    mst::test::put_u64(nested, 2);
    nested += std::string("\x01\x00\xff\xff", 4);
    b.add_raw("nested", mst::GgufValueType::Array, nested);
    b.add_tensor("token_embd.weight", mst::ggml_type::F16, {4, 2}, std::string(16, '\x3c'));
    b.add_tensor("blk.0.ffn_gate_exps.weight", mst::ggml_type::Q8_0, {32, 1, 2}, std::string(68, '\x01'));
    write_file(dir / "small_v3.gguf", b.build());
    b.version = 2;
    b.set_alignment(64);
    write_file(dir / "small_v2_align64.gguf", b.build());
}

// One small model's metadata per architecture moestream reads from GGUF, with the keys its
// config and tokenizer take (lib/model/gguf_model_files.cpp) and a token_embd.weight, so
// that the fuzzer starts from files that pass gguf_config_json and the tokenizer and
// mutates into every branch of them: qwen3moe, deepseek2 (MLA, shared expert, YaRN; with
// the deepseek-v3 and kimi-k2 pre-tokenizers), gpt-oss (sliding window pattern), qwen35moe
// (ssm.*, M-RoPE sections), llama with experts (with a byte-level and a SentencePiece
// vocabulary, as Mixtral GGUFs carry), and a first shard of a split file.
void write_architecture_ggufs(const fs::path &dir) {
    // `pre`: the byte-level BPE ("gpt2") vocabulary's pre-tokenizer, or null for a SentencePiece one.
    const auto base = [](const std::string &arch, const char *pre) {
        mst::test::GgufBuilder b;
        const std::string p = arch + ".";
        b.add_string("general.architecture", arch);
        b.add_u32(p + "block_count", 2);
        b.add_u32(p + "context_length", 64);
        b.add_u32(p + "embedding_length", 16);
        b.add_u32(p + "attention.head_count", 2);
        b.add_u32(p + "attention.head_count_kv", 1);
        b.add_f32(p + "attention.layer_norm_rms_epsilon", 1e-6f);
        b.add_f32(p + "rope.freq_base", 1e6f);
        b.add_u32(p + "expert_count", 4);
        b.add_u32(p + "expert_used_count", 2);
        if (pre) {
            b.add_string("tokenizer.ggml.model", "gpt2");
            b.add_string("tokenizer.ggml.pre", pre);
            b.add_string_array("tokenizer.ggml.tokens", {"a", "b", "ab", "\xc4\xa0", "<|end|>"});
            b.add_i32_array("tokenizer.ggml.token_type", {1, 1, 1, 1, 3});
            b.add_string_array("tokenizer.ggml.merges", {"a b"});
        } else {  // SentencePiece: pieces ranked by score, no merges
            b.add_string("tokenizer.ggml.model", "llama");
            b.add_string_array("tokenizer.ggml.tokens", {"<unk>", "\xe2\x96\x81", "a", "\xe2\x96\x81" "a", "</s>"});
            b.add_f32_array("tokenizer.ggml.scores", {0.0f, -1.0f, -2.0f, -3.0f, 0.0f});
            b.add_i32_array("tokenizer.ggml.token_type", {2, 1, 1, 1, 3});
            b.add_bool("tokenizer.ggml.add_bos_token", false);
            b.add_bool("tokenizer.ggml.add_space_prefix", true);
        }
        b.add_u32("tokenizer.ggml.eos_token_id", 4);
        b.add_string("tokenizer.chat_template", "{% for m in messages %}{{ m['content'] }}{% endfor %}");
        return b;
    };
    const auto finish = [&](mst::test::GgufBuilder &b, const std::string &name) {
        b.add_tensor("token_embd.weight", mst::ggml_type::F32, {16, 5}, std::string(16 * 5 * 4, '\0'));
        write_file(dir / (name + ".gguf"), b.build());
    };
    const auto yarn = [](mst::test::GgufBuilder &b, const std::string &p) {
        b.add_string(p + "rope.scaling.type", "yarn");
        b.add_f32(p + "rope.scaling.factor", 4.0f);
        b.add_u32(p + "rope.scaling.original_context_length", 16);
        b.add_f32(p + "rope.scaling.yarn_beta_fast", 32.0f);
        b.add_f32(p + "rope.scaling.yarn_beta_slow", 1.0f);
    };

    for (const bool split : {false, true}) {
        mst::test::GgufBuilder b = base("qwen3moe", "qwen2");
        b.add_u32("qwen3moe.expert_feed_forward_length", 8);
        b.add_u32("qwen3moe.feed_forward_length", 32);
        b.add_tensor("blk.0.ffn_gate_inp.weight", mst::ggml_type::F32, {16, 4}, std::string(16 * 4 * 4, '\0'));
        if (split) {  // gguf-split's keys on the first of two shards
            b.add_u32("split.no", 0);
            b.add_u32("split.count", 2);
            b.add_u32("split.tensors.count", 3);
        }
        finish(b, split ? "qwen3moe-00001-of-00002" : "qwen3moe");
    }
    for (const char *pre : {"deepseek-v3", "kimi-k2"}) {
        mst::test::GgufBuilder b = base("deepseek2", pre);
        const std::string p = "deepseek2.";
        b.add_u32(p + "rope.dimension_count", 4);
        b.add_u32(p + "attention.kv_lora_rank", 8);
        b.add_u32(p + "attention.q_lora_rank", 8);
        b.add_u32(p + "attention.key_length", 12);
        b.add_u32(p + "attention.value_length", 8);
        b.add_u32(p + "attention.key_length_mla", 12);
        b.add_u32(p + "attention.value_length_mla", 8);
        b.add_u32(p + "expert_feed_forward_length", 8);
        b.add_u32(p + "feed_forward_length", 32);
        b.add_u32(p + "leading_dense_block_count", 1);
        b.add_u32(p + "expert_shared_count", 1);
        b.add_f32(p + "expert_weights_scale", 2.5f);
        b.add_bool(p + "expert_weights_norm", true);
        b.add_u32(p + "expert_group_count", 2);
        b.add_u32(p + "expert_group_used_count", 1);
        b.add_u32(p + "expert_gating_func", 2);
        yarn(b, p);
        b.add_f32(p + "rope.scaling.yarn_log_multiplier", 0.1f);
        finish(b, std::string("deepseek2_") + pre);
    }
    {
        mst::test::GgufBuilder b = base("gpt-oss", "gpt-4o");
        b.add_u32("gpt-oss.expert_feed_forward_length", 8);
        b.add_u32("gpt-oss.attention.sliding_window", 8);
        b.add_u32("gpt-oss.attention.sliding_window_pattern", 2);
        yarn(b, "gpt-oss.");
        finish(b, "gpt-oss");
    }
    {
        mst::test::GgufBuilder b = base("qwen35moe", "qwen35");
        const std::string p = "qwen35moe.";
        b.add_u32(p + "attention.key_length", 8);
        b.add_u32(p + "expert_feed_forward_length", 8);
        b.add_u32(p + "expert_shared_feed_forward_length", 8);
        b.add_u32(p + "ssm.conv_kernel", 4);
        b.add_u32(p + "ssm.state_size", 4);
        b.add_u32(p + "ssm.group_count", 2);
        b.add_u32(p + "ssm.time_step_rank", 2);
        b.add_u32(p + "ssm.inner_size", 8);
        b.add_u32(p + "full_attention_interval", 2);
        b.add_u32(p + "rope.dimension_count", 4);
        b.add_i32_array(p + "rope.dimension_sections", {1, 1, 0, 0});
        finish(b, "qwen35moe");
    }
    for (const char *pre : {"qwen2", static_cast<const char *>(nullptr)}) {
        mst::test::GgufBuilder b = base("llama", pre);
        b.add_u32("llama.feed_forward_length", 32);
        finish(b, pre ? "llama_experts" : "llama_experts_sentencepiece");
    }
}

}  // namespace

int main(int argc, char **argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: mst_fuzz_seeds OUT\n");
        return 2;
    }
    const fs::path out = argv[1], data = MST_TEST_DATA_DIR;
    try {
        for (const char *target : {"safetensors_header", "model_config", "tokenizer", "tiktoken", "packed", "jinja", "gguf"})
            fs::create_directories(out / target);
        std::set<std::string> tokenizers;  // datasets share tokenizers; keep each once
        for (const auto &entry : fs::recursive_directory_iterator(data)) {
            const fs::path &p = entry.path();
            const std::string stem = p.parent_path().filename().string() + "_" + p.stem().string();
            if (p.extension() == ".safetensors") write_file(out / "safetensors_header" / (stem + ".json"), safetensors_header(p));
            if (p.filename() == "config.json") write_file(out / "model_config" / (stem + ".json"), read_file(p));
            if (p.filename() == "tokenizer.json" && tokenizers.insert(read_file(p)).second)
                write_file(out / "tokenizer" / (stem + ".json"), read_file(p));
            if (p.extension() == ".jinja") write_file(out / "jinja" / (stem + ".jinja"), read_file(p));
        }
        write_small_packed(out / "packed" / "small.mst");
        const std::string ranks = small_rank_file();
        write_file(out / "tiktoken" / "small.tiktoken", ranks);
        write_file(out / "tiktoken" / "small_with_config.bin",
                   std::string(R"({"added_tokens_decoder": {"300": {"content": "<|im_end|>", "special": true}},)"
                               R"( "bos_token": "<|im_end|>"})") + '\0' + ranks);
        write_small_ggufs(out / "gguf");
        write_architecture_ggufs(out / "gguf");
    } catch (const std::exception &e) {
        std::fprintf(stderr, "mst_fuzz_seeds: %s\n", e.what());
        return 1;
    }
    return 0;
}
