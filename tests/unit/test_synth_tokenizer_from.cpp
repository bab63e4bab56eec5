// moestream synth --tokenizer-from: the synthesized model carries the trained model's own
// BPE tokenizer, so it splits text into the same ids as the trained model, and a
// --routing-from model calibrated and traced on them counts the same tokens as the trace
// it learns from. The vocabulary is raised to hold the tokenizer's ids when the config's is
// smaller, kept when larger; a missing tokenizer or a special id it lacks is named.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <span>

#include <nlohmann/json.hpp>

#include "convert/synthesize.h"
#include "core/error.h"
#include "core/file_io.h"
#include "expect_error.h"
#include "format/packed_format.h"
#include "model/loaded_model.h"
#include "moestream.h"
#include "router/route_trace_file.h"
#include "router/routing_stats.h"
#include "test_paths.h"

namespace mst {
namespace {

namespace fs = std::filesystem;
using test::data_path;
using test::expect_error;
using test::make_temp_dir;

std::unique_ptr<LoadedModel> load_cpu(const std::string &path) {
    LoadOptions lo;
    lo.backend = "cpu";
    return load_model(path, lo);
}

// The experts each sparse layer chose for `tokens`, one forward pass.
RouteTraceData record(LoadedModel &model, const std::vector<int32_t> &tokens) {
    std::map<size_t, std::vector<int32_t>> ids;
    ForwardOptions fo;
    fo.experts_per_token = model.experts_per_token;
    fo.route_trace.chosen = [&](size_t layer, int64_t n, int32_t k, const int32_t *i, const float *) {
        ids[layer].insert(ids[layer].end(), i, i + n * k);
    };
    std::vector<float> logits(size_t(model.config.vocab_size));
    ExpertIoStats io;
    const auto state = model.model->create_state(int32_t(tokens.size()));
    model.model->forward(*state, 0, std::span<const int32_t>(tokens), fo, logits.data(), io);
    std::vector<int32_t> layers;
    for (const auto &[l, v] : ids) layers.push_back(int32_t(l));
    const int32_t k = model.experts_per_token;
    RouteTraceData t = RouteTraceData::sized(int32_t(model.config.n_experts), k, 0, int64_t(tokens.size()), layers);
    for (size_t s = 0; s < layers.size(); ++s)
        for (int64_t tok = 0; tok < t.n_tokens; ++tok)
            for (int32_t j = 0; j < k; ++j) t.ids[t.at(tok, s) + size_t(j)] = ids[size_t(layers[s])][size_t(tok * k + j)];
    return t;
}

class SynthTokenizerFrom : public ::testing::Test {
protected:
    void SetUp() override { dir_ = make_temp_dir("synth_tokenizer_from"); }
    void TearDown() override { fs::remove_all(dir_); }

