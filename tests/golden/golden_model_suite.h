// The golden test suite every architecture runs on its datasets: logits against reference
// logits from Hugging Face transformers (the project's own tests/data sets and the
// independent ../shared fixtures), through batched prefill, token-by-token decode and
// uneven batches; greedy ids; decode-step logits; each lowered expert budget the dataset
// has (logits_topk{k}); a zero-byte expert cache; the cache shared across sessions; the
// tokenizer; and the sizes mst_model_info reports.
//
// A test file includes this header once, lists its datasets and instantiates the suite:
//   INSTANTIATE_TEST_SUITE_P(Datasets, GoldenModel, ::testing::ValuesIn(datasets()), golden_dataset_name);
// A dataset with an empty dir (a shared fixture that is absent) is skipped; a project
// dataset names its dir whether or not it exists, so a missing one fails. A file with
// tests of its own for an architecture derives a fixture from GoldenModel (load,
// prefill_logits, all_logits, expect_matches) and instantiates it over the same datasets.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <functional>
#include <filesystem>
#include <ostream>
#include <string>
#include <vector>

#include "golden_backends.h"
#include "golden_logits.h"

#include "format/checkpoint.h"
#include "golden.h"
#include "moestream.hpp"
#include "test_paths.h"

namespace golden_suite {

struct GoldenDataset {
    std::string name;
    std::string dir;  // "" when absent (a shared fixture without ../shared)
    // Bound on the relative error of all logits; a dataset whose reference departs from
    // float32 arithmetic may need more (its test file says why).
    double logit_tolerance = kLogitTolerance;
    // The reference's `logits` and `greedy_ids` were made with RoPE frequencies rounded to
    // bf16 (the shared fixtures: transformers holding the model in bf16); its
    // `logits_topk*` with float32 ones. Loaded to match through rope_bf16_frequencies.
    bool bf16_rope_reference = false;
    std::string backend = "cpu";  // set by with_backends
    // Reference matrices (logits_decode, logits_topk{k}) the dataset must hold: without
    // one, its tests fail instead of skipping the comparisons that need it.
    std::vector<std::string> required_matrices = {};
    // Checkpoint tensors the architecture does not read, by name prefix (a vision tower, a
    // multi-token-prediction head): neither parameters nor resident weights.
    std::vector<std::string> unread_tensor_prefixes = {};
    // FP8 weights the architecture holds dequantised to float32 (ones not multiplied
    // through matmul_block_fp8, such as DeepSeek-V3's kv_b_proj), by name suffix: resident
    // as 4 bytes an element, their block scales not kept. Other FP8 weights stay FP8.
    std::vector<std::string> fp8_dequantized_suffixes = {};
};

// GoogleTest prints a parameter with this (found by argument-dependent lookup).
inline void PrintTo(const GoldenDataset &d, std::ostream *os) { *os << d.name << " (" << d.dir << ")"; }

inline std::string golden_dataset_name(const ::testing::TestParamInfo<GoldenDataset> &info) { return info.param.name; }

class GoldenModel : public ::testing::TestWithParam<GoldenDataset> {
protected:
    void SetUp() override {
        if (GetParam().dir.empty()) GTEST_SKIP() << "shared fixture " << GetParam().name << " is absent";
        if (const std::string why = backend_unavailable(GetParam().backend); !why.empty()) GTEST_SKIP() << why;
        ASSERT_TRUE(std::filesystem::exists(GetParam().dir + "/golden.safetensors"))
            << GetParam().dir << " is missing: the project's own data must be present";
        golden_ = mst::test::load_golden(GetParam().dir + "/golden.safetensors");
        ASSERT_FALSE(golden_.input_ids.empty()) << GetParam().dir;
        for (const std::string &name : GetParam().required_matrices)
            ASSERT_TRUE(golden_.matrices.contains(name)) << GetParam().dir << " lacks " << name;
    }

    mst::ModelHandle load(uint64_t cache_bytes = 1ull << 30, int32_t experts_per_token = 0, bool bf16_rope = true) {
        mst_model_params p = mst::model_params();
        p.backend = GetParam().backend.c_str();
        p.expert_cache_bytes = cache_bytes;
        p.experts_per_token = experts_per_token;
        p.rope_bf16_frequencies = bf16_rope && GetParam().bf16_rope_reference;
        return mst::ModelHandle(GetParam().dir, p);
    }

    // Prefill the prompt in batches of n_batch and return the logits of every position.
    std::vector<float> prefill_logits(const mst::ModelHandle &model, uint32_t n_batch) {
        return all_logits(golden_prompt_session(model, golden_, n_batch));
    }

    // The logits of every position of the session's prompt (made with all_logits = 1).
    std::vector<float> all_logits(const mst::SessionHandle &session) { return golden_all_logits(session, golden_); }

