// compressed-tensors quantization configs (format/compressed_tensors.h) and the tensors of
// a pack-quantized Linear: the published Kimi K2.5 config's scheme and ignore list, every
// refused scheme named, and bad checkpoints (a group size that does not divide the row, a
// wrong weight_shape, wrong dtypes) named by tensor. Then the same through mst_model_load
// on copies of tests/data/kimi_k25_int4 with a changed config.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

#include "core/error.h"
#include "expect_error.h"
#include "format/compressed_tensors.h"
#include "format/packed_format.h"
#include "golden.h"
#include "moestream.hpp"
#include "packed_test_support.h"
#include "prompt_logits.h"
#include "safetensors_writer.h"
#include "test_paths.h"

namespace mst {
namespace {

using nlohmann::json;
using test::expect_error;

// A tiny config whose quantization_config is `q` (in text_config, as Kimi K2.5 has it).
ModelConfig config_with(const json &q) {
    json c = {{"model_type", "kimi_k25"},
              {"text_config",
               {{"model_type", "kimi_k2"}, {"vocab_size", 64}, {"hidden_size", 64}, {"num_hidden_layers", 2},
                {"num_attention_heads", 4}, {"quantization_config", q}}}};
    return parse_model_config(c.dump(), "test");
}

json kimi_quantization() {
    return json::parse(R"({
      "config_groups": {"group_0": {"input_activations": null, "output_activations": null, "targets": ["Linear"],
        "weights": {"actorder": null, "block_structure": null, "dynamic": false, "group_size": 32, "num_bits": 4,
                    "observer": "minmax", "observer_kwargs": {}, "strategy": "group", "symmetric": true,
                    "type": "int"}}},
      "format": "pack-quantized",
      "ignore": ["lm_head", "re:.*self_attn.*", "re:.*shared_experts.*", "re:.*mlp\\.(gate|up|gate_up|down)_proj.*"],
      "kv_cache_scheme": null, "quant_method": "compressed-tensors", "quantization_status": "compressed"})");
}

TEST(CompressedTensorsConfig, KimiK25SchemeAppliesToRoutedExpertsOnly) {
    const auto ct = compressed_tensors_config(config_with(kimi_quantization()));
    ASSERT_TRUE(ct.has_value());
    for (const char *expert : {"model.layers.1.mlp.experts.0.gate_proj", "model.layers.60.mlp.experts.383.down_proj",
                               "model.layers.3.mlp.experts.17.up_proj"}) {
        const auto s = ct->scheme_for(expert);
        ASSERT_TRUE(s.has_value()) << expert;
        EXPECT_EQ(s->bits, 4);
        EXPECT_EQ(s->group_size, 32);
    }
    for (const char *ignored : {"lm_head", "model.layers.1.self_attn.q_a_proj", "model.layers.1.self_attn.kv_b_proj",
                                "model.layers.1.mlp.shared_experts.down_proj", "model.layers.0.mlp.gate_proj",
                                "model.layers.0.mlp.down_proj"})
        EXPECT_FALSE(ct->scheme_for(ignored).has_value()) << ignored;
}

TEST(CompressedTensorsConfig, ThePublishedConfigParses) {
    const std::string path = test::shared_path("configs/kimi-k2.5.json");
    if (path.empty() || !std::filesystem::exists(path)) GTEST_SKIP() << "../shared is absent";
    const ModelConfig c = parse_model_config_file(path);
    EXPECT_EQ(c.outer_model_type, "kimi_k25");
    EXPECT_EQ(c.model_type, "kimi_k2");
    const auto ct = compressed_tensors_config(c);
    ASSERT_TRUE(ct.has_value());
    EXPECT_EQ(ct->scheme_for("model.layers.5.mlp.experts.100.gate_proj"), (PackedIntScheme{4, 32}));
    EXPECT_FALSE(ct->scheme_for("model.layers.5.self_attn.o_proj").has_value());
}

TEST(CompressedTensorsConfig, RegexMatchesFromTheStartAndExactNamesExactly) {
    json q = kimi_quantization();
    // "re:layers\.1\..*" would be found inside "model.layers.1...", but re.match anchors it at
    // the start of the name, so it ignores nothing here.
    q["ignore"] = {"re:model\\.layers\\.0\\..*", "model.layers.1.mlp.experts.0.gate_proj", "re:layers\\.1\\..*"};
    q["config_groups"]["group_0"]["targets"] = {"re:.*experts.*"};
    const auto ct = compressed_tensors_config(config_with(q));
    ASSERT_TRUE(ct.has_value());
    EXPECT_FALSE(ct->scheme_for("model.layers.0.mlp.experts.3.gate_proj").has_value());
    EXPECT_FALSE(ct->scheme_for("model.layers.1.mlp.experts.0.gate_proj").has_value());
    EXPECT_TRUE(ct->scheme_for("model.layers.1.mlp.experts.0.up_proj").has_value());
    EXPECT_TRUE(ct->scheme_for("model.layers.10.mlp.experts.0.up_proj").has_value());
    EXPECT_FALSE(ct->scheme_for("model.layers.1.self_attn.o_proj").has_value());        // not a target
}

TEST(CompressedTensorsConfig, Int8ChannelSchemesAreAccepted) {
    json q = kimi_quantization();
    q["config_groups"]["group_0"]["weights"]["num_bits"] = 8;
    q["config_groups"]["group_0"]["weights"]["strategy"] = "channel";
    q["config_groups"]["group_0"]["weights"]["group_size"] = nullptr;
    const auto ct = compressed_tensors_config(config_with(q));
    ASSERT_TRUE(ct.has_value());
    EXPECT_EQ(ct->scheme_for("model.layers.1.mlp.experts.0.gate_proj"), (PackedIntScheme{8, 0}));
}

TEST(CompressedTensorsConfig, OtherMethodsAreNotItsBusiness) {
    EXPECT_FALSE(compressed_tensors_config(config_with(json{{"quant_method", "fp8"}, {"fmt", "e4m3"}})).has_value());
    json c = {{"model_type", "kimi_k2"}, {"vocab_size", 64}, {"hidden_size", 64}, {"num_hidden_layers", 2},
              {"num_attention_heads", 4}};
    EXPECT_FALSE(compressed_tensors_config(parse_model_config(c.dump(), "test")).has_value());
}

TEST(CompressedTensorsConfig, RefusesEverySchemeItCannotComputeNamingIt) {
    const auto refused = [](const std::function<void(json &)> &change, mst_status code,
                            std::initializer_list<std::string_view> parts) {
        json q = kimi_quantization();
        change(q);
        expect_error([&] { compressed_tensors_config(config_with(q)); }, code, parts);
    };
    auto &&w = [](json &q) -> json & { return q["config_groups"]["group_0"]["weights"]; };
    refused([](json &q) { q["format"] = "marlin-24"; }, MST_ERR_UNSUPPORTED, {"format", "marlin-24"});
    refused([](json &q) { q["format"] = "float-quantized"; }, MST_ERR_UNSUPPORTED, {"float-quantized"});
    refused([&](json &q) { w(q)["num_bits"] = 2; }, MST_ERR_UNSUPPORTED, {"num_bits 2", "group_0"});
    refused([&](json &q) { w(q)["symmetric"] = false; }, MST_ERR_UNSUPPORTED, {"symmetric false"});
    refused([&](json &q) { w(q)["type"] = "float"; }, MST_ERR_UNSUPPORTED, {"type 'float'"});
    refused([&](json &q) { w(q)["strategy"] = "tensor"; }, MST_ERR_UNSUPPORTED, {"strategy 'tensor'"});
    refused([&](json &q) { w(q)["dynamic"] = true; }, MST_ERR_UNSUPPORTED, {"dynamic true"});
    refused([&](json &q) { w(q)["group_size"] = 0; }, MST_ERR_BAD_FORMAT, {"group_size", "0"});
    refused([](json &q) { q["config_groups"]["group_0"]["input_activations"] = {{"num_bits", 8}}; },
            MST_ERR_UNSUPPORTED, {"input_activations"});
    refused([](json &q) { q["ignore"] = {"re:(unclosed"}; }, MST_ERR_BAD_FORMAT, {"re:(unclosed", "ignore"});
}

// A checkpoint holding one INT4 Linear "m" of [rows][cols] with a chosen weight_shape.
std::unique_ptr<Checkpoint> one_linear(const std::string &dir, int64_t rows, int64_t cols, int64_t group,
                                       std::vector<int64_t> weight_shape, const std::string &scale_dtype = "BF16") {
    std::filesystem::create_directories(dir);
    const int64_t words = (cols + 7) / 8;
    std::vector<int32_t> packed(size_t(rows * words), 0x76543210);
    std::vector<uint16_t> scales(size_t(rows * (cols / group)), 0x3c00);
    test::SafetensorsWriter w;
    w.add("m.weight_packed", DType::I32, {rows, words}, packed);
    w.add_raw("m.weight_scale", scale_dtype, {rows, cols / group}, scales.data(), scales.size() * 2);
    w.add("m.weight_shape", DType::I64, {2}, weight_shape);
    w.write(dir + "/model.safetensors");
    return Checkpoint::open(dir);
}

TEST(PackedIntTensors, FindsAndChecksALinear) {
    const std::string dir = test::make_temp_dir("mst_ct_");
    const auto ck = one_linear(dir + "/ok", 6, 96, 32, {6, 96});
    const PackedIntTensors t = require_packed_int(*ck, "m", 6, 96, PackedIntScheme{4, 32});
    EXPECT_EQ(t.packed->name, "m.weight_packed");
    EXPECT_EQ(t.scale->name, "m.weight_scale");

    const auto wrong_shape = one_linear(dir + "/shape", 6, 96, 32, {6, 128});
    expect_error([&] { require_packed_int(*wrong_shape, "m", 6, 96, PackedIntScheme{4, 32}); }, MST_ERR_BAD_FORMAT,
                 {"m.weight_shape", "[6, 128]", "[6, 96]"});
    // The config's group size against the row: 96 inputs are not groups of 64.
    expect_error([&] { require_packed_int(*ck, "m", 6, 96, PackedIntScheme{4, 64}); }, MST_ERR_BAD_FORMAT,
                 {"'m'", "group size 64", "96 inputs"});
    // A scale per 16 is not what the tensors hold.
    expect_error([&] { require_packed_int(*ck, "m", 6, 96, PackedIntScheme{4, 16}); }, MST_ERR_BAD_FORMAT,
                 {"m.weight_scale"});
    // INT8 rows take twice the words.
    expect_error([&] { require_packed_int(*ck, "m", 6, 96, PackedIntScheme{8, 32}); }, MST_ERR_BAD_FORMAT,
                 {"m.weight_packed"});
    const auto f16_scales = one_linear(dir + "/f16", 6, 96, 32, {6, 96}, "F16");
    expect_error([&] { require_packed_int(*f16_scales, "m", 6, 96, PackedIntScheme{4, 32}); }, MST_ERR_UNSUPPORTED,
                 {"m.weight_scale", "F16"});
    expect_error([&] { require_packed_int(*ck, "n", 6, 96, PackedIntScheme{4, 32}); }, MST_ERR_BAD_FORMAT,
                 {"n.weight_packed"});
    std::filesystem::remove_all(dir);
}

// mst_model_load on a copy of the Kimi K2.5 dataset whose config is changed by `change`
// and whose files `patch` may change in place.
std::pair<mst_status, std::string> load_changed(const std::function<void(json &)> &change,
                                                const std::function<void(const std::string &dir)> &patch = {}) {
    const std::string src = test::data_path("kimi_k25_int4");
    const std::string dir = test::make_temp_dir("mst_k25_");
    for (const auto &entry : std::filesystem::directory_iterator(src))
        std::filesystem::copy_file(entry.path(), dir + "/" + entry.path().filename().string());
    json config = json::parse(std::ifstream(src + "/config.json"));
    change(config);
    std::ofstream(dir + "/config.json", std::ios::trunc) << config.dump(2);
    if (patch) patch(dir);
    mst_model_params params;
    mst_model_default_params(&params);
    mst_model *model = nullptr;
    const mst_status status = mst_model_load(dir.c_str(), &params, &model);
    const std::string error = status == MST_OK ? "" : mst_last_error();
    mst_model_free(model);
    std::filesystem::remove_all(dir);
    return {status, error};
}

TEST(KimiK25Load, NamesAnUnknownFormat) {
    const auto [status, error] =
        load_changed([](json &c) { c["text_config"]["quantization_config"]["format"] = "nvfp4-pack-quantized"; });
    EXPECT_EQ(status, MST_ERR_UNSUPPORTED);
    EXPECT_NE(error.find("nvfp4-pack-quantized"), std::string::npos) << error;
}

TEST(KimiK25Load, NamesAGroupSizeThatDoesNotDivideTheRow) {
    const auto [status, error] = load_changed([](json &c) {
        c["text_config"]["quantization_config"]["config_groups"]["group_0"]["weights"]["group_size"] = 48;
    });
    EXPECT_EQ(status, MST_ERR_BAD_FORMAT);
    EXPECT_NE(error.find("group size 48"), std::string::npos) << error;
    EXPECT_NE(error.find("experts.0.gate_proj"), std::string::npos) << error;
}

TEST(KimiK25Load, NamesAWrongWeightShape) {
    // Layer 1 expert 3's down_proj says [64, 65]: its packed words and scales still fit a
    // [64, 96] weight, so only weight_shape is wrong.
    const std::string name = "language_model.model.layers.1.mlp.experts.3.down_proj.weight_shape";
    const auto [status, error] = load_changed([](json &) {}, [&](const std::string &dir) {
        const auto ck = Checkpoint::open(dir);
        const TensorInfo &t = ck->require(name);
        ASSERT_EQ(t.dtype, DType::I64);
        const int64_t wrong[2] = {64, 65};
        std::fstream f(dir + "/model.safetensors", std::ios::in | std::ios::out | std::ios::binary);
        f.seekp(std::streamoff(t.offset));
        f.write(reinterpret_cast<const char *>(wrong), sizeof wrong);
    });
    EXPECT_EQ(status, MST_ERR_BAD_FORMAT);
    EXPECT_NE(error.find(name), std::string::npos) << error;
    EXPECT_NE(error.find("[64, 65]"), std::string::npos) << error;
}

TEST(KimiK25Load, LoadsUnchanged) {
    const auto [status, error] = load_changed([](json &) {});
    EXPECT_EQ(status, MST_OK) << error;
}

// convert keeps INT4 experts as they are, even when asked for q4 experts (they are not
// float matrices to quantize): each expert's blob holds its projections' words and bf16
// scales, 4.5 bits a weight. weight_shape (checked at load time, the index records the
// shape) and the vision tower are left out of the resident section.
TEST(KimiK25Convert, KeepsInt4ExpertsAndLeavesOutShapesAndVision) {
    const std::string src = test::data_path("kimi_k25_int4");
    const std::string dir = test::make_temp_dir("mst_k25_convert_");
    const mst_convert_report report = test::convert_checkpoint_for_test(src, dir + "/k25.mst", "q4", "bf16");
    const auto source = Checkpoint::open(src);
    uint64_t vision = 0, packed_bytes = 0, n_packed = 0;
    for (const TensorInfo &t : source->tensors()) {
        if (t.name.starts_with("vision_tower.") || t.name.starts_with("mm_projector.")) ++vision;
        if (t.name.ends_with(".weight_packed") || t.name.ends_with(".weight_scale")) {
            packed_bytes += t.nbytes;
            ++n_packed;
        }
    }
    EXPECT_EQ(report.dropped_tensors, vision);
    EXPECT_EQ(report.expert_raw_bytes, packed_bytes);  // parts back to back: no padding at these sizes
    const auto packed = Checkpoint::open(dir + "/k25.mst");
    ASSERT_NE(packed->packed(), nullptr);
    for (const TensorInfo &t : packed->tensors()) {
        EXPECT_FALSE(t.name.ends_with(".weight_shape")) << t.name;
        EXPECT_TRUE(t.name.starts_with("language_model.")) << t.name;
    }
    const auto &layers = packed->packed()->experts;
    size_t n_parts = 0;
    for (const auto &layer : layers)
        for (const ExpertLayout &e : layer) {
            ASSERT_EQ(e.parts.size(), 6u);
            for (size_t p = 0; p < 6; ++p) EXPECT_EQ(e.parts[p].dtype, p % 2 == 0 ? DType::I32 : DType::BF16);
            n_parts += e.parts.size();
        }
    EXPECT_EQ(n_parts, n_packed);
    std::filesystem::remove_all(dir);
}

// Projections a compressed-tensors config does not ignore may be packed too (as
// llm-compressor's W4A16 checkpoints pack attention and dense MLPs): two copies of the
// Kimi K2.5 dataset, one with layer 1's o_proj, layer 0's dense down_proj (5 groups of 32)
// and layer 1's kv_b_proj (multiplied transposed: held dequantised) stored as INT4 with
// power-of-two scales, the other with the same values in bf16 (exact there). Their logits
// must agree to float rounding on every backend there is.
struct Int4Copy {
    std::vector<uint32_t> words;
    std::vector<uint16_t> scales;  // bf16
    std::vector<float> values;     // q * scale
};

Int4Copy quantize_pow2(const std::vector<float> &w, int64_t rows, int64_t cols) {
    Int4Copy out;
    out.words.assign(size_t(rows * cols / 8), 0u);
    out.values.resize(w.size());
    for (int64_t r = 0; r < rows; ++r)
        for (int64_t g = 0; g < cols / 32; ++g) {
            float amax = 1e-6f;
            for (int64_t c = g * 32; c < g * 32 + 32; ++c) amax = std::max(amax, std::fabs(w[size_t(r * cols + c)]));
            const float scale = std::ldexp(1.0f, int(std::ceil(std::log2(amax / 7.0f))));
            out.scales.push_back(f32_to_bf16(scale));
            for (int64_t c = g * 32; c < g * 32 + 32; ++c) {
                const int q = std::clamp(int(std::lround(w[size_t(r * cols + c)] / scale)), -8, 7);
                out.words[size_t((r * cols + c) / 8)] |= uint32_t(q + 8) << (4 * (c % 8));
                out.values[size_t(r * cols + c)] = float(q) * scale;
            }
        }
    return out;
}

std::string write_variant(const std::string &dir, bool packed) {
    const std::string src = test::data_path("kimi_k25_int4");
    std::filesystem::create_directories(dir);
    for (const char *f : {"tokenizer.json", "tokenizer_config.json"})
        std::filesystem::copy_file(src + "/" + f, dir + "/" + f);
    json config = json::parse(std::ifstream(src + "/config.json"));
    config["text_config"]["quantization_config"]["ignore"] = {
        "lm_head", "re:.*self_attn\\.(q_a_proj|q_b_proj|kv_a_proj_with_mqa)$", "re:.*shared_experts.*",
        "re:.*mlp\\.(gate|up)_proj$"};
    std::ofstream(dir + "/config.json") << config.dump(2);
    const std::set<std::string> targets = {"language_model.model.layers.1.self_attn.o_proj.weight",
                                           "language_model.model.layers.0.mlp.down_proj.weight",
                                           "language_model.model.layers.1.self_attn.kv_b_proj.weight"};
    const auto ck = Checkpoint::open(src);
    test::SafetensorsWriter w;
    for (const TensorInfo &t : ck->tensors()) {
        if (!targets.count(t.name)) {
            std::vector<uint8_t> bytes(t.nbytes);
            ck->read(t, bytes.data());
            w.add_raw(t.name, std::string(dtype_name(t.dtype)), t.shape, bytes.data(), bytes.size());
            continue;
        }
        const int64_t rows = t.shape[0], cols = t.shape[1];
        const Int4Copy q = quantize_pow2(ck->read_f32(t), rows, cols);
        if (!packed) {
            w.add_bf16(t.name, t.shape, q.values);
            continue;
        }
        const std::string base = t.name.substr(0, t.name.size() - 7);
        w.add(base + ".weight_packed", DType::I32, {rows, cols / 8}, q.words);
        w.add(base + ".weight_scale", DType::BF16, {rows, cols / 32}, q.scales);
        w.add(base + ".weight_shape", DType::I64, {2}, std::vector<int64_t>{rows, cols});
    }
    w.write(dir + "/model.safetensors");
    return dir;
}

std::vector<float> prompt_logits(const std::string &dir, const char *backend, const std::vector<int32_t> &ids) {
    mst_model_params p = mst::model_params();
    p.backend = backend;
    return mst::test::prompt_logits(mst::ModelHandle(dir, p), ids);
}

TEST(KimiK25Load, PackedProjectionsOutsideTheExpertsComputeAsTheirFloatValues) {
    const std::string tmp = test::make_temp_dir("mst_k25_dense_");
    const std::string packed = write_variant(tmp + "/packed", true), plain = write_variant(tmp + "/plain", false);
    const std::vector<int32_t> ids =
        test::load_golden(test::data_path("kimi_k25_int4") + "/golden.safetensors").input_ids;
    const std::vector<float> want = prompt_logits(plain, "cpu", ids);
    for (const char *backend : {"cpu", "vulkan"}) {
        mst_model_params p = mst::model_params();
        p.backend = backend;
        mst_model *probe = nullptr;
        if (mst_model_load(packed.c_str(), &p, &probe) == MST_ERR_BACKEND) continue;  // no Vulkan device here
        mst_model_free(probe);
        const std::vector<float> got = prompt_logits(packed, backend, ids);
        EXPECT_LT(test::relative_error(got.data(), want.data(), int64_t(want.size())), 1e-5) << backend;
    }
    mst_model_params p = mst::model_params();
    p.backend = "cpu";
    const mst_model_info a = mst::ModelHandle(packed, p).info(), b = mst::ModelHandle(plain, p).info();
    EXPECT_EQ(a.n_params_total, b.n_params_total);
    EXPECT_LT(a.resident_bytes, b.resident_bytes);  // o_proj and down_proj stay INT4
    std::filesystem::remove_all(tmp);
}

TEST(KimiK25Load, NamesAPackedTensorTheConfigIgnores) {
    const std::string tmp = test::make_temp_dir("mst_k25_ignored_");
    const std::string packed = write_variant(tmp + "/packed", true);
    json config = json::parse(std::ifstream(packed + "/config.json"));
    config["text_config"]["quantization_config"]["ignore"].push_back("re:.*o_proj$");
    std::ofstream(packed + "/config.json", std::ios::trunc) << config.dump(2);
    mst_model_params p = mst::model_params();
    p.backend = "cpu";
    mst_model *model = nullptr;
    EXPECT_EQ(mst_model_load(packed.c_str(), &p, &model), MST_ERR_BAD_FORMAT);
    const std::string error = mst_last_error();
    EXPECT_NE(error.find("layers.1.self_attn.o_proj.weight_packed"), std::string::npos) << error;
    mst_model_free(model);
    std::filesystem::remove_all(tmp);
}

}  // namespace
}  // namespace mst
