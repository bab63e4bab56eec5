// GGUF files made from qwen3_moe_tiny by tests/support/gguf_model_writer (llama.cpp's
// qwen3moe names, stacked experts, tokenizer.ggml.*) load through mst_model_load and
// compute the reference logits of golden.safetensors: F32 / BF16 (the checkpoint's
// bf16 weights, exactly) and F16 within the float bound of the golden suite, Q8_0 (every
// matrix but the router) within the q8 bounds, with experts streamed out of the GGUF
// file through every storage tier and a zero-byte expert cache, and greedy ids equal.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>
#include <tuple>
#include <vector>

#include "backends/cpu/quant_kernels.h"
#include "golden.h"
#include "golden_backends.h"
#include "golden_logits.h"
#include "gguf_logits.h"
#include "gguf_model_writer.h"
#include "moestream.hpp"
#include "prompt_logits.h"
#include "storage/storage_tier.h"
#include "test_paths.h"

namespace {

namespace fs = std::filesystem;
using mst::test::GgufWeightType;

using golden_suite::expect_logits_match;
using golden_suite::golden_all_logits;
using golden_suite::golden_prompt_session;
// The golden suite's float bounds (golden_logits.h).
constexpr double kFloatTolerance = golden_suite::kLogitTolerance, kFloatRowTolerance = golden_suite::kRowTolerance;
// Q8_0 quantizes the embedding, attention and lm_head as well as the experts: the packed
// format's bound for q8 dense weights on this dataset (test_golden_packed.cpp), which is
// looser than its bound for q8 experts alone (2e-2); the worst row at about 1.5x measured.
// Mixtral with every matrix in Q8_0: the packed format's bound for its q8 dense weights.
constexpr double kMixtralQ8Tolerance = 0.15;  // measured: 0.094
constexpr double kQ8Tolerance = 0.045, kQ8RowTolerance = 0.08;  // measured: 0.028 and 0.054

struct Case {
    GgufWeightType type;
    std::string type_name;
    std::string tier;
    bool direct_io = false;
};

std::string label(const Case &c) { return c.type_name + "_" + c.tier + (c.direct_io ? "_direct" : ""); }
void PrintTo(const Case &c, std::ostream *os) { *os << label(c); }

std::vector<Case> cases() {
    const std::vector<std::pair<GgufWeightType, std::string>> types = {
        {GgufWeightType::F32, "F32"}, {GgufWeightType::F16, "F16"}, {GgufWeightType::BF16, "BF16"},
        {GgufWeightType::Q8_0, "Q8_0"}};
    std::vector<Case> out;
    for (const auto &[type, name] : types)
        for (const std::string &tier : mst::available_storage_tiers()) {
            if (tier == "auto" || tier == "fault") continue;
            out.push_back({type, name, tier, false});
            if (tier == "uring" || tier == "pread") out.push_back({type, name, tier, true});
        }
    return out;
}

class GoldenGguf : public ::testing::TestWithParam<Case> {
protected:
    void SetUp() override {
        const std::string data = mst::test::data_path("qwen3_moe_tiny");
        golden_ = mst::test::load_golden(data + "/golden.safetensors");
        // Under the build tree (tmpfs refuses O_DIRECT), one directory per process: ctest
        // runs the cases in parallel.
        dir_ = (fs::current_path() / ("gguf_golden_" + std::to_string(::getpid()))).string();
        fs::create_directories(dir_);
        path_ = dir_ + "/tiny_" + GetParam().type_name + ".gguf";
        mst::test::write_qwen3moe_gguf(data, path_, GetParam().type);
    }
    void TearDown() override { fs::remove_all(dir_); }

    mst_model_params params(uint64_t cache_bytes) const {
        mst_model_params p = mst::model_params();
        p.backend = "cpu";
        p.storage = GetParam().tier.c_str();
        p.storage_direct_io = GetParam().direct_io ? 1 : 0;
        p.expert_cache_bytes = cache_bytes;
        return p;
    }

