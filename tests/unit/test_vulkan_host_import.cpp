// Streamed experts copied by the device straight from imported host memory
// (VK_EXT_external_memory_host, backends/vulkan/host_import.h) give the same expert ids and
// outputs as the staging ring's copies and as resident experts, with a GPU expert cache so
// small that every expert misses and with one that holds a part of them. On lavapipe,
// MST_VULKAN_SEPARATE_MEMORY=1 gives the backend a discrete GPU's upload path (device-local
// expert slots filled by copies), the one the import serves.
#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "backends/backend.h"
#include "core/aligned_buffer.h"
#include "core/error.h"
#include "cpu_op_fixture.h"
#include "q4_expert_store.h"
#include "router/softmax_topk.h"
#ifdef MST_HAVE_VULKAN
#include "backends/vulkan/vulkan_backend.h"
#endif

namespace mst {
namespace {

#ifdef MST_HAVE_VULKAN
using test::random_floats;

constexpr int64_t kHidden = 64, kInter = 32, kExperts = 8, kLayers = 3;
constexpr int32_t kTopK = 2;

// Q4 experts of every layer in one page-aligned block, as a host expert store holds them,
// and a float router per layer.
struct StreamedModel : test::Q4ExpertStore {
    std::vector<std::vector<float>> router;
    StreamedModel() : Q4ExpertStore(kLayers, kExperts, kHidden, kInter, 1) {
        for (int64_t l = 0; l < kLayers; ++l) router.push_back(random_floats(size_t(kExperts * kHidden), uint32_t(900 + l)));
    }
};

// Decode steps as MoeDecoder's device path runs them: one batch per step, a wait per
// layer for the router's logits (the host picks the experts), the experts and the residual
// add recorded behind it. Returns every step's final x; the chosen ids go to `ids`.
std::vector<float> decode(Backend &b, const StreamedModel &m, int steps, std::vector<int32_t> &ids) {
    std::vector<float> out;
    for (int s = 0; s < steps; ++s) {
        std::vector<float> x = random_floats(size_t(kHidden), uint32_t(50 + s));
        std::vector<float> y(static_cast<size_t>(kHidden)), logits(static_cast<size_t>(kExperts)),
            weights(static_cast<size_t>(kTopK));
        std::vector<int32_t> chosen(static_cast<size_t>(kTopK));
        {
            BackendBatch step(b);
            for (int64_t l = 0; l < kLayers; ++l) {
                b.matmul(WeightView{DType::F32, m.router[size_t(l)].data(), kExperts, kHidden}, x.data(), logits.data(), 1);
                const Backend::HostSpan reads[] = {{logits.data(), logits.size() * sizeof(float)}};
                b.sync_reads(reads);
                route_softmax_topk(logits.data(), 1, int32_t(kExperts), kTopK, true, chosen.data(), weights.data());
                ids.insert(ids.end(), chosen.begin(), chosen.end());
                std::vector<SwigluExpertUse> uses;
                const int64_t token0 = 0;
                for (int64_t e = 0; e < kExperts; ++e)
                    for (int32_t j = 0; j < kTopK; ++j)
                        if (chosen[size_t(j)] == e) {
                            SwigluExpertUse u;
                            u.gate = m.gate[size_t(l)][size_t(e)];
                            u.up = m.up[size_t(l)][size_t(e)];
                            u.down = m.down[size_t(l)][size_t(e)];
                            u.tokens = &token0;
                            u.weights = &weights[size_t(j)];
                            u.n = 1;
                            uses.push_back(u);
                        }
                b.drop_results(y.data(), y.size() * sizeof(float));
                std::fill(y.begin(), y.end(), 0.0f);
                b.routed_swiglu(x.data(), y.data(), 1, kHidden, uses.data(), uses.size());
                b.add(x.data(), y.data(), kHidden);
            }
            b.drop_results(y.data(), y.size() * sizeof(float));
        }
        out.insert(out.end(), x.begin(), x.end());
    }
    return out;
}

// A backend with a discrete GPU's memory path and `budget` bytes of GPU expert cache;
// `import` false: MST_VULKAN_HOST_IMPORT=0 (the staging ring only).
std::unique_ptr<VulkanBackend> open_backend(uint64_t budget, bool import, std::string &why, bool transfer_queue = true) {
    setenv("MST_VULKAN_SEPARATE_MEMORY", "1", 1);
    if (!import) setenv("MST_VULKAN_HOST_IMPORT", "0", 1);
    if (!transfer_queue) setenv("MST_VULKAN_TRANSFER_QUEUE", "0", 1);
    std::unique_ptr<VulkanBackend> b;
    try {
        BackendOptions o;
        o.gpu_expert_cache_bytes = budget;
        b = std::make_unique<VulkanBackend>(o, false);
    } catch (const Error &e) {
        why = e.what();
    }
    unsetenv("MST_VULKAN_SEPARATE_MEMORY");
    unsetenv("MST_VULKAN_HOST_IMPORT");
    unsetenv("MST_VULKAN_TRANSFER_QUEUE");
    return b;
}

TEST(VulkanHostImport, StreamedDecodeMatchesResidentWithAndWithoutImport) {
    const StreamedModel m;
    std::string why;
    const auto resident = open_backend(64ull << 20, true, why);
    if (!resident) GTEST_SKIP() << "no Vulkan device found: " << why;
    const int steps = 4;
    std::vector<int32_t> want_ids;
    const std::vector<float> want = decode(*resident, m, steps, want_ids);

    // Budgets: 1 byte (no expert is ever kept: each use is a copy) and about a quarter of
    // the experts (least recently used evicted).
    for (const uint64_t budget : {uint64_t(1), uint64_t(kLayers * kExperts / 4) * m.expert_bytes + 256 * 3}) {
        for (const auto &[import, lane] : {std::pair{true, true}, {true, false}, {false, true}, {false, false}}) {
            SCOPED_TRACE(testing::Message() << "budget " << budget << (import ? ", imported" : ", staging ring")
                                            << (lane ? ", transfer lane" : ", MST_VULKAN_TRANSFER_QUEUE=0"));
            const auto gpu = open_backend(budget, import, why, lane);
            ASSERT_TRUE(gpu) << why;
            std::string import_why;
            const bool imported = gpu->import_host_memory(m.store.data(), m.store.size(), import_why);
            ASSERT_EQ(imported, import && gpu->stream().context().host_import_alignment() > 0) << import_why;
            if (!import) {
                EXPECT_NE(import_why.find("MST_VULKAN_HOST_IMPORT=0"), std::string::npos) << import_why;
            }
            if (!imported && import) GTEST_SKIP() << "this device cannot import host memory: " << import_why;
            std::vector<int32_t> ids;
            const std::vector<float> got = decode(*gpu, m, steps, ids);
            EXPECT_EQ(ids, want_ids);
            ASSERT_EQ(got.size(), want.size());
            for (size_t i = 0; i < got.size(); ++i) ASSERT_EQ(got[i], want[i]) << "at " << i;
            EXPECT_GT(gpu->expert_cache_stats().misses, 0u);
            if (budget == 1) {
                EXPECT_EQ(gpu->expert_cache_stats().hits, 0u) << "every expert misses";
            }
            // Every missed expert's bytes went the way asked, and none the other way.
            const uint64_t uploaded = gpu->expert_cache_stats().misses * (m.expert_bytes / 3);
            EXPECT_GE(imported ? gpu->stream().direct_bytes() : gpu->stream().staged_bytes(), uploaded / 2);
            EXPECT_EQ(imported ? gpu->stream().staged_bytes() : gpu->stream().direct_bytes(), 0u);
            // Cached misses (not those of the one-byte budget, copied into scratch) took the
            // transfer lane where it is on, from either source.
            if (!lane || budget == 1) {
                EXPECT_EQ(gpu->stream().transfer().bytes(), 0u);
            } else if (gpu->stream().transfer_lane()) {
                EXPECT_GE(gpu->stream().transfer().bytes(), uploaded / 2);
            }
        }
    }
}

TEST(VulkanHostImport, ReleasedMemoryGoesBackToTheStagingRing) {
    const StreamedModel m;
    std::string why;
    const auto gpu = open_backend(1, true, why);
    if (!gpu) GTEST_SKIP() << "no Vulkan device found: " << why;
    if (!gpu->import_host_memory(m.store.data(), m.store.size(), why))
        GTEST_SKIP() << "this device cannot import host memory: " << why;
    // A range inside the import, or overlapping it, cannot be imported again.
    EXPECT_FALSE(gpu->import_host_memory(m.store.data() + 4096, 100, why));
    EXPECT_NE(why.find("overlaps"), std::string::npos) << why;
    std::vector<int32_t> ids_imported, ids_staged;
    const std::vector<float> imported = decode(*gpu, m, 2, ids_imported);
    const uint64_t direct = gpu->stream().direct_bytes();
    EXPECT_GT(direct, 0u);
    EXPECT_EQ(gpu->stream().staged_bytes(), 0u);

    EXPECT_TRUE(gpu->release_host_memory(m.store.data()));
    EXPECT_FALSE(gpu->release_host_memory(m.store.data())) << "released once";
    const std::vector<float> staged = decode(*gpu, m, 2, ids_staged);
    EXPECT_EQ(gpu->stream().direct_bytes(), direct);
    EXPECT_GT(gpu->stream().staged_bytes(), 0u);
    EXPECT_EQ(ids_staged, ids_imported);
    EXPECT_EQ(staged, imported);

    // Inside a batch a release is refused (recorded copies may still read the memory).
    ASSERT_TRUE(gpu->import_host_memory(m.store.data(), m.store.size(), why)) << why;
    gpu->begin_batch();
    EXPECT_THROW(gpu->release_host_memory(m.store.data()), Error);
    gpu->end_batch();
    EXPECT_TRUE(gpu->release_host_memory(m.store.data()));
}

TEST(VulkanHostImport, UnifiedMemoryDeclines) {
    std::unique_ptr<VulkanBackend> gpu;
    try {
        gpu = std::make_unique<VulkanBackend>(BackendOptions{}, false);
    } catch (const Error &e) {
        GTEST_SKIP() << "no Vulkan device found: " << e.what();
    }
    if (!gpu->context().unified_memory()) GTEST_SKIP() << "the device has separate memory";
    AlignedBuffer b(8192, "test");
    std::string why;
    EXPECT_FALSE(gpu->import_host_memory(b.data(), b.size(), why));
    EXPECT_NE(why.find("unified"), std::string::npos) << why;
}
#else
TEST(VulkanHostImport, NeedsVulkan) { GTEST_SKIP() << "this build has no Vulkan backend"; }
#endif

}  // namespace
}  // namespace mst
