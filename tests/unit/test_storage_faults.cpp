// Faults injected below the pread tier's retry loop: short reads and EINTR are absorbed,
// EIO surfaces as MST_ERR_IO naming the file, offset and expert, slow reads only cost
// time, and after any fault the session computes exactly what it would have without it.
#include <gtest/gtest.h>

#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "moestream.hpp"
#include "storage/fault_injection.h"
#include "test_paths.h"

namespace {

const std::vector<int32_t> kPrompt = {1, 87, 85, 259, 201, 39, 408, 262};

std::vector<float> run_prompt(mst::SessionHandle &session) {
    session.eval(kPrompt);
    return session.logits();
}

class StorageFaults : public ::testing::Test {
protected:
    void SetUp() override {
        plan_ = std::make_shared<mst::FaultPlan>();
        mst::set_fault_plan(plan_);
        mst_model_params p = mst::model_params();
        p.backend = "cpu";
        p.storage = "fault";
        p.expert_cache_bytes = 0;  // every evaluation reads its experts again
        model_ = std::make_unique<mst::ModelHandle>(mst::test::data_path("qwen3_moe_tiny"), p);
        mst_model_params clean = p;
        clean.storage = "pread";
        const mst::ModelHandle reference(mst::test::data_path("qwen3_moe_tiny"), clean);
        mst::SessionHandle session(reference);
        expected_ = run_prompt(session);
    }
    void TearDown() override { mst::set_fault_plan(nullptr); }

    void expect_clean_run() {
        mst::SessionHandle session(*model_);
        EXPECT_EQ(run_prompt(session), expected_);  // bitwise: same bytes, same arithmetic
    }

    std::shared_ptr<mst::FaultPlan> plan_;
    std::unique_ptr<mst::ModelHandle> model_;
    std::vector<float> expected_;
};

TEST_F(StorageFaults, ShortReadsAreCompleted) {
    plan_->add({mst::Fault::Kind::ShortRead, 0, UINT64_MAX, -1, 0});
    expect_clean_run();
    EXPECT_GT(plan_->hits()[0], 0u);
}

TEST_F(StorageFaults, InterruptedReadsAreRetried) {
    plan_->add({mst::Fault::Kind::Interrupt, 0, UINT64_MAX, 5, 0});
    expect_clean_run();
    EXPECT_EQ(plan_->hits()[1], 5u);
}

TEST_F(StorageFaults, IoErrorIsReportedAndSessionRecovers) {
    plan_->add({mst::Fault::Kind::IoError, 0, UINT64_MAX, 1, 0});
    mst::SessionHandle session(*model_);
    const mst_status status = mst_session_eval(session.get(), kPrompt.data(), kPrompt.size());
    EXPECT_EQ(status, MST_ERR_IO);
    const std::string message = mst_last_error();
    for (const char *part : {"layer", "expert", "model.safetensors", "offset", "Input/output error"})
        EXPECT_NE(message.find(part), std::string::npos) << "'" << part << "' missing in: " << message;
    EXPECT_EQ(session.n_past(), 0u);
    EXPECT_EQ(run_prompt(session), expected_);  // the fault is gone: the same session works
}

TEST_F(StorageFaults, SlowReadsOnlyCostTime) {
    plan_->add({mst::Fault::Kind::Slow, 0, UINT64_MAX, 2, 30});
    mst::SessionHandle session(*model_);
    EXPECT_EQ(run_prompt(session), expected_);
    EXPECT_EQ(plan_->hits()[3], 2u);
    EXPECT_GE(session.stats().expert_read_seconds, 0.029);
}

TEST(StorageFaultTier, NeedsAPlan) {
    mst::set_fault_plan(nullptr);
    mst_model_params p = mst::model_params();
    p.storage = "fault";
    mst_model *model = nullptr;
    EXPECT_EQ(mst_model_load(mst::test::data_path("qwen3_moe_tiny").c_str(), &p, &model), MST_ERR_INVALID_ARGUMENT);
    EXPECT_NE(std::string(mst_last_error()).find("fault plan"), std::string::npos);
}

}  // namespace