    // Loads the GGUF, or skips where O_DIRECT is refused (tmpfs, some file systems).
    std::unique_ptr<mst::ModelHandle> load(uint64_t cache_bytes) {
        const mst_model_params p = params(cache_bytes);
        try {
            return std::make_unique<mst::ModelHandle>(path_, p);
        } catch (const mst::Exception &e) {
            if (GetParam().direct_io) return nullptr;
            throw;
        }
    }

    std::vector<float> prefill(const mst::ModelHandle &model, uint32_t n_batch) {
        const mst::SessionHandle session = golden_prompt_session(model, golden_, n_batch);
        EXPECT_GT(session.stats().expert_bytes_read, 0u) << "experts must stream from the GGUF file";
        return golden_all_logits(session, golden_);
    }

    void expect_matches(const std::vector<float> &got, const std::string &what) {
        const bool q8 = GetParam().type == GgufWeightType::Q8_0;
        const golden_suite::LogitsError e =
            expect_logits_match(got, golden_.logits(), golden_.vocab, q8 ? kQ8Tolerance : kFloatTolerance,
                                q8 ? kQ8RowTolerance : kFloatRowTolerance, label(GetParam()), what);
        std::printf("%s %s: relative error %.3g, worst row %.3g\n", label(GetParam()).c_str(), what.c_str(), e.whole,
                    e.worst_row);
    }

