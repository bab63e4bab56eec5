// config.json: both RoPE spellings, multimodal wrappers, every real published config
// and fixture config, and a BAD_FORMAT naming the field for each kind of mistake.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "expect_error.h"
#include "format/model_config.h"
#include "mutation_fuzz.h"
#include "safetensors_writer.h"
#include "test_paths.h"

namespace {

using mst::ModelConfig;
using mst::parse_model_config;
using mst::test::expect_error;
using nlohmann::json;

const std::string kOrigin = "test/config.json";

ModelConfig parse_json(const json &j) { return parse_model_config(j.dump(), kOrigin); }

// A DeepSeek-like config in the older spelling (top-level rope_theta, rope_scaling).
json old_form() {
    return json::parse(R"({
      "architectures": ["DeepseekV3ForCausalLM"],
      "model_type": "deepseek_v3",
      "vocab_size": 1000, "hidden_size": 256, "num_hidden_layers": 4,
      "num_attention_heads": 8, "num_key_value_heads": 2, "head_dim": 48,
      "intermediate_size": 512, "moe_intermediate_size": 64,
      "n_routed_experts": 16, "num_experts_per_tok": 4, "n_shared_experts": 1,
      "norm_topk_prob": true, "rms_norm_eps": 1e-05,
      "rope_theta": 50000.0, "partial_rotary_factor": 0.5,
      "rope_scaling": {"type": "yarn", "factor": 40, "original_max_position_embeddings": 4096,
                       "beta_fast": 32, "beta_slow": 1, "mscale": 0.707, "mscale_all_dim": 1.0,
                       "attention_factor": 1.25, "truncate": false},
      "max_position_embeddings": 163840, "tie_word_embeddings": true, "attention_bias": true,
      "mlp_only_layers": [0, 3], "decoder_sparse_step": 2, "sliding_window": 4096,
      "layer_types": ["full_attention", "sliding_attention", "full_attention", "sliding_attention"],
      "eos_token_id": [1, 2], "bos_token_id": 0
    })");
}

// The same model as transformers 5 writes it: RoPE settings all in rope_parameters.
json new_form() {
    json j = old_form();
    json rope = j["rope_scaling"];
    rope.erase("type");
    rope["rope_type"] = "yarn";
    rope["rope_theta"] = 50000.0;
    rope["partial_rotary_factor"] = 0.5;
    j.erase("rope_scaling");
    j.erase("rope_theta");
    j.erase("partial_rotary_factor");
    j["rope_parameters"] = rope;
    return j;
}