    // The trained Qwen3-MoE's config.json with `edit` applied, written into the test's folder.
    std::string edited_config(const std::function<void(nlohmann::json &)> &edit) {
        nlohmann::json c = nlohmann::json::parse(read_text_file(data_path("qwen3_moe_trained") + "/config.json", 1 << 20));
        edit(c);
        const std::string path = dir_ + "/config.json";
        std::ofstream(path) << c.dump(2);
        return path;
    }
    std::string dir_;
};

// The synthesized model encodes held-out text into exactly the trained model's ids (not
// bytes: the BPE merges are there, ~1.7 bytes a token) and decodes them back.
TEST_F(SynthTokenizerFrom, EncodesLikeTheTrainedModel) {
    const std::string trained = data_path("qwen3_moe_trained");
    SynthOptions o;
    o.tokenizer_from = trained;  // the checkpoint directory
    const SynthReport report = synthesize_model(trained + "/config.json", dir_ + "/bpe.mst", o);
    ASSERT_FALSE(report.notes.empty());
    EXPECT_NE(report.notes.back().find("tokenizer copied"), std::string::npos) << report.notes.back();

    const auto source = load_cpu(trained), synth = load_cpu(dir_ + "/bpe.mst");
    const std::string text = read_text_file(trained + "/heldout.txt", 1 << 24).substr(0, 6000);
    const std::vector<int32_t> want = source->tokenizer->encode(text, false);
    const std::vector<int32_t> got = synth->tokenizer->encode(text, false);
    EXPECT_EQ(got, want);
    EXPECT_LT(double(got.size()), 0.75 * double(text.size())) << "byte-level, not the trained BPE";
    EXPECT_EQ(synth->tokenizer->decode(got), text);
    EXPECT_EQ(synth->tokenizer->vocab_size(), source->tokenizer->vocab_size());
    EXPECT_EQ(synth->config.vocab_size, 1024);  // the config's 1024 rows hold the 1001 ids: kept
    // Special tokens written in the text are the trained model's too.
    EXPECT_EQ(synth->tokenizer->encode("<|im_start|>user", true), source->tokenizer->encode("<|im_start|>user", true));

    // A tokenizer.json named directly takes its tokenizer_config.json from beside it.
    SynthOptions file;
    file.tokenizer_from = trained + "/tokenizer.json";
    synthesize_model(trained + "/config.json", dir_ + "/file.mst", file);
    EXPECT_EQ(load_cpu(dir_ + "/file.mst")->tokenizer->encode(text, false), want);
}

// --routing-from with the trained tokenizer: the trace synth learns from and the synthesized
// model's routing over the same text count the same tokens, so the statistics compare id for id.
TEST_F(SynthTokenizerFrom, RoutingStatisticsOnTheSameIds) {
    const std::string trained = data_path("qwen3_moe_trained");
    const auto source = load_cpu(trained);
    // About 600 tokens: all of them are calibrated on (synth runs the first 1024).
    const std::string text = read_text_file(trained + "/heldout.txt", 1 << 24).substr(0, 1000);
    const std::vector<int32_t> tokens = source->tokenizer->encode(text, false);
    ASSERT_GT(tokens.size(), 64u);
    ASSERT_LT(tokens.size(), 1024u);
    const RouteTraceData trained_trace = record(*source, tokens);
    write_route_trace(dir_ + "/trained.trace", trained_trace);
    const std::string calibration = dir_ + "/calibration.txt";
    std::ofstream(calibration) << text;

    SynthOptions o;
    o.routing_from = dir_ + "/trained.trace";
    o.routing_text = calibration;
    o.tokenizer_from = trained;
    synthesize_model(trained + "/config.json", dir_ + "/learned.mst", o);
    const auto synth = load_cpu(dir_ + "/learned.mst");
    ASSERT_EQ(synth->tokenizer->encode(text, false), tokens);
    const RouteTraceData synth_trace = record(*synth, tokens);
    EXPECT_EQ(synth_trace.n_tokens, trained_trace.n_tokens);
    const RoutingStats want = routing_stats(trained_trace), got = routing_stats(synth_trace);
    ASSERT_EQ(got.layers.size(), want.layers.size());
    // Calibrated on these very tokens: each layer's usage entropy within 0.3 bits of the
    // trace's (of log2 64 = 6).
    for (size_t l = 0; l < want.layers.size(); ++l)
        EXPECT_NEAR(got.layers[l].entropy_bits, want.layers[l].entropy_bits, 0.3) << "sparse layer " << l;
}

TEST_F(SynthTokenizerFrom, RaisesASmallerVocabularyAndKeepsALargerOne) {
    const std::string trained = data_path("qwen3_moe_trained");
    SynthOptions o;
    o.tokenizer_from = trained;
    synthesize_model(edited_config([](nlohmann::json &c) { c["vocab_size"] = 512; }), dir_ + "/small.mst", o);
    const auto small = load_cpu(dir_ + "/small.mst");
    EXPECT_EQ(small->config.vocab_size, 1001);  // max id 1000 + 1
    const nlohmann::json stored =
        nlohmann::json::parse(*read_packed_contents(File::open_read(dir_ + "/small.mst")).find_metadata(packed::kConfigKey));
    EXPECT_EQ(stored["moestream_synthetic"]["source_vocab_size"], 512);

    synthesize_model(edited_config([](nlohmann::json &c) { c["vocab_size"] = 4096; }), dir_ + "/large.mst", o);
    EXPECT_EQ(load_cpu(dir_ + "/large.mst")->config.vocab_size, 4096);
}

TEST_F(SynthTokenizerFrom, NamesAMissingTokenizerAndAForeignSpecialId) {
    const std::string trained = data_path("qwen3_moe_trained");
    SynthOptions o;
    o.tokenizer_from = dir_;  // no tokenizer.json there
    expect_error([&] { synthesize_model(trained + "/config.json", dir_ + "/out.mst", o); }, MST_ERR_IO,
                 {"--tokenizer-from", "tokenizer.json"});
    EXPECT_FALSE(fs::exists(dir_ + "/out.mst"));

    o.tokenizer_from = trained;
    const std::string config = edited_config([](nlohmann::json &c) {
        c["vocab_size"] = 4096;
        c["eos_token_id"] = 3000;
    });
    expect_error([&] { synthesize_model(config, dir_ + "/out.mst", o); }, MST_ERR_INVALID_ARGUMENT,
                 {"eos_token_id 3000", "ids 0..1000"});

    // Through the C API: the field is read, the path named.
    mst_synthesize_params p;
    mst_synthesize_default_params(&p);
    const std::string missing = dir_ + "/none/tokenizer.json", out = dir_ + "/c.mst";
    p.tokenizer_from = missing.c_str();
    EXPECT_EQ(mst_synthesize((trained + "/config.json").c_str(), out.c_str(), &p, nullptr), MST_ERR_IO);
    EXPECT_NE(std::string(mst_last_error()).find(missing), std::string::npos) << mst_last_error();
    EXPECT_FALSE(fs::exists(out));
}

}  // namespace
}  // namespace mst
