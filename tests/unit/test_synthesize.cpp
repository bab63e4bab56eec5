// moestream synth (mst_synthesize): the file has the config's shapes (also cut to fewer
// layers, per-layer lists with it), every blob's checksum holds, every architecture the
// loader supports loads from it and generates finite logits (also at the real depth of
// the flagship configs), the tokenizer turns text into ids and back, the same seed gives
// the same bytes on any thread count, and bad configs fail naming the field.
#include <gtest/gtest.h>
#include <xxhash.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "convert/synth_weights.h"
#include "convert/synthesize.h"
#include "core/error.h"
#include "core/file_io.h"
#include "core/quant.h"
#include "expect_error.h"
#include "format/packed_format.h"
#include "moestream.hpp"
#include "test_paths.h"

namespace mst {
namespace {

namespace fs = std::filesystem;

std::string read_all(const std::string &path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

nlohmann::json tiny_qwen3_moe() {
    return {{"architectures", {"Qwen3MoeForCausalLM"}},
            {"model_type", "qwen3_moe"},
            {"hidden_size", 64},
            {"intermediate_size", 96},
            {"moe_intermediate_size", 32},
            {"num_hidden_layers", 4},
            {"mlp_only_layers", {1, 3}},
            {"num_attention_heads", 4},
            {"num_key_value_heads", 2},
            {"head_dim", 16},
            {"num_experts", 8},
            {"num_experts_per_tok", 2},
            {"norm_topk_prob", true},
            {"vocab_size", 600},
            {"bos_token_id", 300},
            {"eos_token_id", 301},
            {"rms_norm_eps", 1e-6},
            {"rope_theta", 1000000.0},
            {"max_position_embeddings", 4096},
            {"tie_word_embeddings", false}};
}

class Synthesize : public ::testing::Test {
protected:
    void SetUp() override { tmp_ = test::make_temp_dir("mst_synth_"); }
    void TearDown() override { fs::remove_all(tmp_); }

    std::string write_config(const nlohmann::json &config, const std::string &name = "config.json") {
        const std::string path = tmp_ + "/" + name;
        std::ofstream(path) << config.dump(2);
        return path;
    }

    std::string tmp_;
};

// Generates `n` tokens greedily after a prompt and checks every logit on the way.
void expect_finite_generation(const std::string &path, int n) {
    const ModelHandle model(path);
    SessionHandle session(model);
    std::vector<int32_t> ids = model.tokenize("Hello, streaming world!");
    ASSERT_FALSE(ids.empty());
    session.eval(ids);
    mst_sampler_params greedy = sampler_params();
    greedy.temperature = 0;
    for (int i = 0; i < n; ++i) {
        const std::vector<float> logits = session.logits();
        ASSERT_EQ(logits.size(), size_t(model.info().n_vocab));
        float lo = logits[0], hi = logits[0];
        for (float v : logits) {
            ASSERT_TRUE(std::isfinite(v)) << path << " token " << i;
            lo = std::min(lo, v);
            hi = std::max(hi, v);
        }
        EXPECT_GT(hi, lo) << "logits are constant: the weights carry no signal";
        const int32_t token = session.sample(greedy);
        session.eval({token});
    }
}

TEST_F(Synthesize, FileHasTheConfigsShapes) {
    const std::string config = write_config(tiny_qwen3_moe()), out = tmp_ + "/m.mst";
    SynthOptions options;
    options.experts = DType::Q4;
    const SynthReport report = synthesize_model(config, out, options);
    EXPECT_EQ(report.layers, 4);
    EXPECT_EQ(report.source_layers, 4);
    EXPECT_EQ(report.experts, 2u * 8u);
    EXPECT_EQ(report.file_bytes, fs::file_size(out));

    const PackedContents c = read_packed_contents(File::open_read(out));
    const nlohmann::json stored = nlohmann::json::parse(*c.find_metadata(packed::kConfigKey));
    EXPECT_EQ(stored["num_hidden_layers"], 4);
    EXPECT_EQ(stored["moestream_synthetic"]["source_num_hidden_layers"], 4);
    ASSERT_EQ(c.experts.size(), 4u);
    for (size_t l = 0; l < 4; ++l) {
        // mlp_only_layers 1 and 3 are dense.
        ASSERT_EQ(c.experts[l].size(), l % 2 ? 0u : 8u) << "layer " << l;
        for (const ExpertLayout &e : c.experts[l]) {
            ASSERT_EQ(e.parts.size(), 3u);
            EXPECT_EQ(e.parts[0].rows, 32);
            EXPECT_EQ(e.parts[0].cols, 64);
            EXPECT_EQ(e.parts[2].rows, 64);
            EXPECT_EQ(e.parts[2].cols, 32);
            for (const ExpertMatrix &m : e.parts) EXPECT_EQ(m.dtype, DType::Q4);
        }
    }
    bool embed = false, dense_mlp = false;
    for (const TensorInfo &t : c.tensors) {
        if (t.name == "model.embed_tokens.weight") {
            embed = true;
            EXPECT_EQ(t.shape, (std::vector<int64_t>{600, 64}));
        }
        if (t.name == "model.layers.1.mlp.gate_proj.weight") {
            dense_mlp = true;
            EXPECT_EQ(t.shape, (std::vector<int64_t>{96, 64}));
        }
        EXPECT_EQ(t.name.find(".experts."), std::string::npos) << t.name << " is an expert's, not resident";
    }
    EXPECT_TRUE(embed);
    EXPECT_TRUE(dense_mlp);
}

TEST_F(Synthesize, EveryBlobChecksumVerifies) {
    const std::string out = tmp_ + "/m.mst";
    synthesize_model(write_config(tiny_qwen3_moe()), out, SynthOptions{});
    const File file = File::open_read(out);
    const PackedContents c = read_packed_contents(file);
    size_t blobs = 0;
    for (const auto &layer : c.experts)
        for (const ExpertLayout &e : layer) {
            ASSERT_TRUE(e.blob.has_value());
            std::vector<uint8_t> bytes(size_t(e.blob->stored_bytes));
            file.pread_exact(bytes.data(), bytes.size(), e.blob->offset);
            EXPECT_EQ(XXH64(bytes.data(), bytes.size(), 0), e.blob->xxh64);
            EXPECT_EQ(e.blob->offset % packed::kAlignment, 0u);
            ++blobs;
        }
    EXPECT_EQ(blobs, 16u);
    // And the loader's own check of the resident section and every blob it reads.
    expect_finite_generation(out, 3);
}

TEST_F(Synthesize, TextGoesInAndComesOut) {
    const std::string out = tmp_ + "/m.mst";
    synthesize_model(write_config(tiny_qwen3_moe()), out, SynthOptions{});
    const ModelHandle model(out);
    const std::string text = "Grüße, experts! 123";
    const std::vector<int32_t> ids = model.tokenize(text);
    EXPECT_EQ(ids.size(), std::string(text).size());  // no merges: one token per byte
    EXPECT_EQ(model.detokenize(ids), text);
    EXPECT_EQ(model.info().eos_token_id, 301);
    // Filler ids decode to words.
    const std::string filler = model.detokenize({400, 401});
    EXPECT_FALSE(filler.empty());
    EXPECT_EQ(filler[0], ' ');
}

TEST_F(Synthesize, ExpertTypesAndDenseQ8) {
    for (const char *type : {"q8", "bf16"}) {
        const std::string out = tmp_ + "/" + type + ".mst";
        SynthOptions options;
        options.experts = std::string(type) == "q8" ? std::optional<DType>(DType::Q8) : std::nullopt;
        options.dense = DType::Q8;
        const SynthReport report = synthesize_model(write_config(tiny_qwen3_moe()), out, options);
        EXPECT_GT(report.quantized_tensors, 0u);
        const PackedContents c = read_packed_contents(File::open_read(out));
        EXPECT_EQ(c.experts[0][0].parts[0].dtype, std::string(type) == "q8" ? DType::Q8 : DType::BF16);
        for (const TensorInfo &t : c.tensors) {
            if (t.name.find("norm") != std::string::npos || t.name.find("mlp.gate.weight") != std::string::npos) {
                EXPECT_EQ(t.dtype, DType::BF16) << t.name << ": norms and routers stay as they are";
            }
            if (t.name.find("q_proj") != std::string::npos) {
                EXPECT_EQ(t.dtype, DType::Q8) << t.name;
            }
        }
        expect_finite_generation(out, 2);
    }
}

TEST_F(Synthesize, LayersCutTheDepthAndThePerLayerLists) {
    const std::string out = tmp_ + "/cut.mst";
    SynthOptions options;
    options.layers = 2;
    const SynthReport report = synthesize_model(write_config(tiny_qwen3_moe()), out, options);
    EXPECT_EQ(report.layers, 2);
    EXPECT_EQ(report.source_layers, 4);
    const PackedContents c = read_packed_contents(File::open_read(out));
    const nlohmann::json stored = nlohmann::json::parse(*c.find_metadata(packed::kConfigKey));
    EXPECT_EQ(stored["num_hidden_layers"], 2);
    EXPECT_EQ(stored["mlp_only_layers"], nlohmann::json::array({1}));
    EXPECT_EQ(stored["moestream_synthetic"]["source_num_hidden_layers"], 4);
    EXPECT_EQ(c.experts.size(), 2u);
    for (const TensorInfo &t : c.tensors) EXPECT_EQ(t.name.find("layers.2."), std::string::npos) << t.name;

    // Qwen3.5 (text_config, layer_types): the list is cut in the text model's scope.
    const std::string qwen35 = test::data_path("qwen3_5_moe_wrapped/config.json");
    const nlohmann::json source = nlohmann::json::parse(read_all(qwen35));
    const std::string out35 = tmp_ + "/q35.mst";
    options.layers = 3;
    synthesize_model(qwen35, out35, options);
    const PackedContents c35 = read_packed_contents(File::open_read(out35));
    const nlohmann::json stored35 = nlohmann::json::parse(*c35.find_metadata(packed::kConfigKey));
    const nlohmann::json &text = stored35["text_config"];
    EXPECT_EQ(text["num_hidden_layers"], 3);
    ASSERT_EQ(text["layer_types"].size(), 3u);
    for (size_t i = 0; i < 3; ++i) EXPECT_EQ(text["layer_types"][i], source["text_config"]["layer_types"][i]);
    EXPECT_EQ(c35.experts.size(), 3u);
    expect_finite_generation(out35, 2);
}

TEST_F(Synthesize, SameSeedSameBytesOnAnyThreadCount) {
    const std::string config = write_config(tiny_qwen3_moe());
    SynthOptions options;
    options.seed = 7;
    options.n_threads = 1;
    synthesize_model(config, tmp_ + "/a.mst", options);
    options.n_threads = 2;
    synthesize_model(config, tmp_ + "/b.mst", options);
    options.seed = 8;
    synthesize_model(config, tmp_ + "/c.mst", options);
    const std::string a = read_all(tmp_ + "/a.mst"), b = read_all(tmp_ + "/b.mst"), c = read_all(tmp_ + "/c.mst");
    ASSERT_FALSE(a.empty());
    EXPECT_TRUE(a == b) << "same seed, different bytes";
    EXPECT_EQ(a.size(), c.size());
    EXPECT_FALSE(a == c) << "a different seed gave the same bytes";
}

TEST_F(Synthesize, RefusesToOverwriteWithoutForce) {
    const std::string config = write_config(tiny_qwen3_moe()), out = tmp_ + "/m.mst";
    std::ofstream(out) << "precious";
    test::expect_error([&] { synthesize_model(config, out, SynthOptions{}); }, MST_ERR_IO, {out, "--force"});
    EXPECT_EQ(read_all(out), "precious");
    SynthOptions force;
    force.force = true;
    synthesize_model(config, out, force);
    EXPECT_NE(read_all(out), "precious");
    for (const auto &entry : fs::directory_iterator(tmp_))
        EXPECT_EQ(entry.path().string().find(".tmp."), std::string::npos) << entry.path();
}

TEST_F(Synthesize, ProgressCountsToTheEndAndCancelLeavesNothing) {
    const std::string config = write_config(tiny_qwen3_moe()), out = tmp_ + "/p.mst";
    uint64_t last = 0, total = 0;
    int calls = 0;
    const SynthReport r = synthesize_model(config, out, SynthOptions{}, [&](const ConvertProgress &p) {
        EXPECT_GE(p.done_bytes, last);
        last = p.done_bytes;
        total = p.total_bytes;
        ++calls;
        return true;
    });
    EXPECT_GT(calls, 1);
    EXPECT_EQ(last, total);
    EXPECT_GE(total, r.file_bytes);

    const std::string cancelled = tmp_ + "/cancelled.mst";
    int seen = 0;
    test::expect_error(
        [&] { synthesize_model(config, cancelled, SynthOptions{}, [&](const ConvertProgress &) { return ++seen < 3; }); },
        MST_ERR_CANCELLED, {"cancelled"});
    EXPECT_FALSE(fs::exists(cancelled));
    for (const auto &entry : fs::directory_iterator(tmp_))
        EXPECT_EQ(entry.path().string().find(".tmp."), std::string::npos) << entry.path();
}

TEST_F(Synthesize, BadConfigsNameWhatIsWrong) {
    nlohmann::json unknown = tiny_qwen3_moe();
    unknown["model_type"] = "olmoe";
    test::expect_error([&] { synthesize_model(write_config(unknown), tmp_ + "/u.mst", SynthOptions{}); },
                       MST_ERR_UNSUPPORTED, {"olmoe"});
    nlohmann::json missing = tiny_qwen3_moe();
    missing.erase("hidden_size");
    test::expect_error([&] { synthesize_model(write_config(missing), tmp_ + "/h.mst", SynthOptions{}); },
                       MST_ERR_BAD_FORMAT, {"hidden_size"});
    nlohmann::json no_experts = tiny_qwen3_moe();
    no_experts.erase("num_experts");
    test::expect_error([&] { synthesize_model(write_config(no_experts), tmp_ + "/e.mst", SynthOptions{}); },
                       MST_ERR_BAD_FORMAT, {"num_experts"});
    nlohmann::json deepseek = nlohmann::json::parse(read_all(test::data_path("deepseek_v3_tiny/config.json")));
    deepseek.erase("kv_lora_rank");
    test::expect_error([&] { synthesize_model(write_config(deepseek), tmp_ + "/k.mst", SynthOptions{}); },
                       MST_ERR_BAD_FORMAT, {"kv_lora_rank"});
    std::ofstream(tmp_ + "/broken.json") << "{\"model_type\": ";
    test::expect_error([&] { synthesize_model(tmp_ + "/broken.json", tmp_ + "/b.mst", SynthOptions{}); },
                       MST_ERR_BAD_FORMAT, {"broken.json"});
    SynthOptions too_deep;
    too_deep.layers = 5;
    test::expect_error([&] { synthesize_model(write_config(tiny_qwen3_moe()), tmp_ + "/d.mst", too_deep); },
                       MST_ERR_INVALID_ARGUMENT, {"--layers 5", "1..4"});
    nlohmann::json small_vocab = tiny_qwen3_moe();
    small_vocab["vocab_size"] = 200;
    small_vocab["bos_token_id"] = 0;
    small_vocab["eos_token_id"] = 1;
    test::expect_error([&] { synthesize_model(write_config(small_vocab), tmp_ + "/v.mst", SynthOptions{}); },
                       MST_ERR_INVALID_ARGUMENT, {"vocab_size 200"});
    for (const auto &entry : fs::directory_iterator(tmp_))
        EXPECT_NE(entry.path().extension(), ".mst") << entry.path() << " appeared despite the error";
}

TEST_F(Synthesize, CApiReportsAndRefuses) {
    const std::string config = write_config(tiny_qwen3_moe()), out = tmp_ + "/c.mst";
    mst_synthesize_params p;
    mst_synthesize_default_params(&p);
    p.layers = 2;
    p.experts = "q8";
    mst_synthesize_report r{};
    r.struct_size = sizeof r;
    ASSERT_EQ(mst_synthesize(config.c_str(), out.c_str(), &p, &r), MST_OK) << mst_last_error();
    EXPECT_EQ(r.layers, 2);
    EXPECT_EQ(r.source_layers, 4);
    EXPECT_EQ(r.expert_blobs, 8u);
    EXPECT_EQ(r.file_bytes, fs::file_size(out));
    p.experts = "q3";
    EXPECT_EQ(mst_synthesize(config.c_str(), (tmp_ + "/d.mst").c_str(), &p, nullptr), MST_ERR_INVALID_ARGUMENT);
    EXPECT_NE(std::string(mst_last_error()).find("q3"), std::string::npos);
}

// Optional tensors and preferred forms are there, as in the published checkpoints:
// gpt-oss's experts in MXFP4 (6 parts: blocks, scales, bias for each projection),
// DeepSeek's router correction bias.
TEST_F(Synthesize, PublishedFormsAreChosen) {
    const std::string gpt = tmp_ + "/gpt.mst", deepseek = tmp_ + "/ds.mst";
    synthesize_model(test::data_path("gpt_oss_tiny/config.json"), gpt, SynthOptions{});
    const PackedContents g = read_packed_contents(File::open_read(gpt));
    ASSERT_FALSE(g.experts.empty());
    ASSERT_FALSE(g.experts[0].empty());
    const ExpertLayout &e = g.experts[0][0];
    ASSERT_EQ(e.parts.size(), 6u);
    EXPECT_EQ(e.parts[0].dtype, DType::U8);
    EXPECT_EQ(e.parts[1].dtype, DType::U8);
    // The scales make the decoded weights' deviation about 1 / sqrt(hidden).
    const File file = File::open_read(gpt);
    std::vector<uint8_t> blob(size_t(e.blob->raw_bytes));
    file.pread_exact(blob.data(), blob.size(), e.blob->offset);
    const uint8_t scale = blob[size_t(e.parts[1].offset)];
    EXPECT_EQ(scale, mxfp4_scale_for_std(1.0f / std::sqrt(float(32 * e.parts[1].cols))));
    expect_finite_generation(gpt, 2);

    synthesize_model(test::data_path("deepseek_v3_tiny/config.json"), deepseek, SynthOptions{});
    const PackedContents d = read_packed_contents(File::open_read(deepseek));
    bool bias = false;
    for (const TensorInfo &t : d.tensors) bias |= t.name.find("e_score_correction_bias") != std::string::npos;
    EXPECT_TRUE(bias);
}

// The stored config says what the file holds: FP8's quantization_config goes (the
// weights are BF16 / Q4), gpt-oss's MXFP4 one stays (its experts are MXFP4).
TEST_F(Synthesize, QuantizationConfigFollowsWhatIsWritten) {
    const auto stored_config = [&](const std::string &data) {
        const std::string out = tmp_ + "/" + data + ".mst";
        synthesize_model(test::data_path(data + "/config.json"), out, SynthOptions{});
        const PackedContents c = read_packed_contents(File::open_read(out));
        return nlohmann::json::parse(*c.find_metadata(packed::kConfigKey));
    };
    const nlohmann::json fp8 = stored_config("deepseek_v3_fp8");
    EXPECT_FALSE(fp8.contains("quantization_config"));
    EXPECT_EQ(fp8["moestream_synthetic"]["removed"], nlohmann::json::array({"quantization_config"}));
    const nlohmann::json mxfp4 = stored_config("gpt_oss_mxfp4");
    ASSERT_TRUE(mxfp4.contains("quantization_config"));
    EXPECT_EQ(mxfp4["quantization_config"]["quant_method"], "mxfp4");
    EXPECT_TRUE(mxfp4["moestream_synthetic"]["removed"].empty());
}

// An FP8 config is written in the types asked for, and the report says how that
// compares with what `convert` makes of the published FP8 checkpoint.
TEST_F(Synthesize, Fp8ConfigSaysWhatItWritesInstead) {
    const std::string config = test::data_path("deepseek_v3_fp8/config.json"), out = tmp_ + "/fp8.mst";
    const SynthReport q4 = synthesize_model(config, out, SynthOptions{});
    ASSERT_EQ(q4.notes.size(), 2u);
    EXPECT_NE(q4.notes[0].find("FP8 experts written as q4, as `convert --experts q4` requantizes them"),
              std::string::npos) << q4.notes[0];
    EXPECT_NE(q4.notes[1].find("FP8 dense weights written as bf16, where `convert --dense bf16` keeps FP8"),
              std::string::npos) << q4.notes[1];
    SynthOptions kept;
    kept.experts = std::nullopt;
    kept.dense = DType::Q8;
    kept.force = true;
    const SynthReport bf16 = synthesize_model(config, out, kept);
    ASSERT_EQ(bf16.notes.size(), 2u);
    EXPECT_NE(bf16.notes[0].find("where `convert --experts bf16` keeps FP8"), std::string::npos) << bf16.notes[0];
    EXPECT_NE(bf16.notes[1].find("as `convert --dense q8` requantizes them"), std::string::npos) << bf16.notes[1];
    // Through the C ABI; a config without quantization has nothing to say.
    mst_synthesize_report r{};
    r.struct_size = sizeof r;
    ASSERT_EQ(mst_synthesize(config.c_str(), (tmp_ + "/c.mst").c_str(), nullptr, &r), MST_OK) << mst_last_error();
    EXPECT_NE(std::string(r.notes).find("FP8 experts written as q4"), std::string::npos);
    EXPECT_TRUE(synthesize_model(test::data_path("deepseek_v3_tiny/config.json"), tmp_ + "/t.mst", SynthOptions{})
                    .notes.empty());
}

TEST(SynthWeights, Mxfp4ScaleMatchesTheDeviation) {
    // Uniform e2m1 codes have a deviation of sqrt(8.5625) = 2.93; 2^-7 * 2.93 = 0.0229.
    EXPECT_EQ(mxfp4_scale_for_std(0.0229f), 127 - 7);
    EXPECT_EQ(mxfp4_scale_for_std(2.93f), 127);
    EXPECT_EQ(mxfp4_scale_for_std(1e-30f), 127 - 101);  // log2(1e-30 / 2.93) = -101.2
    EXPECT_EQ(mxfp4_scale_for_std(0.0f), 1);  // clamped: 0 would mean 2^-127
}

// Every architecture of tests/data: synthesized from its config alone, loaded, run.
class SynthesizeArchitecture : public Synthesize, public ::testing::WithParamInterface<const char *> {};

TEST_P(SynthesizeArchitecture, LoadsAndGeneratesFiniteLogits) {
    const std::string out = tmp_ + "/m.mst";
    synthesize_model(test::data_path(std::string(GetParam()) + "/config.json"), out, SynthOptions{});
    expect_finite_generation(out, 3);
}

INSTANTIATE_TEST_SUITE_P(Tiny, SynthesizeArchitecture,
                         ::testing::Values("qwen3_moe_tiny", "qwen3_5_moe_tiny", "qwen3_5_moe_wrapped",
                                           "qwen3_next_tiny", "deepseek_v3_tiny", "deepseek_v3_fp8", "kimi_k2_tiny",
                                           "mixtral_tiny", "gpt_oss_tiny", "gpt_oss_mxfp4"));

// The real depth of each flagship, with tiny widths: the weights' scale (1 / sqrt(fan_in)
// per matrix, norms 1) does not depend on width, so depth is what could make activations
// overflow. Per-layer patterns follow the real configs.
TEST_F(Synthesize, RealDepthsStayFinite) {
    struct Deep {
        const char *data;
        int64_t layers;
    };
    for (const Deep &d : {Deep{"qwen3_moe_tiny", 94}, Deep{"qwen3_5_moe_tiny", 60}, Deep{"deepseek_v3_tiny", 61},
                          Deep{"mixtral_tiny", 32}, Deep{"gpt_oss_tiny", 36}, Deep{"qwen3_next_tiny", 48}}) {
        SCOPED_TRACE(d.data);
        nlohmann::json config = nlohmann::json::parse(read_all(test::data_path(std::string(d.data) + "/config.json")));
        nlohmann::json &text = config.contains("text_config") ? config["text_config"] : config;
        const int64_t tiny_layers = text["num_hidden_layers"];
        text["num_hidden_layers"] = d.layers;
        if (text.contains("layer_types")) {
            // The tiny config's pattern, repeated (Qwen3.5: 3 linear, 1 full; gpt-oss: sliding, full).
            const nlohmann::json pattern = text["layer_types"];
            nlohmann::json types = nlohmann::json::array();
            for (int64_t i = 0; i < d.layers; ++i) types.push_back(pattern[size_t(i % tiny_layers)]);
            text["layer_types"] = types;
        }
        if (text.contains("mlp_only_layers")) text["mlp_only_layers"] = nlohmann::json::array();
        const std::string out = tmp_ + "/" + d.data + ".mst";
        synthesize_model(write_config(config, std::string(d.data) + ".json"), out, SynthOptions{});
        expect_finite_generation(out, 2);
        fs::remove(out);
    }
}

// Real shapes, on request (they take GBs of disk and minutes): MST_SYNTH_REAL_CONFIGS is a
// comma-separated list of CONFIG.json[:LAYERS] (no LAYERS: the full depth), synthesized
// into MST_SYNTH_REAL_DIR (default: the test's temporary directory), loaded, run for a
// few tokens with every logit checked, and deleted. bench/README.md lists what was run.
TEST_F(Synthesize, RealShapesOnRequest) {
    const char *list = std::getenv("MST_SYNTH_REAL_CONFIGS");
    if (!list || !*list) GTEST_SKIP() << "set MST_SYNTH_REAL_CONFIGS=config.json[:layers],... to run";
    const char *dir = std::getenv("MST_SYNTH_REAL_DIR");
    std::stringstream items(list);
    for (std::string item; std::getline(items, item, ',');) {
        SCOPED_TRACE(item);
        const size_t colon = item.rfind(':');
        SynthOptions options;
        std::string config = item;
        if (colon != std::string::npos) {
            config = item.substr(0, colon);
            options.layers = std::stoll(item.substr(colon + 1));
        }
        const std::string out = std::string(dir && *dir ? dir : tmp_.c_str()) + "/real.mst";
        options.force = true;
        const SynthReport r = synthesize_model(config, out, options);
        std::printf("%s: %lld of %lld layers, %.2f GiB in %.1f s (%.0f MiB/s)\n", config.c_str(), (long long)r.layers,
                    (long long)r.source_layers, double(r.file_bytes) / double(1ull << 30), r.seconds,
                    double(r.file_bytes) / double(1 << 20) / r.seconds);
        expect_finite_generation(out, 3);
        fs::remove(out);
    }
}

TEST(SynthWeights, DeviationAndMeanAsAsked) {
    for (DType t : {DType::BF16, DType::Q8, DType::Q4}) {
        const int64_t rows = 64, cols = 256;
        std::vector<uint8_t> bytes(size_t(rows) * dtype_row_bytes(t, cols));
        fill_weight_rows(t, {WeightFill::Uniform, 0.0f, 0.05f}, 42, 0, rows, cols, bytes.data());
        double sum = 0, sq = 0;
        std::vector<float> row(static_cast<size_t>(cols));
        for (int64_t r = 0; r < rows; ++r) {
            const uint8_t *src = bytes.data() + uint64_t(r) * dtype_row_bytes(t, cols);
            if (t == DType::BF16)
                convert_to_f32(t, src, row.data(), row.size());
            else
                dequantize_row(t, src, row.data(), cols);
            for (float v : row) {
                sum += v;
                sq += double(v) * v;
            }
        }
        const double n = double(rows * cols), mean = sum / n, sd = std::sqrt(sq / n - mean * mean);
        EXPECT_NEAR(sd, 0.05, 0.003) << dtype_name(t);
        EXPECT_NEAR(mean, 0.0, 0.002) << dtype_name(t);
    }
}

TEST(SynthWeights, RowsDoNotDependOnHowTheyAreSplit) {
    for (DType t : {DType::BF16, DType::Q8, DType::Q4}) {
        const int64_t rows = 10, cols = 70;  // a partial last block
        const uint64_t row_bytes = dtype_row_bytes(t, cols);
        std::vector<uint8_t> whole(size_t(rows * row_bytes)), parts(whole.size());
        fill_weight_rows(t, {WeightFill::Uniform, 0.0f, 0.1f}, 5, 0, rows, cols, whole.data());
        fill_weight_rows(t, {WeightFill::Uniform, 0.0f, 0.1f}, 5, 0, 3, cols, parts.data());
        fill_weight_rows(t, {WeightFill::Uniform, 0.0f, 0.1f}, 5, 3, 7, cols, parts.data() + 3 * row_bytes);
        EXPECT_EQ(whole, parts) << dtype_name(t);
        std::vector<uint8_t> other(whole.size());
        fill_weight_rows(t, {WeightFill::Uniform, 0.0f, 0.1f}, 6, 0, rows, cols, other.data());
        EXPECT_NE(whole, other) << dtype_name(t);
    }
    test::expect_error(
        [] {
            std::vector<uint8_t> b(64);
            fill_weight_rows(DType::Q8, {WeightFill::Constant, 1.0f, 0.0f}, 1, 0, 1, 32, b.data());
        },
        MST_ERR_INVALID_ARGUMENT, {"Q8"});
}

}  // namespace
}  // namespace mst
