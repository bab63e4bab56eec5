// Packed files through every storage tier: expert blobs are read in one request each,
// widened to the tier's alignment (4 KiB-aligned blobs make O_DIRECT reads land in place),
// and give bitwise the logits the pread tier gives, plain or zstd-compressed; a damaged
// blob fails with MST_ERR_CHECKSUM whichever tier read it.
#include <gtest/gtest.h>

#include <filesystem>
#include <ostream>
#include <string>
#include <vector>

#include "format/checkpoint.h"
#include "format/packed_format.h"
#include "moestream.hpp"
#include "packed_test_support.h"
#include "storage/storage_tier.h"
#include "test_paths.h"

namespace {

namespace fs = std::filesystem;

const std::vector<int32_t> kPrompt = {1, 87, 85, 259, 201, 39, 408, 262, 413, 412, 346, 329};

struct TierCase {
    std::string tier;
    bool direct_io = false;
    std::string label;
};

void PrintTo(const TierCase &c, std::ostream *os) { *os << c.label; }

std::vector<TierCase> tier_cases() {
    std::vector<TierCase> cases;
    for (const std::string &tier : mst::available_storage_tiers()) {
        if (tier == "fault") continue;
        // auto: the file was just written, so the page cache holds it and auto maps it.
        cases.push_back({tier, false, tier});
        if (tier == "uring" || tier == "pread") cases.push_back({tier, true, tier + "_direct"});
    }
    return cases;
}

class PackedTiers : public ::testing::TestWithParam<TierCase> {
protected:
    void SetUp() override {
        // Under the build tree, not the system temp dir: tmpfs refuses O_DIRECT.
        dir_ = (fs::current_path() / ("packed_tiers_" + GetParam().label)).string();
        fs::remove_all(dir_);
        fs::create_directories(dir_);
    }
    void TearDown() override { fs::remove_all(dir_); }

    mst_model_params params(const std::string &tier, bool direct_io) {
        mst_model_params p = mst::model_params();
        p.backend = "cpu";
        p.storage = tier.c_str();
        p.storage_direct_io = direct_io ? 1 : 0;
        p.expert_cache_bytes = 0;  // every expert read every time
        return p;
    }
    // Logits, or an empty vector with the status when loading or evaluating fails.
    std::vector<float> logits(const std::string &path, const std::string &tier, bool direct_io, mst_status *status) {
        const mst_model_params p = params(tier, direct_io);
        mst_model *model = nullptr;
        *status = mst_model_load(path.c_str(), &p, &model);
        if (*status != MST_OK) return {};
        mst_session *session = nullptr;
        std::vector<float> out;
        if ((*status = mst_session_create(model, nullptr, &session)) == MST_OK &&
            (*status = mst_session_eval(session, kPrompt.data(), kPrompt.size())) == MST_OK) {
            const float *l = nullptr;
            size_t n = 0;
            *status = mst_session_logits(session, &l, &n);
            if (*status == MST_OK) out.assign(l, l + n);
        }
        mst_session_free(session);
        mst_model_free(model);
        return out;
    }

    std::string dir_;
};

TEST_P(PackedTiers, SameLogitsAsPreadAndChecksumsHold) {
    const TierCase &c = GetParam();
    for (const int zstd : {0, 3}) {
        SCOPED_TRACE("zstd " + std::to_string(zstd));
        const std::string path = dir_ + "/tiny.mst";
        mst::test::convert_checkpoint_for_test(mst::test::data_path("qwen3_moe_tiny"), path, "q4", "bf16", zstd);
        mst_status status = MST_OK;
        const std::vector<float> want = logits(path, "pread", false, &status);
        ASSERT_EQ(status, MST_OK) << mst_last_error();
        const std::vector<float> got = logits(path, c.tier, c.direct_io, &status);
        if (c.direct_io && status != MST_OK) GTEST_SKIP() << "O_DIRECT is refused here: " << mst_last_error();
        ASSERT_EQ(status, MST_OK) << mst_last_error();
        EXPECT_EQ(got, want);

        const mst::ExpertBlob blob = *mst::Checkpoint::open(path)->packed()->experts.at(0).at(2).blob;
        mst::test::flip_byte(path, blob.offset + blob.stored_bytes / 2);
        logits(path, c.tier, c.direct_io, &status);
        EXPECT_EQ(status, MST_ERR_CHECKSUM) << mst_last_error();
        EXPECT_NE(std::string(mst_last_error()).find("layer 0 expert 2"), std::string::npos) << mst_last_error();
    }
}

INSTANTIATE_TEST_SUITE_P(Tiers, PackedTiers, ::testing::ValuesIn(tier_cases()),
                         [](const auto &param_info) { return param_info.param.label; });

}  // namespace