void expect_same_fields(const ModelConfig &a, const ModelConfig &b) {
    EXPECT_EQ(a.model_type, b.model_type);
    EXPECT_EQ(a.outer_model_type, b.outer_model_type);
    EXPECT_EQ(a.architectures, b.architectures);
    EXPECT_EQ(a.vocab_size, b.vocab_size);
    EXPECT_EQ(a.hidden_size, b.hidden_size);
    EXPECT_EQ(a.n_layers, b.n_layers);
    EXPECT_EQ(a.n_heads, b.n_heads);
    EXPECT_EQ(a.n_kv_heads, b.n_kv_heads);
    EXPECT_EQ(a.head_dim, b.head_dim);
    EXPECT_EQ(a.intermediate_size, b.intermediate_size);
    EXPECT_EQ(a.moe_intermediate_size, b.moe_intermediate_size);
    EXPECT_EQ(a.n_experts, b.n_experts);
    EXPECT_EQ(a.n_experts_per_tok, b.n_experts_per_tok);
    EXPECT_EQ(a.n_shared_experts, b.n_shared_experts);
    EXPECT_EQ(a.shared_expert_intermediate_size, b.shared_expert_intermediate_size);
    EXPECT_EQ(a.norm_topk_prob, b.norm_topk_prob);
    EXPECT_EQ(a.rms_norm_eps, b.rms_norm_eps);
    EXPECT_EQ(a.rope_theta, b.rope_theta);
    EXPECT_EQ(a.partial_rotary_factor, b.partial_rotary_factor);
    EXPECT_EQ(a.rope_scaling.type, b.rope_scaling.type);
    EXPECT_EQ(a.rope_scaling.factor, b.rope_scaling.factor);
    EXPECT_EQ(a.rope_scaling.original_max_position_embeddings, b.rope_scaling.original_max_position_embeddings);
    EXPECT_EQ(a.rope_scaling.beta_fast, b.rope_scaling.beta_fast);
    EXPECT_EQ(a.rope_scaling.beta_slow, b.rope_scaling.beta_slow);
    EXPECT_EQ(a.rope_scaling.mscale, b.rope_scaling.mscale);
    EXPECT_EQ(a.rope_scaling.mscale_all_dim, b.rope_scaling.mscale_all_dim);
    EXPECT_EQ(a.rope_scaling.attention_factor, b.rope_scaling.attention_factor);
    EXPECT_EQ(a.rope_scaling.truncate, b.rope_scaling.truncate);
    EXPECT_EQ(a.rope_scaling.low_freq_factor, b.rope_scaling.low_freq_factor);
    EXPECT_EQ(a.rope_scaling.high_freq_factor, b.rope_scaling.high_freq_factor);
    EXPECT_EQ(a.max_position_embeddings, b.max_position_embeddings);
    EXPECT_EQ(a.tie_word_embeddings, b.tie_word_embeddings);
    EXPECT_EQ(a.attention_bias, b.attention_bias);
    EXPECT_EQ(a.mlp_only_layers, b.mlp_only_layers);
    EXPECT_EQ(a.decoder_sparse_step, b.decoder_sparse_step);
    EXPECT_EQ(a.sliding_window, b.sliding_window);
    EXPECT_EQ(a.layer_types, b.layer_types);
    EXPECT_EQ(a.eos_token_ids, b.eos_token_ids);
    EXPECT_EQ(a.bos_token_id, b.bos_token_id);
}

TEST(ModelConfig, OldFormFields) {
    const ModelConfig c = parse_json(old_form());
    EXPECT_EQ(c.model_type, "deepseek_v3");
    EXPECT_EQ(c.outer_model_type, "deepseek_v3");
    EXPECT_EQ(c.architectures, std::vector<std::string>{"DeepseekV3ForCausalLM"});
    EXPECT_EQ(c.vocab_size, 1000);
    EXPECT_EQ(c.hidden_size, 256);
    EXPECT_EQ(c.n_layers, 4);
    EXPECT_EQ(c.n_heads, 8);
    EXPECT_EQ(c.n_kv_heads, 2);
    EXPECT_EQ(c.head_dim, 48);
    EXPECT_EQ(c.intermediate_size, 512);
    EXPECT_EQ(c.moe_intermediate_size, 64);
    EXPECT_EQ(c.n_experts, 16);
    EXPECT_EQ(c.n_experts_per_tok, 4);
    EXPECT_EQ(c.n_shared_experts, 1);
    EXPECT_TRUE(c.norm_topk_prob);
    EXPECT_DOUBLE_EQ(c.rms_norm_eps, 1e-5);
    EXPECT_EQ(c.rope_theta, 50000.0);
    EXPECT_EQ(c.partial_rotary_factor, 0.5);
    EXPECT_EQ(c.rope_scaling.type, "yarn");
    EXPECT_EQ(c.rope_scaling.factor, 40.0);
    EXPECT_EQ(c.rope_scaling.original_max_position_embeddings, 4096);
    EXPECT_EQ(c.rope_scaling.beta_fast, 32.0);
    EXPECT_EQ(c.rope_scaling.beta_slow, 1.0);
    EXPECT_EQ(c.rope_scaling.mscale, 0.707);
    EXPECT_EQ(c.rope_scaling.mscale_all_dim, 1.0);
    EXPECT_EQ(c.rope_scaling.attention_factor, 1.25);
    EXPECT_FALSE(c.rope_scaling.truncate);
    EXPECT_EQ(c.max_position_embeddings, 163840);
    EXPECT_TRUE(c.tie_word_embeddings);
    EXPECT_TRUE(c.attention_bias);
    EXPECT_EQ(c.mlp_only_layers, (std::vector<int64_t>{0, 3}));
    EXPECT_EQ(c.decoder_sparse_step, 2);
    EXPECT_EQ(c.sliding_window, 4096);
    EXPECT_EQ(c.layer_types.size(), 4u);
    EXPECT_EQ(c.eos_token_ids, (std::vector<int64_t>{1, 2}));
    EXPECT_EQ(c.bos_token_id, 0);
    EXPECT_EQ(c.raw.at("n_routed_experts"), 16);
    EXPECT_EQ(c.outer_raw, old_form());
}

