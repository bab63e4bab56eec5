// What `moestream info` tells beyond sizes: the tokenizer's kind, the number of
// end-of-sequence ids (the tokenizer's and config.json's, each once) and every type the
// weights are stored in, expert parts apart from the rest.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "cli_process.h"
#include "moestream.hpp"
#include "packed_test_support.h"
#include "test_paths.h"

namespace {

namespace fs = std::filesystem;

mst_model_params cpu_params() {
    mst_model_params p = mst::model_params();
    p.backend = "cpu";
    return p;
}

// The count and bytes of type `dtype` among the expert parts or the other weights; 0 if absent.
mst_weight_type find_type(const std::vector<mst_weight_type> &types, const std::string &dtype, bool experts) {
    for (const mst_weight_type &t : types)
        if (t.dtype == dtype && (t.experts != 0) == experts) return t;
    return mst_weight_type{};
}

TEST(ModelDescription, Fp8CheckpointTellsEachWeightType) {
    const mst::ModelHandle model(mst::test::data_path("deepseek_v3_fp8"), cpu_params());
    const mst_model_info info = model.info();
    EXPECT_NE(std::string(info.tokenizer_kind).find("BPE"), std::string::npos);
    EXPECT_EQ(info.n_eos_ids, 1);  // <|im_end|> = config.json's eos_token_id 2
    const std::vector<mst_weight_type> types = model.weight_types();
    ASSERT_EQ(int32_t(types.size()), info.n_weight_types);
    // 2 MoE layers x 16 experts x (gate, up, down): FP8 codes and their F32 block scales.
    EXPECT_EQ(find_type(types, "F8_E4M3", true).tensors, 96u);
    EXPECT_EQ(find_type(types, "F32", true).tensors, 96u);
    EXPECT_GT(find_type(types, "F8_E4M3", false).tensors, 0u);  // attention projections
    EXPECT_GT(find_type(types, "BF16", false).tensors, 0u);     // embeddings, norms, routers
    uint64_t expert_bytes = 0;
    for (const mst_weight_type &t : types)
        if (t.experts) expert_bytes += t.bytes;
    EXPECT_EQ(expert_bytes, info.expert_bytes_total);
    EXPECT_FALSE(types.front().experts);  // the others first
    mst_weight_type past{};
    past.struct_size = sizeof past;
    EXPECT_EQ(mst_model_get_weight_type(model.get(), info.n_weight_types, &past), MST_ERR_INVALID_ARGUMENT);
}

TEST(ModelDescription, PackedFileTellsItsOwnTypes) {
    const std::string tmp = mst::test::make_temp_dir("mst_description_");
    ASSERT_FALSE(tmp.empty());
    const std::string out = tmp + "/m.mst";
    mst::test::convert_checkpoint_for_test(mst::test::data_path("qwen3_moe_tiny"), out, "q4", "q8");
    {
        const mst::ModelHandle model(out, cpu_params());
        const std::vector<mst_weight_type> types = model.weight_types();
        EXPECT_EQ(find_type(types, "Q4", true).tensors, 16u * 3);  // 2 MoE layers x 8 experts x 3
        EXPECT_GT(find_type(types, "Q8", false).tensors, 0u);
        EXPECT_EQ(find_type(types, "BF16", true).tensors, 0u);
    }
    fs::remove_all(tmp);
}

TEST(ModelDescription, EndOfSequenceIdsComeFromTokenizerAndConfig) {
    const std::string tmp = mst::test::make_temp_dir("mst_description_");
    ASSERT_FALSE(tmp.empty());
    for (const auto &entry : fs::directory_iterator(mst::test::data_path("qwen3_moe_tiny")))
        if (entry.path().filename() != "golden.safetensors")
            fs::copy_file(entry.path(), tmp + "/" + entry.path().filename().string());
    nlohmann::json config = nlohmann::json::parse(std::ifstream(tmp + "/config.json"));
    config["eos_token_id"] = {0, 2, 0};  // <|endoftext|>, <|im_end|> (the tokenizer's), a repeat
    std::ofstream(tmp + "/config.json") << config.dump();
    {
        const mst::ModelHandle model(tmp, cpu_params());
        EXPECT_EQ(model.info().n_eos_ids, 2);
    }
    // The CLI prints all of it.
    const mst::test::CliResult info = mst::test::run_cli(MST_CLI_PATH, {"info", "-m", tmp, "--backend", "cpu"});
    const std::string output = info.out + info.err;
    EXPECT_EQ(info.status, 0) << output;
    EXPECT_NE(output.find("tokenizer:           byte-level BPE, 2 end-of-sequence ids"),
              std::string::npos) << output;
    EXPECT_NE(output.find("expert weights as:   BF16 x 48"), std::string::npos) << output;
    EXPECT_NE(output.find("weights as:          BF16 x"), std::string::npos) << output;
    fs::remove_all(tmp);
}

}  // namespace
