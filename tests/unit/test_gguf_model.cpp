// A GGUF file as a model: the checkpoint it opens as (Hugging Face names, per-expert
// views into the stacked expert tensors, Q8_0 read as moestream's Q8), the config and
// tokenizer made from its metadata, and each thing moestream refuses, named.
#include <gtest/gtest.h>


#include <cstdio>
#include <cstring>
#include <filesystem>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "cli_process.h"
#include "core/quant.h"
#include "expect_error.h"
#include "format/checkpoint.h"
#include "format/gguf_file.h"
#include "format/gguf_summary.h"
#include "moestream.hpp"
#include "gguf_builder.h"
#include "gguf_model_writer.h"
#include "gguf_split_writer.h"
#include "format/gguf_split.h"
#include "core/file_io.h"
#include "model/model_files.h"
#include "moestream.h"
#include "test_paths.h"
#include "tokenizer/byte_level.h"
#include "tokenizer/tokenizer.h"

namespace {

namespace fs = std::filesystem;
using mst::test::expect_error;
using mst::test::GgufBuilder;
using mst::test::GgufWeightType;

class GgufModel : public ::testing::Test {
protected:
    void SetUp() override { dir_ = mst::test::make_temp_dir("gguf_model"); }
    void TearDown() override { fs::remove_all(dir_); }

    std::string write_tiny(GgufWeightType type) {
        const std::string path = dir_ + "/tiny.gguf";
        mst::test::write_qwen3moe_gguf(mst::test::data_path("qwen3_moe_tiny"), path, type);
        return path;
    }

    // A qwen3moe header with every hyperparameter and a two-token vocabulary, and one
    // embedding: enough to reach the config and tokenizer. `edit` changes the metadata:
    // it is given each key's default adder and may skip or replace it.
    using Adders = std::map<std::string, std::function<void(GgufBuilder &)>>;
    std::string write_minimal(const std::function<void(Adders &)> &edit) {
        Adders adders;
        const auto u32 = [&](const std::string &key, uint32_t v) {
            adders[key] = [key, v](GgufBuilder &b) { b.add_u32(key, v); };
        };
        adders["general.architecture"] = [](GgufBuilder &b) { b.add_string("general.architecture", "qwen3moe"); };
        u32("qwen3moe.block_count", 1);
        u32("qwen3moe.embedding_length", 32);
        u32("qwen3moe.attention.head_count", 2);
        u32("qwen3moe.attention.head_count_kv", 1);
        u32("qwen3moe.expert_count", 2);
        u32("qwen3moe.expert_used_count", 1);
        u32("qwen3moe.expert_feed_forward_length", 32);
        adders["qwen3moe.attention.layer_norm_rms_epsilon"] = [](GgufBuilder &b) {
            b.add_f32("qwen3moe.attention.layer_norm_rms_epsilon", 1e-6f);
        };
        adders["tokenizer.ggml.model"] = [](GgufBuilder &b) { b.add_string("tokenizer.ggml.model", "gpt2"); };
        adders["tokenizer.ggml.pre"] = [](GgufBuilder &b) { b.add_string("tokenizer.ggml.pre", "qwen2"); };
        adders["tokenizer.ggml.tokens"] = [](GgufBuilder &b) { b.add_string_array("tokenizer.ggml.tokens", {"a", "b"}); };
        adders["tokenizer.ggml.token_type"] = [](GgufBuilder &b) { b.add_i32_array("tokenizer.ggml.token_type", {1, 1}); };
        adders["tokenizer.ggml.merges"] = [](GgufBuilder &b) { b.add_string_array("tokenizer.ggml.merges", {}); };
        edit(adders);
        GgufBuilder b;
        for (const auto &[key, add] : adders) add(b);
        b.add_tensor("token_embd.weight", mst::ggml_type::F32, {32, 2}, std::string(256, '\0'));
        const std::string path = dir_ + "/minimal.gguf";
        b.write(path);
        return path;
    }