TEST(ModelConfig, TransformersFiveFormMatchesOldForm) {
    const ModelConfig a = parse_json(old_form());
    const ModelConfig b = parse_json(new_form());
    expect_same_fields(a, b);
    // "rope_type" wins over the older "type" when both are written.
    json both = old_form();
    both["rope_scaling"]["rope_type"] = "llama3";
    both["rope_scaling"]["low_freq_factor"] = 2.0;
    both["rope_scaling"]["high_freq_factor"] = 8.0;
    const ModelConfig c = parse_json(both);
    EXPECT_EQ(c.rope_scaling.type, "llama3");
    EXPECT_EQ(c.rope_scaling.low_freq_factor, 2.0);
    EXPECT_EQ(c.rope_scaling.high_freq_factor, 8.0);
}

TEST(ModelConfig, DefaultsForAbsentAndNullFields) {
    const ModelConfig c = parse_json(json::parse(R"({
      "model_type": "mixtral", "vocab_size": 32000, "hidden_size": 4096, "num_hidden_layers": 32,
      "num_attention_heads": 32, "head_dim": null, "intermediate_size": 14336,
      "num_local_experts": 8, "num_experts_per_tok": 2, "rope_scaling": null, "sliding_window": null,
      "eos_token_id": 2, "bos_token_id": null
    })"));
    EXPECT_EQ(c.head_dim, 128);    // hidden_size / num_attention_heads
    EXPECT_EQ(c.n_kv_heads, 32);   // num_attention_heads
    EXPECT_EQ(c.moe_intermediate_size, 14336);  // experts use intermediate_size
    EXPECT_EQ(c.n_experts, 8);
    EXPECT_EQ(c.rope_scaling.type, "default");
    EXPECT_EQ(c.rope_scaling.factor, 1.0);
    EXPECT_FALSE(c.rope_scaling.attention_factor.has_value());
    EXPECT_TRUE(c.rope_scaling.truncate);
    EXPECT_EQ(c.rope_theta, 10000.0);
    EXPECT_EQ(c.partial_rotary_factor, 1.0);
    EXPECT_EQ(c.rms_norm_eps, 1e-6);
    EXPECT_EQ(c.sliding_window, 0);
    EXPECT_EQ(c.decoder_sparse_step, 1);
    EXPECT_EQ(c.eos_token_ids, std::vector<int64_t>{2});
    EXPECT_FALSE(c.bos_token_id.has_value());
    EXPECT_TRUE(c.architectures.empty());

    // A dense config has no experts and no per-expert size.
    const ModelConfig dense = parse_json(json::parse(R"({"model_type": "qwen3", "vocab_size": 10,
      "hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4, "intermediate_size": 128,
      "eos_token_id": null})"));
    EXPECT_EQ(dense.n_experts, 0);
    EXPECT_EQ(dense.moe_intermediate_size, 0);
    EXPECT_TRUE(dense.eos_token_ids.empty());
}

TEST(ModelConfig, UseSlidingWindowFalseDisablesTheWindow) {
    json j = old_form();
    j["use_sliding_window"] = false;
    EXPECT_EQ(parse_json(j).sliding_window, 0);
    j["use_sliding_window"] = true;
    EXPECT_EQ(parse_json(j).sliding_window, 4096);
}