    void expect_matches(const std::vector<float> &got, const std::vector<float> &want, const std::string &what) {
        expect_logits_match(got, want, golden_.vocab, backend_tolerance(GetParam().backend, GetParam().logit_tolerance),
                            kRowTolerance, GetParam().name, what);
    }

    mst::test::Golden golden_;
};

TEST_P(GoldenModel, PrefillLogitsMatchReference) {
    const mst::ModelHandle model = load();
    expect_matches(prefill_logits(model, 0), golden_.logits(), "prefill");
}

TEST_P(GoldenModel, TokenByTokenDecodeMatchesReference) {
    // n_batch 1 runs every position through the single-token decode path.
    const mst::ModelHandle model = load();
    expect_matches(prefill_logits(model, 1), golden_.logits(), "decode");
}

TEST_P(GoldenModel, UnevenBatchesMatchReference) {
    const mst::ModelHandle model = load();
    expect_matches(prefill_logits(model, 5), golden_.logits(), "batch5");
}

TEST_P(GoldenModel, GreedyIdsMatchReference) {
    const mst::ModelHandle model = load();
    mst::SessionHandle session(model);
    mst_generate_params gp = mst::generate_params();
    gp.max_tokens = int32_t(golden_.greedy_ids.size());
    gp.sampler.temperature = 0.0f;
    gp.ignore_eos = 1;
    std::vector<int32_t> ids;
    const mst_stop_reason reason = session.generate(golden_.input_ids, gp, [&](int32_t token, std::string_view) {
        if (token >= 0) ids.push_back(token);
        return false;
    });
    EXPECT_EQ(reason, MST_STOP_MAX_TOKENS);
    EXPECT_EQ(ids, golden_.greedy_ids);
}

TEST_P(GoldenModel, DecodeLogitsMatchReference) {
    auto it = golden_.matrices.find("logits_decode");
    if (it == golden_.matrices.end()) GTEST_SKIP() << "dataset has no logits_decode";
    const mst::ModelHandle model = load();
    mst::SessionHandle session(model);
    session.eval(golden_.input_ids);
    std::vector<float> got;
    for (size_t i = 0; i < golden_.greedy_ids.size(); ++i) {
        const std::vector<float> row = session.logits();
        got.insert(got.end(), row.begin(), row.end());
        session.eval({golden_.greedy_ids[i]});
    }
    expect_matches(got, it->second, "decode_steps");
}

TEST_P(GoldenModel, LowerExpertBudgetsMatchReference) {
    int n_budgets = 0;
    for (const auto &[name, matrix] : golden_.matrices) {
        const std::string prefix = "logits_topk";
        if (name.rfind(prefix, 0) != 0) continue;
        const int32_t k = std::stoi(name.substr(prefix.size()));
        const mst::ModelHandle model = load(1ull << 30, k, false);
        EXPECT_EQ(model.info().experts_per_token, k);
        expect_matches(prefill_logits(model, 0), matrix, name);
        ++n_budgets;
    }
    if (n_budgets == 0) GTEST_SKIP() << "dataset has no logits_topk{k}";
}

// The expert store's statistics of a prefill that goes through the host. On a backend that
// holds every expert of a layer and groups a prefill's tokens by expert itself (Vulkan,
// docs/gpu_prefill.md "Grouping a prefill's experts on the device"), a warm prefill reads
// and looks up no expert on the host; MST_VULKAN_DEVICE_GROUPING=0 keeps the host path.
inline mst::ModelHandle load_with_host_grouping(const std::function<mst::ModelHandle()> &load) {
    ::setenv("MST_VULKAN_DEVICE_GROUPING", "0", 1);
    mst::ModelHandle model = load();
    ::unsetenv("MST_VULKAN_DEVICE_GROUPING");
    return model;
}

TEST_P(GoldenModel, StreamingWithZeroCacheGivesSameLogits) {
    // A zero budget keeps no expert: every expert of every token is read from disk.
    const mst::ModelHandle uncached = load_with_host_grouping([&] { return load(0); });
    expect_matches(prefill_logits(uncached, 0), golden_.logits(), "uncached");
    mst::SessionHandle session(uncached);
    session.eval(golden_.input_ids);
    const mst_session_stats stats = session.stats();
    EXPECT_GT(stats.expert_bytes_read, 0u);
    EXPECT_EQ(stats.expert_cache_hits, 0u);
    EXPECT_EQ(uncached.memory().expert_cache_bytes, 0u);
}

TEST_P(GoldenModel, CacheServesRepeatedExperts) {
    const mst::ModelHandle model = load_with_host_grouping([&] { return load(); });
    mst::SessionHandle first(model);
    first.eval(golden_.input_ids);
    const uint64_t read_first = first.stats().expert_bytes_read;
    mst::SessionHandle second(model);  // sessions share the model's expert cache
    second.eval(golden_.input_ids);
    EXPECT_GT(read_first, 0u);
    EXPECT_EQ(second.stats().expert_bytes_read, 0u);
    EXPECT_GT(second.stats().expert_cache_hits, 0u);
}

TEST_P(GoldenModel, TokenizerReproducesPromptIds) {
    const mst::ModelHandle model = load();
    const std::string prompt = model.detokenize(golden_.input_ids);
    EXPECT_EQ(model.tokenize(prompt), golden_.input_ids);
}

TEST_P(GoldenModel, InfoCountsParametersAndExpertBytes) {
    // Expected values from the checkpoint's tensor table by the Hugging Face naming: every
    // tensor under ".experts." is a routed expert; an MXFP4 `_blocks` byte holds two
    // parameters and its `_scales` none; an FP8 weight's block scales (`_scale_inv`) are
    // no parameters either, but are bytes of the expert or resident weight they scale.
    // compressed-tensors' `weight_packed` holds the parameters its `weight_shape` gives and
    // its `weight_scale` none (bytes, like FP8 scales); `weight_shape` itself is read at
    // load time and held nowhere. Tensors the dataset says the architecture does not read
    // count for nothing.
    const GoldenDataset &d = GetParam();
    auto any_prefix = [](const std::string &name, const std::vector<std::string> &prefixes) {
        return std::ranges::any_of(prefixes, [&](const std::string &p) { return name.starts_with(p); });
    };
    auto any_suffix = [](const std::string &name, const std::vector<std::string> &suffixes) {
        return std::ranges::any_of(suffixes, [&](const std::string &s) { return name.ends_with(s); });
    };
    const auto checkpoint = mst::Checkpoint::open(d.dir);
    uint64_t params = 0, expert_params = 0, expert_bytes = 0, dense_bytes = 0, vector_bytes = 0;
    // An FP8 weight held dequantised: resident as float32, without its scales.
    uint64_t fp8_widening = 0;
    for (const mst::TensorInfo &t : checkpoint->tensors()) {
        if (any_prefix(t.name, d.unread_tensor_prefixes) || t.name.ends_with(".weight_shape")) continue;
        const bool blocks = t.name.ends_with("_blocks");
        const bool scales =
            t.name.ends_with("_scales") || t.name.ends_with("_scale_inv") || t.name.ends_with(".weight_scale");
        uint64_t n = scales ? 0 : uint64_t(t.numel()) * (blocks ? 2 : 1);
        if (t.name.ends_with(".weight_packed")) {
            const std::string shape_name = t.name.substr(0, t.name.size() - 6) + "shape";
            const mst::TensorInfo *shape = checkpoint->find(shape_name);
            ASSERT_TRUE(shape != nullptr && shape->dtype == mst::DType::I64 && shape->numel() == 2) << shape_name;
            int64_t dims[2];
            checkpoint->read(*shape, dims);
            n = uint64_t(dims[0] * dims[1]);
        }
        params += n;
        if (t.name.find(".experts.") != std::string::npos) {
            expert_params += n;
            expert_bytes += t.nbytes;
            continue;
        }
        dense_bytes += t.nbytes;
        if (t.shape.size() == 1) vector_bytes += t.nbytes;
        if (t.dtype == mst::DType::F8_E4M3 && any_suffix(t.name, d.fp8_dequantized_suffixes)) {
            const mst::TensorInfo *scale = checkpoint->find(t.name + "_scale_inv");
            ASSERT_NE(scale, nullptr) << t.name << " has no block scales";
            fp8_widening += uint64_t(t.numel()) * sizeof(float) - t.nbytes - scale->nbytes;
        }
    }
    const mst::ModelHandle model = load();
    const mst_model_info info = model.info();
    ASSERT_GT(info.n_moe_layers, 0);
    const uint64_t n_experts = uint64_t(info.n_moe_layers) * uint64_t(info.n_experts);
    EXPECT_EQ(info.n_params_total, params);
    EXPECT_EQ(info.expert_bytes_total, expert_bytes);
    EXPECT_EQ(info.expert_bytes_each * n_experts, expert_bytes);
    EXPECT_EQ(info.expert_bytes_per_token,
              uint64_t(info.experts_per_token) * uint64_t(info.n_moe_layers) * info.expert_bytes_each);
    EXPECT_EQ(info.n_params_active, params - expert_params + (expert_params / n_experts) *
                                                                 uint64_t(info.n_moe_layers) *
                                                                 uint64_t(info.experts_per_token));
    // Resident weights stay in their stored type (FP8 with its scales), except the FP8
    // weights above and vectors a model may widen to float32 (biases, sinks): at most
    // twice their bytes on disk.
    EXPECT_GE(info.resident_bytes, dense_bytes + fp8_widening);
    EXPECT_LE(info.resident_bytes, dense_bytes + fp8_widening + vector_bytes);
}

}  // namespace golden_suite
