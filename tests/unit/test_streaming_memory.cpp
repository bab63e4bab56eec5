// Streaming keeps memory bounded: with experts far larger than the cache budget, the
// process's peak resident memory during generation stays near resident weights +
// budget, and every expert byte comes through the storage tier.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "core/process_memory.h"
#include "moestream.hpp"
#include "sanitizer.h"
#include "synthetic_checkpoint.h"
#include "test_paths.h"

namespace {

// Resets VmHWM to the current RSS (Linux >= 4.0); false where /proc forbids it.
bool reset_peak_rss() {
    std::ofstream clear("/proc/self/clear_refs");
    clear << "5";
    clear.flush();
    return bool(clear);
}

struct MemoryCase {
    const char *policy;
    bool prefetch;
};

class StreamingMemory : public ::testing::TestWithParam<MemoryCase> {
protected:
    static void SetUpTestSuite() {
        dir_ = mst::test::make_temp_dir("mst_stream_mem_");
        expert_bytes_ = mst::test::write_synthetic_qwen3_moe(dir_, shape_);
    }
    static void TearDownTestSuite() { std::filesystem::remove_all(dir_); }
    static inline std::string dir_;
    static inline mst::test::SyntheticShape shape_;  // 2 layers x 64 experts x 1.5 MiB = 192 MiB of experts
    static inline uint64_t expert_bytes_ = 0;
};

TEST_P(StreamingMemory, PeakStaysNearResidentPlusBudget) {
    const std::string &dir = dir_;
    const mst::test::SyntheticShape &shape = shape_;
    const uint64_t expert_bytes = expert_bytes_;
    ASSERT_GT(expert_bytes, 150ull << 20);
    if (mst::test::kUnderAddressSanitizer)
        GTEST_SKIP() << "under AddressSanitizer its shadow memory and quarantine make peak RSS no measure of ours";
    if (!reset_peak_rss()) GTEST_SKIP() << "/proc/self/clear_refs is not writable here; peak RSS cannot be isolated";
    const uint64_t baseline = mst::read_process_memory().rss_bytes;

    const uint64_t budget = 8ull << 20;  // about 5 experts
    mst_model_params p = mst::model_params();
    p.backend = "cpu";
    p.expert_cache_bytes = budget;
    p.cache_policy = GetParam().policy;
    p.prefetch = GetParam().prefetch ? 1 : 0;
    {
        const mst::ModelHandle model(dir, p);
        mst_session_params sp = mst::session_params();
        sp.n_ctx = 256;
        mst::SessionHandle session(model, sp);
        std::vector<int32_t> prompt;
        for (int i = 0; i < 48; ++i) prompt.push_back((i * 37) % 1000);
        session.eval(prompt);  // a prefill touches nearly every expert of each layer
        for (int i = 0; i < 8; ++i) session.eval({session.sample()});

        const mst_memory_stats mem = model.memory();
        const mst_session_stats stats = session.stats();
        const uint64_t peak_growth = mst::read_process_memory().peak_rss_bytes - baseline;
        // Allowed: resident weights + budget + the experts one step holds beyond the
        // budget (k, and k more read ahead with prefetch) + KV cache, scratch and
        // allocator slack (32 MiB).
        const uint64_t step_experts =
            uint64_t(GetParam().prefetch ? 2 : 1) * uint64_t(shape.top_k) * 3 * uint64_t(shape.hidden * shape.expert_ffn) * 2;
        const uint64_t allowed = mem.resident_weight_bytes + budget + step_experts + (32ull << 20);
        EXPECT_LT(peak_growth, allowed) << "peak RSS grew " << (peak_growth >> 20) << " MiB; experts total "
                                        << (expert_bytes >> 20) << " MiB";
        EXPECT_LT(peak_growth, expert_bytes / 2);
        EXPECT_LE(mem.expert_cache_bytes, budget);
        EXPECT_GT(stats.expert_bytes_read, budget);  // more streamed than the cache can hold
        RecordProperty("peak_rss_growth_mib", std::to_string(peak_growth >> 20));
    }
}

INSTANTIATE_TEST_SUITE_P(Policies, StreamingMemory,
                         ::testing::Values(MemoryCase{"lru", false}, MemoryCase{"lfu", false}, MemoryCase{"arc", false},
                                           MemoryCase{"none", false}, MemoryCase{"lru", true}),
                         [](const auto &param_info) {
                             return std::string(param_info.param.policy) + (param_info.param.prefetch ? "_prefetch" : "");
                         });

}  // namespace