TEST(ModelConfig, WholeNumbersWrittenAsFloatsAreIntegers) {
    json j = old_form();
    j["max_position_embeddings"] = 4096.0;
    EXPECT_EQ(parse_json(j).max_position_embeddings, 4096);
    j["max_position_embeddings"] = 4096.5;
    expect_error([&] { parse_json(j); }, MST_ERR_BAD_FORMAT, {kOrigin, "'max_position_embeddings'", "integer"});
}

TEST(ModelConfig, TextConfigWrapper) {
    json inner = new_form();
    inner["model_type"] = "deepseek_v3_text";
    inner.erase("tie_word_embeddings");
    inner.erase("bos_token_id");
    inner.erase("architectures");
    const json wrapper = {{"model_type", "deepseek_vl"},
                          {"architectures", {"DeepseekVLForConditionalGeneration"}},
                          {"tie_word_embeddings", true},
                          {"bos_token_id", 7},
                          {"eos_token_id", 99},
                          {"vision_config", {{"hidden_size", 1152}}},
                          {"text_config", inner}};
    const ModelConfig c = parse_json(wrapper);
    EXPECT_EQ(c.model_type, "deepseek_v3_text");
    EXPECT_EQ(c.outer_model_type, "deepseek_vl");
    EXPECT_EQ(c.architectures, std::vector<std::string>{"DeepseekVLForConditionalGeneration"});
    EXPECT_EQ(c.hidden_size, 256);  // not the vision tower's
    EXPECT_EQ(c.n_experts, 16);
    EXPECT_EQ(c.rope_scaling.type, "yarn");
    EXPECT_EQ(c.rope_theta, 50000.0);
    EXPECT_TRUE(c.tie_word_embeddings);                      // from the wrapper
    EXPECT_EQ(c.bos_token_id, 7);                            // from the wrapper
    EXPECT_EQ(c.eos_token_ids, (std::vector<int64_t>{1, 2}));  // the text config's own
    EXPECT_EQ(c.raw.at("model_type"), "deepseek_v3_text");
    EXPECT_EQ(c.outer_raw.at("model_type"), "deepseek_vl");

    // Errors inside text_config say so.
    json bad = wrapper;
    bad["text_config"].erase("hidden_size");
    expect_error([&] { parse_json(bad); }, MST_ERR_BAD_FORMAT,
                 {kOrigin, "config.json lacks 'hidden_size' (in text_config)"});
    bad = wrapper;
    bad["text_config"]["rope_parameters"]["factor"] = "big";
    expect_error([&] { parse_json(bad); }, MST_ERR_BAD_FORMAT, {"'factor' (in text_config.rope_parameters)"});
    bad = wrapper;
    bad["text_config"] = "qwen";
    expect_error([&] { parse_json(bad); }, MST_ERR_BAD_FORMAT, {"'text_config'", "object"});
}

TEST(ModelConfig, MissingRequiredFields) {
    for (const char *field : {"model_type", "hidden_size", "num_hidden_layers", "num_attention_heads", "vocab_size"}) {
        SCOPED_TRACE(field);
        json j = old_form();
        j.erase(field);
        expect_error([&] { parse_json(j); }, MST_ERR_BAD_FORMAT,
                     {kOrigin + ": config.json lacks '" + std::string(field) + "'"});
        j[field] = nullptr;  // null is "not set"
        expect_error([&] { parse_json(j); }, MST_ERR_BAD_FORMAT, {"lacks '" + std::string(field) + "'"});
    }
}