    mst::test::Golden golden_;
    std::string dir_, path_;
};

TEST_P(GoldenGguf, LogitsMatchReferenceStreamingEveryExpert) {
    const auto model = load(0);  // a zero-byte cache: every expert read from the file every time
    if (!model) GTEST_SKIP() << "O_DIRECT is refused here: " << mst_last_error();
    const mst_model_info info = model->info();
    EXPECT_STREQ(info.architecture, "qwen3_moe");
    // An expert is its three matrices of 32 x 64 in the file's type.
    const uint64_t elems = 3 * 32 * 64;
    const uint64_t want_each = GetParam().type == GgufWeightType::F32    ? elems * 4
                               : GetParam().type == GgufWeightType::Q8_0 ? elems / 32 * 34
                                                                          : elems * 2;
    EXPECT_EQ(info.expert_bytes_each, want_each);
    expect_matches(prefill(*model, 0), "prefill");
    expect_matches(prefill(*model, 1), "decode");
}

TEST_P(GoldenGguf, GreedyIdsMatchReference) {
    const auto model = load(1ull << 30);
    if (!model) GTEST_SKIP() << "O_DIRECT is refused here: " << mst_last_error();
    mst::SessionHandle session(*model);
    mst_generate_params gp = mst::generate_params();
    gp.max_tokens = int32_t(golden_.greedy_ids.size());
    gp.sampler.temperature = 0.0f;
    gp.ignore_eos = 1;
    std::vector<int32_t> ids;
    session.generate(golden_.input_ids, gp, [&](int32_t token, std::string_view) {
        if (token >= 0) ids.push_back(token);
        return false;
    });
    EXPECT_EQ(ids, golden_.greedy_ids) << label(GetParam());
}

INSTANTIATE_TEST_SUITE_P(Qwen3MoeTiny, GoldenGguf, ::testing::ValuesIn(cases()),
                         [](const auto &param_info) { return label(param_info.param); });

// The tokenizer made from tokenizer.ggml.* encodes and decodes as the checkpoint's
// tokenizer.json does, special and added tokens included.
TEST(GgufTokenizer, MatchesTheCheckpointTokenizer) {
    const std::string data = mst::test::data_path("qwen3_moe_tiny");
    const std::string dir = mst::test::make_temp_dir("gguf_tokenizer");
    const std::string path = dir + "/tiny.gguf";
    mst::test::write_qwen3moe_gguf(data, path, GgufWeightType::BF16);
    mst_model_params p = mst::model_params();
    p.backend = "cpu";
    const mst::ModelHandle gguf(path, p), hf(data, p);
    for (const std::string text :
         {"Hello, world!", "<|im_start|>user\nWhat's 2+2?<|im_end|>\n", "<think>ok</think>  spaces\t\ttabs\n\n",
          "naïve café 東京 123456 don't I'LL", ""}) {
        const std::vector<int32_t> want = hf.tokenize(text);
        EXPECT_EQ(gguf.tokenize(text), want) << text;
        EXPECT_EQ(gguf.detokenize(want), hf.detokenize(want)) << text;
    }
    fs::remove_all(dir);
}

// Mixtral as llama.cpp stores it (architecture `llama` with experts, attn_q / attn_k rows
// interleaved per head, which the loader puts back): its reference logits and greedy ids,
// experts streamed with a zero-byte cache.
class GoldenGgufMixtral : public ::testing::TestWithParam<std::pair<GgufWeightType, std::string>> {};

TEST_P(GoldenGgufMixtral, LogitsAndGreedyIdsMatchReference) {
    const std::string data = mst::test::data_path("mixtral_tiny");
    const mst::test::Golden golden = mst::test::load_golden(data + "/golden.safetensors");
    const std::string dir = mst::test::make_temp_dir("gguf_mixtral");
    const std::string path = dir + "/mixtral_" + GetParam().second + ".gguf";
    mst::test::write_mixtral_gguf(data, path, GetParam().first);
    mst_model_params p = mst::model_params();
    p.backend = "cpu";
    p.expert_cache_bytes = 0;
    const mst::ModelHandle model(path, p);
    EXPECT_STREQ(model.info().architecture, "mixtral");
    const std::vector<float> got = mst::test::prompt_logits(model, golden.input_ids);
    const std::vector<float> &want = golden.logits();
    ASSERT_EQ(got.size(), want.size());
    const bool q8 = GetParam().first == GgufWeightType::Q8_0;
    const double err = mst::test::relative_error(got.data(), want.data(), int64_t(want.size()));
    std::printf("mixtral %s: relative error %.3g\n", GetParam().second.c_str(), err);
    EXPECT_LT(err, q8 ? kMixtralQ8Tolerance : kFloatTolerance);
    if (!q8) {
        EXPECT_EQ(mst::test::gguf_greedy_ids(model, golden.input_ids, golden.greedy_ids.size()), golden.greedy_ids);
    }
    fs::remove_all(dir);
}

INSTANTIATE_TEST_SUITE_P(MixtralTiny, GoldenGgufMixtral,
                         ::testing::Values(std::pair{GgufWeightType::F32, std::string("F32")},
                                           std::pair{GgufWeightType::BF16, std::string("BF16")},
                                           std::pair{GgufWeightType::Q8_0, std::string("Q8_0")}),
                         [](const auto &param_info) { return param_info.param.second; });

// The legacy GGML block types (core/ggml_legacy_quants.h) computed on as they are, every
// matrix but the router and the norms in the type (MXFP4: the experts, the rest Q8_0;
// IQ4_XS: no matrix of this model has rows of 256, so IQ4_XS files hold IQ4_NL, as
// llama.cpp writes them, and the kernel tests cover IQ4_XS). Experts stream from the file
// with a zero-byte cache, prefill and decode, on every backend. Two checks:
//  - against the reference logits. The q8 file's error (0.028) grows with the weights'
//    step, about 2^(8.5 - bits per weight) for these round-to-nearest quantizers, and so
//    do these: measured Q4_0 0.406 (4.5 bits; scaling predicts 0.45), Q4_1 0.312 (5 bits;
//    0.32), Q5_0 0.198 (5.5; 0.22), Q5_1 0.179 (6; 0.16), IQ4_NL 0.368 (4.5; 0.45),
//    MXFP4 experts 0.183. Each bound is about 1.25x its measurement.
//  - against the same model with every weight stored as the F32 values its blocks decode
//    to (write_qwen3moe_gguf_decoded): the same rounding computed in float, so what is
//    left is the kernels' own error, the rounding of the activations carried through three
//    layers. With 16-bit activations (the default but for Q4_1; all under MST_CPU_ACT_BITS=16,
//    ctest's ActivationBits_16.test_golden_gguf) that is 2^-16 of a block's largest value:
//    measured at most 2.3e-4, bound 1e-3. With 8-bit ones rounded as llama.cpp's (2^-8 of it,
//    and f16 scales; Q4_1 by default, every type under =8): measured 1.06e-2 (MXFP4) ..
//    2.47e-2 (Q4_0) on 2026-12-06, bound 3.5e-2.
struct LegacyCase {
    GgufWeightType type;
    std::string name;
    double bound;  // relative error of all logits against the reference
    mst::DType dtype;  // what moestream computes the type as (Q4_1 is its Q4)
};

class GoldenGgufLegacy : public ::testing::TestWithParam<std::tuple<LegacyCase, std::string>> {
protected:
    void SetUp() override {
        if (const std::string why = golden_suite::backend_unavailable(backend()); !why.empty()) GTEST_SKIP() << why;
    }
    const LegacyCase &legacy() const { return std::get<0>(GetParam()); }
    const std::string &backend() const { return std::get<1>(GetParam()); }

