// What each waited submission waited for (CommandStream::waits, partial_waits;
// docs/gpu_decode_kernels.md, "Where a real run's overlap goes"): a batch's end, a sync, a
// sync_reads, an input that a pending result covers only in part, and drop_results of
// memory that a pending result reaches outside, each counted under its own cause, the
// partial overlaps with the sizes that name the vectors involved, and the results still
// right. Without a Vulkan device every test is skipped.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "backends/backend.h"
#include "test_weight.h"
#include "vulkan_suite.h"

namespace mst {
namespace {

#ifdef MST_HAVE_VULKAN
using test::random_floats;
using Cause = CommandStream::WaitCause;

class VulkanWaitCauses : public test::VulkanSuite {
protected:
    uint64_t waits(Cause c) const { return vulkan_->stream().waits(c); }
    uint64_t partial(const std::string &what) const {
        const auto &m = vulkan_->stream().partial_waits();
        const auto it = m.find(what);
        return it == m.end() ? 0 : it->second;
    }
};

TEST_F(VulkanWaitCauses, EachWaitIsCountedUnderItsCause) {
    const std::vector<float> y = random_floats(128, 1);
    std::vector<float> x = random_floats(128, 2), w = random_floats(64, 3);
    const std::vector<float> x0 = x, w0 = w;
    const uint64_t end0 = waits(Cause::batch_end), sync0 = waits(Cause::sync), reads0 = waits(Cause::sync_reads);
    const uint64_t input0 = waits(Cause::input_overlap), drop0 = waits(Cause::drop_outputs);
    const std::string input_key =
        "an input a pending result covers in part: 256 bytes at +128 bytes from a pending result of 256 bytes";
    const std::string drop_key = "drop_results of memory a pending result reaches outside: 128 bytes at +128 bytes "
                                 "from a pending result of 256 bytes";
    const uint64_t input_key0 = partial(input_key), drop_key0 = partial(drop_key);
    {
        BackendBatch batch(*vulkan_);
        vulkan_->add(x.data(), y.data(), 64);       // x[0, 64) pending
        vulkan_->add(w.data(), x.data() + 32, 64);  // reads x[32, 96): half of it pending
        vulkan_->sync();
        vulkan_->add(x.data() + 64, y.data() + 64, 64);  // x[64, 128) pending
        const Backend::HostSpan reads[] = {{x.data() + 64, 64 * sizeof(float)}};
        vulkan_->sync_reads(reads);
        vulkan_->add(x.data(), y.data(), 64);  // x[0, 64) pending again
        vulkan_->drop_results(x.data() + 32, 32 * sizeof(float));  // inside it: the batch runs first
    }
    EXPECT_EQ(waits(Cause::input_overlap) - input0, 1u);
    EXPECT_EQ(partial(input_key) - input_key0, 1u);
    EXPECT_EQ(waits(Cause::sync) - sync0, 1u);
    EXPECT_EQ(waits(Cause::sync_reads) - reads0, 1u);
    EXPECT_EQ(waits(Cause::drop_outputs) - drop0, 1u);
    EXPECT_EQ(partial(drop_key) - drop_key0, 1u);
    // The last add's result was delivered by the drop's wait; end_batch had nothing left.
    EXPECT_EQ(waits(Cause::batch_end) - end0, 0u);
    for (size_t i = 0; i < 64; ++i) {
        EXPECT_EQ(x[i], (x0[i] + y[i]) + y[i]) << i;
        EXPECT_EQ(x[64 + i], x0[64 + i] + y[64 + i]) << 64 + i;
        const float seen = i < 32 ? x0[32 + i] + y[32 + i] : x0[32 + i];  // x[32, 96) after the first add
        EXPECT_EQ(w[i], w0[i] + seen) << i;
    }
}

#else

TEST(VulkanWaitCauses, NeedsTheVulkanBackend) { GTEST_SKIP() << "this build has no Vulkan backend"; }

#endif

}  // namespace
}  // namespace mst