TEST(ModelConfig, WrongJsonTypes) {
    struct Case { const char *field; json value; const char *wanted; };
    const Case cases[] = {
        {"hidden_size", "2048", "an integer"},
        {"num_hidden_layers", true, "an integer"},
        {"model_type", 3, "a string"},
        {"norm_topk_prob", "yes", "true or false"},
        {"rms_norm_eps", "1e-6", "a number"},
        {"rope_scaling", json::array({1, 2}), "an object"},
        {"rope_parameters", 10000, "an object"},
        {"eos_token_id", "</s>", "an integer or a list of integers"},
        {"eos_token_id", json::array({1, "2"}), "a list of integers"},
        {"architectures", "Foo", "a list of strings"},
        {"layer_types", json::array({1}), "a list of strings"},
        {"mlp_only_layers", 3, "a list of integers"},
        {"num_experts_per_tok", json::object(), "an integer"},
        {"vocab_size", 1e300, "an integer"},
        {"sliding_window", 18446744073709551615ull, "out of range"},
    };
    for (const Case &c : cases) {
        SCOPED_TRACE(c.field);
        json j = old_form();
        j[c.field] = c.value;
        expect_error([&] { parse_json(j); }, MST_ERR_BAD_FORMAT, {kOrigin, std::string("'") + c.field + "'", c.wanted});
    }
    json j = old_form();
    j["rope_scaling"]["truncate"] = "no";
    expect_error([&] { parse_json(j); }, MST_ERR_BAD_FORMAT, {"'truncate' (in rope_scaling)", "true or false"});
}

TEST(ModelConfig, BadValues) {
    struct Case { const char *field; json value; std::vector<std::string> parts; };
    const std::vector<Case> cases = {
        {"hidden_size", 0, {"'hidden_size'", "must be positive, not 0"}},
        {"num_attention_heads", -8, {"'num_attention_heads'", "must be positive, not -8"}},
        {"num_key_value_heads", 3, {"'num_attention_heads' = 8 is not a multiple of 'num_key_value_heads' = 3"}},
        {"num_key_value_heads", 0, {"'num_key_value_heads'", "must be positive"}},
        {"head_dim", 0, {"'head_dim'", "must be positive"}},
        {"num_experts_per_tok", 17, {"'num_experts_per_tok' = 17 exceeds the number of experts 'n_routed_experts' = 16"}},
        {"n_routed_experts", -1, {"'n_routed_experts' = -1"}},
        {"intermediate_size", -5, {"'intermediate_size' = -5"}},
        {"num_hidden_layers", 1 << 20, {"'num_hidden_layers' = 1048576 is outside"}},
        {"decoder_sparse_step", 0, {"'decoder_sparse_step'", "must be positive"}},
        {"mlp_only_layers", json::array({0, 4}), {"'mlp_only_layers' = 4 is outside [0, 3]"}},
        {"layer_types", json::array({"full_attention"}), {"'layer_types' has 1 entries"}},
        {"rope_theta", 0, {"'rope_theta'", "must be positive"}},
        {"rms_norm_eps", -1e-6, {"'rms_norm_eps'", "negative"}},
        {"partial_rotary_factor", 1.5, {"'partial_rotary_factor' must be in (0, 1]"}},
    };
    for (const Case &c : cases) {
        SCOPED_TRACE(c.field);
        json j = old_form();
        j[c.field] = c.value;
        try {
            parse_json(j);
            ADD_FAILURE() << "accepted " << c.field << " = " << c.value.dump();
        } catch (const mst::Error &e) {
            EXPECT_EQ(e.code(), MST_ERR_BAD_FORMAT);
            for (const std::string &part : c.parts) EXPECT_NE(std::string(e.what()).find(part), std::string::npos) << e.what();
        }
    }
    json j = old_form();
    j["rope_scaling"]["factor"] = 0;
    expect_error([&] { parse_json(j); }, MST_ERR_BAD_FORMAT, {"'factor' (in rope_scaling)", "must be positive"});
    j = new_form();
    j["rope_parameters"]["rope_theta"] = -1;
    expect_error([&] { parse_json(j); }, MST_ERR_BAD_FORMAT, {"'rope_theta' (in rope_parameters)"});
}

TEST(ModelConfig, NotJsonOrNotAnObject) {
    expect_error([] { parse_model_config("{\"model_type\": ", kOrigin); }, MST_ERR_BAD_FORMAT,
                 {kOrigin, "not valid JSON"});
    expect_error([] { parse_model_config("[1]", kOrigin); }, MST_ERR_BAD_FORMAT, {kOrigin, "not a JSON object"});
}

TEST(ModelConfig, UnknownModelTypeIsAccepted) {
    json j = old_form();
    j["model_type"] = "some_future_moe";
    EXPECT_EQ(parse_json(j).model_type, "some_future_moe");
}