    // All logits of the golden prompt, prefill (n_batch 0) or one token at a time (1), on
    // this case's backend (the decoded model always on the CPU).
    std::vector<float> logits(const std::string &path, const mst::test::Golden &golden, uint32_t n_batch,
                              const std::string &backend) {
        mst_model_params p = mst::model_params();
        p.backend = backend.c_str();
        p.expert_cache_bytes = 0;
        const mst::ModelHandle model(path, p);
        mst_session_params sp = mst::session_params();
        sp.all_logits = 1;
        sp.n_batch = n_batch;
        mst::SessionHandle session(model, sp);
        session.eval(golden.input_ids);
        EXPECT_GT(session.stats().expert_bytes_read, 0u) << "experts must stream from the GGUF file";
        return mst::test::session_all_logits(session);
    }
};

TEST_P(GoldenGgufLegacy, LogitsMatchReferenceAndTheDecodedModel) {
    // The GPU backends keep their activations whatever the CPU takes.
    const bool int8 = backend() == "cpu" && mst::cpu_int8_activations_for(legacy().dtype);
    const double decoded_bound = int8 ? 3.5e-2 : 1e-3;
    const std::string data = mst::test::data_path("qwen3_moe_tiny");
    const mst::test::Golden golden = mst::test::load_golden(data + "/golden.safetensors");
    const std::string dir = mst::test::make_temp_dir("gguf_legacy");
    const std::string path = dir + "/tiny_" + legacy().name + ".gguf", decoded = dir + "/decoded.gguf";
    mst::test::write_qwen3moe_gguf(data, path, legacy().type);
    mst::test::write_qwen3moe_gguf_decoded(data, decoded, legacy().type);
    const std::vector<float> &want = golden.logits();
    const std::vector<float> in_float = logits(decoded, golden, 0, "cpu");
    for (const uint32_t n_batch : {0u, 1u}) {
        const std::string what = backend() + " " + (n_batch == 1 ? "decode" : "prefill");
        const std::vector<float> got = logits(path, golden, n_batch, backend());
        ASSERT_EQ(got.size(), want.size());
        const double err = mst::test::relative_error(got.data(), want.data(), int64_t(want.size()));
        const double err_decoded = mst::test::relative_error(got.data(), in_float.data(), int64_t(want.size()));
        std::printf("%s %s: relative error %.3g, against the decoded model %.3g\n", legacy().name.c_str(),
                    what.c_str(), err, err_decoded);
        RecordProperty(what + "_relative_error", std::to_string(err));
        RecordProperty(what + "_relative_error_decoded", std::to_string(err_decoded));
        EXPECT_LT(err, legacy().bound) << legacy().name << " " << what;
        EXPECT_LT(err_decoded, decoded_bound) << legacy().name << " " << what;
    }
    fs::remove_all(dir);
}

INSTANTIATE_TEST_SUITE_P(Qwen3MoeTiny, GoldenGgufLegacy,
                         ::testing::Combine(::testing::Values(
                                           LegacyCase{GgufWeightType::Q4_0, "Q4_0", 0.5, mst::DType::GGML_Q4_0},
                                           LegacyCase{GgufWeightType::Q4_1, "Q4_1", 0.39, mst::DType::Q4},
                                           LegacyCase{GgufWeightType::Q5_0, "Q5_0", 0.25, mst::DType::GGML_Q5_0},
                                           LegacyCase{GgufWeightType::Q5_1, "Q5_1", 0.225, mst::DType::GGML_Q5_1},
                                           LegacyCase{GgufWeightType::IQ4_NL, "IQ4_NL", 0.46, mst::DType::GGML_IQ4_NL},
                                           LegacyCase{GgufWeightType::IQ4_XS, "IQ4_XS", 0.46, mst::DType::GGML_IQ4_NL},
                                           LegacyCase{GgufWeightType::MXFP4, "MXFP4", 0.23, mst::DType::GGML_MXFP4}),
                                            ::testing::ValuesIn(golden_suite::golden_backends())),
                         [](const auto &param_info) {
                             return std::get<0>(param_info.param).name + "_" + std::get<1>(param_info.param);
                         });

// llama.cpp's gguf-py reads each file the writer makes with the names, keys and values
// llama.cpp expects (tests/reference/check_gguf_with_gguf_py.py): run where
// MST_GGUF_PY names a gguf-py directory (llama.cpp/gguf-py); MST_GGUF_PYTHON (default
// python3) names a Python with numpy.
TEST(GgufWriter, GgufPyReadsWhatItWrites) {
    const char *gguf_py = std::getenv("MST_GGUF_PY");
    if (!gguf_py || !*gguf_py) GTEST_SKIP() << "MST_GGUF_PY (a llama.cpp gguf-py directory) is not set";
    const char *python_env = std::getenv("MST_GGUF_PYTHON");
    const std::string python = python_env && *python_env ? python_env : "python3";
    const std::string data = mst::test::data_path("qwen3_moe_tiny");
    const std::string dir = mst::test::make_temp_dir("gguf_py_check");
    const std::string script = fs::path(MST_TEST_DATA_DIR).parent_path() / "reference/check_gguf_with_gguf_py.py";
    for (const auto &[type, name] : {std::pair{GgufWeightType::F32, "F32"}, {GgufWeightType::F16, "F16"},
                                     {GgufWeightType::BF16, "BF16"}, {GgufWeightType::Q8_0, "Q8_0"}}) {
        const std::string path = dir + "/tiny_" + name + ".gguf";
        mst::test::write_qwen3moe_gguf(data, path, type);
        const std::string command = python + " '" + script + "' '" + path + "' '" + data + "' '" + gguf_py + "'";
        EXPECT_EQ(std::system(command.c_str()), 0) << command;
        const std::string mixtral_data = mst::test::data_path("mixtral_tiny");
        const std::string mixtral = dir + "/mixtral_" + name + ".gguf";
        mst::test::write_mixtral_gguf(mixtral_data, mixtral, type);
        const std::string mixtral_command =
            python + " '" + script + "' '" + mixtral + "' '" + mixtral_data + "' '" + gguf_py + "'";
        EXPECT_EQ(std::system(mixtral_command.c_str()), 0) << mixtral_command;
    }
    fs::remove_all(dir);
}

}  // namespace