    std::string dir_;
};

TEST_F(GgufModel, StackedExpertsOpenAsPerExpertViews) {
    const std::string path = write_tiny(GgufWeightType::F32);
    const auto gguf = mst::Checkpoint::open(path);
    const auto hf = mst::Checkpoint::open(mst::test::data_path("qwen3_moe_tiny"));
    ASSERT_NE(gguf->gguf(), nullptr);
    const mst::GgufTensor *stacked = gguf->gguf()->find_tensor("blk.2.ffn_up_exps.weight");
    ASSERT_NE(stacked, nullptr);
    EXPECT_EQ(stacked->shape(), (std::vector<int64_t>{8, 32, 64}));
    for (int e : {0, 3, 7}) {
        const std::string name = "model.layers.2.mlp.experts." + std::to_string(e) + ".up_proj.weight";
        const mst::TensorInfo &view = gguf->require(name, {32, 64});
        EXPECT_EQ(view.offset, stacked->offset + uint64_t(e) * 32 * 64 * 4) << name;
        EXPECT_EQ(view.nbytes, 32u * 64 * 4);
        EXPECT_EQ(gguf->read_f32(view), hf->read_f32(hf->require(name))) << name;
    }
    // Every tensor the checkpoint has, the GGUF has under the same name and shape.
    for (const mst::TensorInfo &t : hf->tensors()) {
        const mst::TensorInfo *g = gguf->find(t.name);
        ASSERT_NE(g, nullptr) << t.name;
        EXPECT_EQ(g->shape, t.shape) << t.name;
    }
    EXPECT_EQ(gguf->tensors().size(), hf->tensors().size());
}

// GGUF's Q8_0 block (an f16 scale, then 32 int8) is moestream's Q8 block: the views are
// Q8 and decode, through moestream's own dequantizer, to the values the writer encoded.
TEST_F(GgufModel, Q8_0IsReadAsMoestreamQ8) {
    const std::string path = write_tiny(GgufWeightType::Q8_0);
    const auto gguf = mst::Checkpoint::open(path);
    const auto hf = mst::Checkpoint::open(mst::test::data_path("qwen3_moe_tiny"));
    const std::string name = "model.layers.0.mlp.experts.5.down_proj.weight";
    const mst::TensorInfo &view = gguf->require(name, {64, 32});
    EXPECT_EQ(view.dtype, mst::DType::Q8);
    const std::vector<float> want = hf->read_f32(hf->require(name));
    const std::string blocks = mst::test::quantize_q8_0(want.data(), want.size());
    ASSERT_EQ(blocks.size(), view.nbytes);
    std::vector<float> decoded(want.size());
    for (size_t b = 0; b < want.size() / 32; ++b) {
        mst::BlockQ8 block;
        std::memcpy(&block, blocks.data() + b * 34, 34);
        for (int j = 0; j < 32; ++j) decoded[b * 32 + size_t(j)] = mst::half_to_float(block.d) * float(block.q[j]);
    }
    EXPECT_EQ(gguf->read_f32(view), decoded);
}

// GGML's K-quants are read as they are stored: each expert's view has the K-quant dtype
// and decodes, through moestream's dequantizer, to what the blocks' writer encoded. (A row
// that is not whole super-blocks is refused by the reader, test_gguf_reader.cpp.)
TEST_F(GgufModel, KQuantExpertsAreReadAsStored) {
    const std::pair<uint32_t, mst::DType> types[] = {
        {mst::ggml_type::Q2_K, mst::DType::GGML_Q2_K}, {mst::ggml_type::Q3_K, mst::DType::GGML_Q3_K},
        {mst::ggml_type::Q4_K, mst::DType::GGML_Q4_K}, {mst::ggml_type::Q5_K, mst::DType::GGML_Q5_K},
        {mst::ggml_type::Q6_K, mst::DType::GGML_Q6_K}};
    constexpr int64_t kRows = 3, kCols = 512, kExperts = 2;
    for (const auto &[ggml, dtype] : types) {
        std::vector<float> w(size_t(kExperts * kRows * kCols));
        for (size_t i = 0; i < w.size(); ++i) w[i] = 0.01f * float(int(i * 37 % 101) - 50);
        const uint64_t row_bytes = mst::dtype_row_bytes(dtype, kCols);
        std::string bytes(size_t(row_bytes) * kExperts * kRows, '\0');
        for (int64_t r = 0; r < kExperts * kRows; ++r)
            mst::quantize_row(dtype, w.data() + r * kCols, kCols, bytes.data() + r * row_bytes);
        GgufBuilder b;
        b.add_string("general.architecture", "qwen3moe");
        b.add_tensor("blk.0.ffn_gate_exps.weight", ggml, {kCols, kRows, kExperts}, bytes);
        const std::string path = dir_ + "/kquant.gguf";
        b.write(path);
        const auto gguf = mst::Checkpoint::open(path);
        const mst::TensorInfo &view = gguf->require("model.layers.0.mlp.experts.1.gate_proj.weight", {kRows, kCols});
        EXPECT_EQ(view.dtype, dtype);
        ASSERT_EQ(view.nbytes, row_bytes * kRows);
        std::vector<float> want(size_t(kRows * kCols));
        for (int64_t r = 0; r < kRows; ++r)
            mst::dequantize_row(dtype, bytes.data() + (kRows + r) * row_bytes, want.data() + r * kCols, kCols);
        EXPECT_EQ(gguf->read_f32(view), want) << mst::dtype_name(dtype);

    }
}

TEST_F(GgufModel, ConfigAndTokenizerComeFromTheMetadata) {
    const auto gguf = mst::Checkpoint::open(write_tiny(GgufWeightType::BF16));
    const mst::ModelConfig c = mst::read_model_config(*gguf);
    const mst::ModelConfig want = mst::read_model_config(*mst::Checkpoint::open(mst::test::data_path("qwen3_moe_tiny")));
    EXPECT_EQ(c.model_type, "qwen3_moe");
    EXPECT_EQ(c.hidden_size, want.hidden_size);
    EXPECT_EQ(c.n_layers, want.n_layers);
    EXPECT_EQ(c.n_heads, want.n_heads);
    EXPECT_EQ(c.n_kv_heads, want.n_kv_heads);
    EXPECT_EQ(c.head_dim, want.head_dim);
    EXPECT_EQ(c.intermediate_size, want.intermediate_size);
    EXPECT_EQ(c.moe_intermediate_size, want.moe_intermediate_size);
    EXPECT_EQ(c.n_experts, want.n_experts);
    EXPECT_EQ(c.n_experts_per_tok, want.n_experts_per_tok);
    EXPECT_EQ(c.norm_topk_prob, want.norm_topk_prob);
    EXPECT_EQ(c.mlp_only_layers, want.mlp_only_layers);  // [1]: the layer without ffn_gate_inp
    EXPECT_FLOAT_EQ(float(c.rms_norm_eps), float(want.rms_norm_eps));
    EXPECT_DOUBLE_EQ(c.rope_theta, want.rope_theta);
    EXPECT_EQ(c.vocab_size, want.vocab_size);
    EXPECT_EQ(c.tie_word_embeddings, false);
    const auto tokenizer = mst::read_model_tokenizer(*gguf);
    EXPECT_EQ(tokenizer->token_text(tokenizer->eos_id()), "<|im_end|>");
    EXPECT_TRUE(tokenizer->is_special(0));
    EXPECT_FALSE(tokenizer->is_special(1000));  // <think>: a USER_DEFINED token
}

TEST_F(GgufModel, UnsupportedArchitecturesAndTypesAreNamed) {
    const std::string glm = write_minimal([](Adders &a) {
        a["general.architecture"] = [](GgufBuilder &b) { b.add_string("general.architecture", "glm4moe"); };
    });
    expect_error([&] { mst::Checkpoint::open(glm); }, MST_ERR_UNSUPPORTED,
                 {"GGUF architecture 'glm4moe' is not supported", "qwen3moe, llama, deepseek2"});
    // Through the C API too, with the status and the message.
    mst_model *model = nullptr;
    EXPECT_EQ(mst_model_load(glm.c_str(), nullptr, &model), MST_ERR_UNSUPPORTED);
    EXPECT_NE(std::string(mst_last_error()).find("'glm4moe'"), std::string::npos) << mst_last_error();

    // `llama` runs as Mixtral; one without experts is a dense Llama, refused as such.
    GgufBuilder dense;
    dense.add_string("general.architecture", "llama");
    dense.add_u32("llama.attention.head_count", 2);
    dense.add_u32("llama.block_count", 1);
    dense.add_u32("llama.embedding_length", 32);
    dense.add_tensor("token_embd.weight", mst::ggml_type::F32, {32, 2}, std::string(256, '\0'));
    dense.write(dir_ + "/dense_llama.gguf");
    expect_error([&] { mst::read_model_config(*mst::Checkpoint::open(dir_ + "/dense_llama.gguf")); },
                 MST_ERR_UNSUPPORTED, {"'llama' without experts", "dense model"});

    GgufBuilder b;
    b.add_string("general.architecture", "qwen3moe");
    b.add_tensor("blk.0.ffn_gate_exps.weight", mst::ggml_type::IQ2_XXS, {256, 1, 2}, std::string(132, '\0'));
    b.write(dir_ + "/iq2_xxs.gguf");
    expect_error([&] { mst::Checkpoint::open(dir_ + "/iq2_xxs.gguf"); }, MST_ERR_UNSUPPORTED,
                 {"tensor 'blk.0.ffn_gate_exps.weight'", "ggml type IQ2_XXS", "cannot compute on"});

    GgufBuilder flat;
    flat.add_string("general.architecture", "qwen3moe");
    flat.add_tensor("blk.0.ffn_up_exps.weight", mst::ggml_type::F32, {8, 2}, std::string(64, '\0'));
    flat.write(dir_ + "/flat.gguf");
    expect_error([&] { mst::Checkpoint::open(dir_ + "/flat.gguf"); }, MST_ERR_BAD_FORMAT,
                 {"'blk.0.ffn_up_exps.weight'", "[2, 8]", "[experts, rows, cols]"});
}

TEST_F(GgufModel, MissingOrMistypedMetadataIsNamed) {
    const auto config_of = [](const std::string &path) { mst::read_model_config(*mst::Checkpoint::open(path)); };
    const std::string missing = write_minimal([](Adders &a) { a.erase("qwen3moe.expert_count"); });
    expect_error([&] { config_of(missing); }, MST_ERR_BAD_FORMAT, {"minimal.gguf", "lacks 'qwen3moe.expert_count'"});
    const std::string mistyped = write_minimal([](Adders &a) {
        a["qwen3moe.block_count"] = [](GgufBuilder &b) { b.add_string("qwen3moe.block_count", "three"); };
    });
    expect_error([&] { config_of(mistyped); }, MST_ERR_BAD_FORMAT, {"'qwen3moe.block_count' is STRING"});
    const std::string eps = write_minimal([](Adders &a) {
        a["qwen3moe.attention.layer_norm_rms_epsilon"] = [](GgufBuilder &b) {
            b.add_u32("qwen3moe.attention.layer_norm_rms_epsilon", 1);
        };
    });
    expect_error([&] { config_of(eps); }, MST_ERR_BAD_FORMAT, {"'qwen3moe.attention.layer_norm_rms_epsilon' is UINT32"});
    const std::string zero = write_minimal([](Adders &a) {
        a["qwen3moe.expert_count"] = [](GgufBuilder &b) { b.add_u32("qwen3moe.expert_count", 0); };
    });
    expect_error([&] { config_of(zero); }, MST_ERR_BAD_FORMAT, {"'qwen3moe.expert_count' is 0"});
    // Found by fuzz_gguf: a huge block_count ran the per-layer loops for minutes.
    const std::string layers = write_minimal([](Adders &a) {
        a["qwen3moe.block_count"] = [](GgufBuilder &b) { b.add_u32("qwen3moe.block_count", 1u << 30); };
    });
    expect_error([&] { config_of(layers); }, MST_ERR_BAD_FORMAT, {"'qwen3moe.block_count' is 1073741824, more than"});
    // The minimal file itself is a valid config.
    EXPECT_EQ(mst::read_model_config(*mst::Checkpoint::open(write_minimal([](Adders &) {}))).n_experts, 2);
}

TEST_F(GgufModel, UnsupportedOrBrokenTokenizersAreNamed) {
    const auto tokenizer_of = [](const std::string &path) { mst::read_model_tokenizer(*mst::Checkpoint::open(path)); };
    EXPECT_NO_THROW(tokenizer_of(write_minimal([](Adders &) {})));
    const std::string unigram = write_minimal([](Adders &a) {
        a["tokenizer.ggml.model"] = [](GgufBuilder &b) { b.add_string("tokenizer.ggml.model", "t5"); };
    });
    expect_error([&] { tokenizer_of(unigram); }, MST_ERR_UNSUPPORTED, {"tokenizer.ggml.model 't5'", "'llama'"});
    const std::string pre = write_minimal([](Adders &a) {
        a["tokenizer.ggml.pre"] = [](GgufBuilder &b) { b.add_string("tokenizer.ggml.pre", "mystery"); };
    });
    expect_error([&] { tokenizer_of(pre); }, MST_ERR_UNSUPPORTED, {"tokenizer.ggml.pre 'mystery'", "qwen2"});
    // Bytes that are not UTF-8 where tokenizer.json needs text (found by fuzz_gguf).
    const std::string bad_token = write_minimal([](Adders &a) {
        a["tokenizer.ggml.tokens"] = [](GgufBuilder &b) { b.add_string_array("tokenizer.ggml.tokens", {"a", "\xff"}); };
    });
    expect_error([&] { tokenizer_of(bad_token); }, MST_ERR_BAD_FORMAT, {"tokenizer.ggml.tokens[1] is not valid UTF-8"});
    const std::string bad_merge = write_minimal([](Adders &a) {
        a["tokenizer.ggml.merges"] = [](GgufBuilder &b) { b.add_string_array("tokenizer.ggml.merges", {"a \xc3"}); };
    });
    expect_error([&] { tokenizer_of(bad_merge); }, MST_ERR_BAD_FORMAT, {"tokenizer.ggml.merges[0] is not valid UTF-8"});
    const std::string bad_template = write_minimal([](Adders &a) {
        a["tokenizer.chat_template.x\xfe"] = [](GgufBuilder &b) { b.add_string("tokenizer.chat_template.x\xfe", "hi"); };
    });
    expect_error([&] { tokenizer_of(bad_template); }, MST_ERR_BAD_FORMAT, {"chat template 'tokenizer.chat_template.x"});
    const std::string types = write_minimal([](Adders &a) {
        a["tokenizer.ggml.token_type"] = [](GgufBuilder &b) { b.add_i32_array("tokenizer.ggml.token_type", {1}); };
    });
    expect_error([&] { tokenizer_of(types); }, MST_ERR_BAD_FORMAT, {"token_type has 1 entries", "tokens 2"});
    const std::string no_tokens = write_minimal([](Adders &a) { a.erase("tokenizer.ggml.tokens"); });
    expect_error([&] { tokenizer_of(no_tokens); }, MST_ERR_BAD_FORMAT, {"lacks 'tokenizer.ggml.tokens'"});
    const std::string eos = write_minimal([](Adders &a) {
        a["tokenizer.ggml.eos_token_id"] = [](GgufBuilder &b) { b.add_u32("tokenizer.ggml.eos_token_id", 9); };
    });
    expect_error([&] { tokenizer_of(eos); }, MST_ERR_BAD_FORMAT, {"tokenizer.ggml.eos_token_id is 9", "2 tokens"});
    const std::string dup = write_minimal([](Adders &a) {
        a["tokenizer.ggml.tokens"] = [](GgufBuilder &b) { b.add_string_array("tokenizer.ggml.tokens", {"a", "a"}); };
    });
    expect_error([&] { tokenizer_of(dup); }, MST_ERR_BAD_FORMAT, {"tokens[1] 'a' is already token 0"});
}

// tokenizer.ggml.pre "kimi-k2": Kimi K2's tiktoken split pattern (tokenization_kimi.py),
// which isolates runs of Han characters from the letters around them and cuts digits in
// threes. No npm reference has Kimi's tokenizer, so the ids are worked out by hand on a
// vocabulary of the 256 byte tokens (id = byte value) and three merges that only a wrong
// split would use or miss: "1 2", "12 3" (digits in threes make "123") and "½ w" (byte 0xBD
// of 好 followed by "w": merged only if "你好world" stayed one piece, as qwen2's and gpt-4o's
// patterns keep it).
TEST_F(GgufModel, KimiK2PreTokenizerIsolatesHanAndCutsDigitsInThrees) {
    std::vector<std::string> tokens;
    for (int byte = 0; byte < 256; ++byte) {
        std::string spelled;
        mst::byte_level::encode_append(std::string(1, char(byte)), spelled);
        tokens.push_back(spelled);
    }
    std::string half;  // byte 0xBD's spelling, "½"
    mst::byte_level::encode_append("\xbd", half);
    tokens.insert(tokens.end(), {"12", "123", half + "w"});
    const auto with_pre = [&](const char *pre) {
        return write_minimal([&](Adders &a) {
            a["tokenizer.ggml.pre"] = [pre](GgufBuilder &b) { b.add_string("tokenizer.ggml.pre", pre); };
            a["tokenizer.ggml.tokens"] = [&](GgufBuilder &b) { b.add_string_array("tokenizer.ggml.tokens", tokens); };
            a["tokenizer.ggml.token_type"] = [&](GgufBuilder &b) {
                b.add_i32_array("tokenizer.ggml.token_type", std::vector<int32_t>(tokens.size(), 1));
            };
            a["tokenizer.ggml.merges"] = [&](GgufBuilder &b) {
                b.add_string_array("tokenizer.ggml.merges", {"1 2", "12 3", half + " w"});
            };
        });
    };
    const std::string text = "\xe4\xbd\xa0\xe5\xa5\xbdworld 1234";  // 你好world 1234
    const auto kimi = mst::read_model_tokenizer(*mst::Checkpoint::open(with_pre("kimi-k2")));
    EXPECT_EQ(kimi->encode(text, false),
              (std::vector<int32_t>{0xe4, 0xbd, 0xa0, 0xe5, 0xa5, 0xbd, 'w', 'o', 'r', 'l', 'd', ' ', 257, '4'}));
    // The same vocabulary under gpt-4o keeps "你好world" whole (the merge across it applies).
    const auto gpt4o = mst::read_model_tokenizer(*mst::Checkpoint::open(with_pre("gpt-4o")));
    EXPECT_EQ(gpt4o->encode(text, false),
              (std::vector<int32_t>{0xe4, 0xbd, 0xa0, 0xe5, 0xa5, 258, 'o', 'r', 'l', 'd', ' ', 257, '4'}));
}

// The file's own summary: types per tensor group and the expert bytes one token reads,
// the same as the loaded model reports; `moestream info` prints both.
TEST_F(GgufModel, SummaryListsTypesPerGroupAndExpertBytesPerToken) {
    const std::string path = write_tiny(GgufWeightType::Q8_0);
    const mst::GgufSummary s = mst::summarize_gguf(*mst::Checkpoint::open(path)->gguf());
    EXPECT_EQ(s.architecture, "qwen3moe");
    EXPECT_EQ(s.n_moe_layers, 2);  // layer 1 is dense
    EXPECT_EQ(s.n_experts, 8);
    EXPECT_EQ(s.experts_per_token, 4);
    const uint64_t expert_bytes = 3 * (32 * 64 / 32 * 34);
    EXPECT_EQ(s.expert_bytes_per_token, 4 * 2 * expert_bytes);
    EXPECT_EQ(s.expert_bytes_total, 8 * 2 * expert_bytes);
    std::map<std::string, mst::GgufTensorGroup> groups;
    for (const mst::GgufTensorGroup &g : s.groups) groups[g.name] = g;
    EXPECT_EQ(groups.at("ffn_up_exps.weight").types, (std::map<std::string, uint64_t>{{"Q8_0", 2}}));
    EXPECT_TRUE(groups.at("ffn_up_exps.weight").routed_experts);
    EXPECT_EQ(groups.at("ffn_gate_inp.weight").types, (std::map<std::string, uint64_t>{{"F32", 2}}));
    EXPECT_FALSE(groups.at("ffn_gate_inp.weight").routed_experts);
    EXPECT_EQ(groups.at("attn_norm.weight").types, (std::map<std::string, uint64_t>{{"F32", 3}}));
    EXPECT_EQ(groups.at("token_embd.weight").types, (std::map<std::string, uint64_t>{{"Q8_0", 1}}));

    // By role: qwen3_moe_tiny has 3 layers (layer 1 dense), 8 experts and its own lm_head.
    std::map<std::string, mst::GgufRoleGroup> roles;
    uint64_t role_tensors = 0, role_bytes = 0;
    for (const mst::GgufRoleGroup &g : s.roles) {
        roles.emplace(mst::gguf_tensor_role_name(g.role), g);
        role_tensors += g.n_tensors;
        role_bytes += g.bytes;
    }
    EXPECT_EQ(role_tensors, s.n_tensors);
    EXPECT_EQ(role_bytes, s.tensor_bytes);
    using Types = std::map<std::string, uint64_t>;
    EXPECT_EQ(roles.at("routed experts").types, (Types{{"Q8_0", 6}}));
    EXPECT_EQ(roles.at("routed experts").bytes, s.expert_bytes_total);
    EXPECT_EQ(roles.at("router").types, (Types{{"F32", 2}}));
    EXPECT_EQ(roles.at("dense FFN").types, (Types{{"Q8_0", 3}}));
    EXPECT_EQ(roles.at("attention").types, (Types{{"Q8_0", 12}}));
    EXPECT_EQ(roles.at("embeddings").types, (Types{{"Q8_0", 1}}));
    EXPECT_EQ(roles.at("lm_head").types, (Types{{"Q8_0", 1}}));
    EXPECT_EQ(roles.at("norms").types, (Types{{"F32", 13}}));  // attn, ffn, q, k per layer; output
    EXPECT_EQ(roles.count("shared expert"), 0u);
    EXPECT_EQ(mst::gguf_tensor_role("blk.4.ffn_gate_inp_shexp.weight"), mst::GgufTensorRole::kSharedExpert);
    EXPECT_EQ(mst::gguf_tensor_role("blk.4.ffn_down_shexp.weight"), mst::GgufTensorRole::kSharedExpert);
    EXPECT_EQ(mst::gguf_tensor_role("blk.4.exp_probs_b.bias"), mst::GgufTensorRole::kRouter);
    EXPECT_EQ(mst::gguf_tensor_role("blk.4.ffn_gate_exps.bias"), mst::GgufTensorRole::kRoutedExperts);
    EXPECT_EQ(mst::gguf_tensor_role("blk.4.ssm_norm.weight"), mst::GgufTensorRole::kNorms);
    EXPECT_EQ(mst::gguf_tensor_role("blk.4.ssm_conv1d.weight"), mst::GgufTensorRole::kLinearAttention);
    EXPECT_EQ(mst::gguf_tensor_role("output.weight"), mst::GgufTensorRole::kLmHead);
    EXPECT_EQ(mst::gguf_tensor_role("output_norm.weight"), mst::GgufTensorRole::kNorms);
    EXPECT_EQ(mst::gguf_tensor_role("blk.4.attn_k_b.weight"), mst::GgufTensorRole::kAttention);

    mst_model_params p = mst::model_params();
    p.backend = "cpu";
    const mst::ModelHandle model(path, p);
    EXPECT_EQ(model.info().expert_bytes_per_token, s.expert_bytes_per_token);
    EXPECT_EQ(model.info().expert_bytes_each, expert_bytes);

    const mst::test::CliResult info = mst::test::run_cli(MST_CLI_PATH, {"info", "-m", path});
    const std::string out = info.out + info.err;
    EXPECT_EQ(info.status, 0) << out;
    std::fputs(out.c_str(), stdout);  // the listing, for the test log
    for (const char *part : {"architecture 'qwen3moe'", "ffn_down_exps.weight", "Q8_0 x2", "(routed experts, streamed)",
                             "8 per layer in 2 layers", "architecture:        qwen3_moe", "GGUF types by role:",
                             "routed experts                  6 tensors", "router                          2 tensors",
                             "norms                          13 tensors"})
        EXPECT_NE(out.find(part), std::string::npos) << "'" << part << "' is missing from:\n" << out;
}

// A split GGUF (llama.cpp's gguf-split layout): `info` on its first shard sums every
// shard's tensors, the same as for the whole file.
TEST_F(GgufModel, SummaryOfSplitFileCoversEveryShard) {
    const std::string path = write_tiny(GgufWeightType::Q8_0);
    const auto summary_of = [](const std::string &p) {
        const mst::File file = mst::File::open_read(p);
        mst::GgufFile gguf = mst::read_gguf(file);
        mst::open_gguf_shards(gguf);
        return mst::summarize_gguf(gguf);
    };
    const mst::GgufSummary whole = summary_of(path);
    const std::vector<std::string> shards = mst::test::split_gguf(path, dir_ + "/tiny", 3);
    ASSERT_EQ(shards.size(), 3u);
    const mst::GgufSummary split = summary_of(shards[0]);
    EXPECT_EQ(whole.n_files, 1u);
    EXPECT_EQ(split.n_files, 3u);
    EXPECT_EQ(split.n_tensors, whole.n_tensors);
    EXPECT_EQ(split.tensor_bytes, whole.tensor_bytes);
    EXPECT_EQ(split.expert_bytes_per_token, whole.expert_bytes_per_token);
    EXPECT_EQ(split.expert_bytes_total, whole.expert_bytes_total);
    ASSERT_EQ(split.roles.size(), whole.roles.size());
    for (size_t i = 0; i < whole.roles.size(); ++i) {
        EXPECT_EQ(split.roles[i].role, whole.roles[i].role);
        EXPECT_EQ(split.roles[i].n_tensors, whole.roles[i].n_tensors);
        EXPECT_EQ(split.roles[i].bytes, whole.roles[i].bytes);
        EXPECT_EQ(split.roles[i].types, whole.roles[i].types);
    }

    const mst::test::CliResult info = mst::test::run_cli(MST_CLI_PATH, {"info", "-m", shards[0]});
    const std::string out = info.out + info.err;
    EXPECT_EQ(info.status, 0) << out;
    for (const std::string &part : {std::string("split in 3 files"), std::to_string(whole.n_tensors) + " tensors",
                                   std::string("routed experts                  6 tensors"),
                                   std::string("8 per layer in 2 layers")})
        EXPECT_NE(out.find(part), std::string::npos) << "'" << part << "' is missing from:\n" << out;

    // A missing shard is an error naming it, with exit status 1 (not an abort).
    fs::remove(shards[2]);
    const mst::test::CliResult missing = mst::test::run_cli(MST_CLI_PATH, {"info", "-m", shards[0]});
    EXPECT_EQ(missing.status, 1) << missing.err;
    EXPECT_NE(missing.err.find("moestream info: I/O error"), std::string::npos) << missing.err;
    EXPECT_NE(missing.err.find(shards[2]), std::string::npos) << missing.err;
}

}  // namespace