TEST(ModelConfig, FileReading) {
    const std::string dir = mst::test::make_temp_dir("mst_config_");
    ASSERT_FALSE(dir.empty());
    const std::string path = dir + "/config.json";
    mst::test::write_file_bytes(path, old_form().dump(2));
    EXPECT_EQ(mst::parse_model_config_file(path).hidden_size, 256);
    mst::test::write_file_bytes(path, "{\"model_type\": \"x\"}");
    expect_error([&] { mst::parse_model_config_file(path); }, MST_ERR_BAD_FORMAT, {path, "lacks"});
    expect_error([&] { mst::parse_model_config_file(dir + "/absent.json"); }, MST_ERR_IO, {dir + "/absent.json"});
    std::filesystem::remove_all(dir);
}

std::string trim(const std::string &s) {
    const size_t b = s.find_first_not_of(' ');
    const size_t e = s.find_last_not_of(' ');
    return b == std::string::npos ? std::string() : s.substr(b, e - b + 1);
}

// The table in shared/configs/README.md: file | model_type | hidden | layers | experts | top-k | expert FFN.
TEST(ModelConfigShared, PublishedConfigsMatchTheirTable) {
    const std::string dir = mst::test::shared_path("configs");
    if (dir.empty()) GTEST_SKIP() << "no shared configs";
    std::ifstream readme(dir + "/README.md");
    ASSERT_TRUE(readme) << "configs/README.md missing";
    std::string line;
    std::vector<std::string> covered;
    while (std::getline(readme, line)) {
        if (line.rfind("| ", 0) != 0 || line.find(".json") == std::string::npos) continue;
        std::vector<std::string> cells;
        std::stringstream row(line.substr(1));
        for (std::string cell; std::getline(row, cell, '|');) cells.push_back(trim(cell));
        ASSERT_GE(cells.size(), 7u) << line;
        SCOPED_TRACE(cells[0]);
        const ModelConfig c = mst::parse_model_config_file(dir + "/" + cells[0]);
        covered.push_back(cells[0]);
        // "qwen3_5_moe (text: qwen3_5_moe_text)" or "kimi_k2 (DeepSeek-V3 design)".
        const std::string &type_cell = cells[1];
        EXPECT_EQ(c.outer_model_type, type_cell.substr(0, type_cell.find(' ')));
        const size_t text_at = type_cell.find("(text: ");
        const std::string text_type = text_at == std::string::npos
                                          ? c.outer_model_type
                                          : type_cell.substr(text_at + 7, type_cell.find(')', text_at) - text_at - 7);
        EXPECT_EQ(c.model_type, text_type);
        EXPECT_EQ(c.hidden_size, std::stoll(cells[2]));
        EXPECT_EQ(c.n_layers, std::stoll(cells[3]));
        EXPECT_EQ(c.n_experts, std::stoll(cells[4]));
        EXPECT_EQ(c.n_experts_per_tok, std::stoll(cells[5]));
        EXPECT_EQ(c.moe_intermediate_size, std::stoll(cells[6]));
    }
    // Every config file is in the table, so none goes unchecked.
    for (const auto &entry : std::filesystem::directory_iterator(dir)) {
        if (entry.path().extension() != ".json") continue;
        const std::string name = entry.path().filename().string();
        EXPECT_NE(std::find(covered.begin(), covered.end(), name), covered.end()) << name << " not in README table";
    }
    EXPECT_GE(covered.size(), 11u);
}

TEST(ModelConfigShared, PublishedConfigDetails) {
    const std::string dir = mst::test::shared_path("configs");
    if (dir.empty()) GTEST_SKIP() << "no shared configs";
    const ModelConfig dsv3 = mst::parse_model_config_file(dir + "/deepseek-v3.json");
    EXPECT_EQ(dsv3.rope_scaling.type, "yarn");
    EXPECT_EQ(dsv3.rope_scaling.factor, 40.0);
    EXPECT_EQ(dsv3.rope_scaling.original_max_position_embeddings, 4096);
    EXPECT_EQ(dsv3.rope_scaling.mscale_all_dim, 1.0);
    EXPECT_EQ(dsv3.n_shared_experts, 1);
    EXPECT_EQ(dsv3.eos_token_ids, std::vector<int64_t>{1});
    EXPECT_EQ(dsv3.head_dim, 7168 / 128);  // absent: MLA head sizes live in raw
    EXPECT_EQ(dsv3.raw.at("qk_rope_head_dim"), 64);

    const ModelConfig oss = mst::parse_model_config_file(dir + "/gpt-oss-120b.json");
    EXPECT_FALSE(oss.rope_scaling.truncate);
    EXPECT_EQ(oss.rope_theta, 150000.0);
    EXPECT_EQ(oss.sliding_window, 128);
    EXPECT_EQ(oss.layer_types.size(), 36u);
    EXPECT_TRUE(oss.attention_bias);

    const ModelConfig next = mst::parse_model_config_file(dir + "/qwen3-next-80b-a3b.json");
    EXPECT_EQ(next.partial_rotary_factor, 0.25);
    EXPECT_EQ(next.shared_expert_intermediate_size, 512);
    EXPECT_EQ(next.rope_theta, 1e7);

    const ModelConfig q35 = mst::parse_model_config_file(dir + "/qwen3.5-397b-a17b.json");
    EXPECT_EQ(q35.rope_theta, 1e7);
    EXPECT_EQ(q35.partial_rotary_factor, 0.25);
    EXPECT_EQ(q35.rope_scaling.type, "default");
    EXPECT_EQ(q35.layer_types.size(), 60u);
    EXPECT_EQ(q35.eos_token_ids, std::vector<int64_t>{248044});
    EXPECT_FALSE(q35.tie_word_embeddings);
    EXPECT_EQ(q35.n_kv_heads, 2);
    EXPECT_EQ(q35.head_dim, 256);

    const ModelConfig k25 = mst::parse_model_config_file(dir + "/kimi-k2.5.json");
    EXPECT_EQ(k25.rope_scaling.factor, 64.0);
    EXPECT_EQ(k25.architectures, std::vector<std::string>{"KimiK25ForConditionalGeneration"});
    EXPECT_TRUE(k25.raw.contains("quantization_config"));

    const ModelConfig mixtral = mst::parse_model_config_file(dir + "/mixtral-8x7b.json");
    EXPECT_EQ(mixtral.sliding_window, 0);
    EXPECT_EQ(mixtral.rope_theta, 1e6);
    EXPECT_EQ(mixtral.head_dim, 128);

    const ModelConfig olmoe = mst::parse_model_config_file(dir + "/olmoe-1b-7b.json");
    EXPECT_EQ(olmoe.rope_scaling.type, "default");
    EXPECT_FALSE(olmoe.raw.contains("rms_norm_eps"));  // the architecture default applies

    const ModelConfig q3 = mst::parse_model_config_file(dir + "/qwen3-30b-a3b.json");
    EXPECT_EQ(q3.sliding_window, 0);
    EXPECT_EQ(q3.bos_token_id, 151643);
}

// Every fixture's config parses and agrees with the fixture manifest.
TEST(ModelConfigShared, FixtureConfigsParse) {
    const std::string root = mst::test::shared_path("fixtures");
    if (root.empty()) GTEST_SKIP() << "no shared fixtures";
    std::ifstream manifest_file(root + "/manifest.json");
    ASSERT_TRUE(manifest_file);
    const json manifest = json::parse(manifest_file);
    int checked = 0;
    for (const json &fixture : manifest.at("fixtures")) {
        const std::string path = root + "/" + fixture.at("dir").get<std::string>() + "/config.json";
        SCOPED_TRACE(path);
        const ModelConfig c = mst::parse_model_config_file(path);
        EXPECT_EQ(c.model_type, fixture.at("model_type").get<std::string>());
        EXPECT_EQ(c.architectures, fixture.at("architectures").get<std::vector<std::string>>());
        EXPECT_EQ(c.n_experts_per_tok, fixture.at("num_experts_per_tok").get<int64_t>());
        EXPECT_EQ(c.hidden_size, 128);
        EXPECT_EQ(c.vocab_size, 704);
        EXPECT_GT(c.n_experts, c.n_experts_per_tok);
        EXPECT_GT(c.moe_intermediate_size, 0);
        ++checked;
    }
    EXPECT_GE(checked, 6);
    // Every config.json under fixtures parses, listed in the manifest or not.
    for (const auto &entry : std::filesystem::directory_iterator(root)) {
        const auto config = entry.path() / "config.json";
        if (!std::filesystem::exists(config)) continue;
        EXPECT_NO_THROW(mst::parse_model_config_file(config.string())) << config;
    }

    const ModelConfig oss = mst::parse_model_config_file(root + "/gpt_oss/config.json");
    EXPECT_EQ(oss.sliding_window, 8);
    EXPECT_EQ(oss.rope_scaling.type, "yarn");
    EXPECT_FALSE(oss.rope_scaling.truncate);
    EXPECT_EQ(oss.rope_scaling.original_max_position_embeddings, 64);
    EXPECT_EQ(oss.rope_theta, 150000.0);
    EXPECT_TRUE(oss.eos_token_ids.empty());
    const ModelConfig q35 = mst::parse_model_config_file(root + "/qwen3_5_moe/config.json");
    EXPECT_EQ(q35.partial_rotary_factor, 0.25);
    EXPECT_EQ(q35.layer_types.size(), 4u);
    EXPECT_EQ(q35.shared_expert_intermediate_size, 64);
    const ModelConfig ds = mst::parse_model_config_file(root + "/deepseek_v3/config.json");
    EXPECT_EQ(ds.rope_scaling.factor, 40.0);
    EXPECT_EQ(ds.rope_scaling.mscale_all_dim, 1.0);
    EXPECT_EQ(ds.n_experts, 16);
    const ModelConfig mixtral = mst::parse_model_config_file(root + "/mixtral/config.json");
    EXPECT_EQ(mixtral.head_dim, 32);  // null in the file
    EXPECT_EQ(mixtral.moe_intermediate_size, 96);
}

// Deterministic mutations of a valid config: parsing succeeds or throws mst::Error,
// and what it accepts satisfies the documented invariants.
TEST(ModelConfigFuzz, MutatedConfigsOnlyEverThrowMstError) {
    json wrapper = {{"model_type", "wrap"}, {"tie_word_embeddings", false}, {"text_config", new_form()}};
    const std::string inputs[] = {old_form().dump(1), wrapper.dump()};
    static const char *const kTokens[] = {"\"", "{", "}", "[", "]", ",", ":", "-", "0", "null", "true", "1e999",
                                          "-9223372036854775809", "18446744073709551615", "0.5", "[]", "{}", "\\u0000",
                                          "\"text_config\":", "\xc3"};
    std::mt19937_64 rng(12345);
    mst::test::expect_accepted_or_mst_error(4000, [&](int i) {
        std::string s = inputs[i % 2];
        const int n = 1 + int(rng() % 3);
        for (int m = 0; m < n; ++m) {
            const size_t pos = size_t(rng() % (s.size() + 1));
            switch (rng() % 4) {
                case 0: if (!s.empty()) s[pos % s.size()] = char(rng() & 0xff); break;
                case 1: s.resize(pos); break;
                case 2: s.insert(pos, kTokens[rng() % (sizeof kTokens / sizeof *kTokens)]); break;
                default: if (pos < s.size()) s.erase(pos, size_t(rng() % 12)); break;
            }
        }
        const ModelConfig c = parse_model_config(s, kOrigin);
        ASSERT_GT(c.hidden_size, 0);
        ASSERT_GT(c.n_layers, 0);
        ASSERT_GT(c.head_dim, 0);
        ASSERT_GT(c.n_kv_heads, 0);
        ASSERT_EQ(c.n_heads % c.n_kv_heads, 0);
        ASSERT_TRUE(c.n_experts == 0 || c.n_experts_per_tok <= c.n_experts);
    });
}

}  // namespace
