// Streamed decode through the library with the host expert cache's slab imported by the
// Vulkan backend (docs/device_graph.md "The library's host expert cache, imported"): a GPU
// expert budget of a quarter of the experts, a host cache smaller than one token's
// experts (so slots are given back and reused while copies from them may be pending), on
// a discrete GPU's upload path (MST_VULKAN_SEPARATE_MEMORY=1 on lavapipe). The logits of
// every step equal bit for bit those with the import off (MST_VULKAN_HOST_IMPORT=0,
// every upload through the staging ring), and every expert byte uploaded was copied by
// the device from imported memory. Skipped without a Vulkan device.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "golden.h"
#include "golden_backends.h"
#include "model/loaded_model.h"
#include "model/model.h"
#include "backends/device_expert_cache.h"
#include "test_paths.h"

#ifdef MST_HAVE_VULKAN
#include "backends/vulkan/vulkan_backend.h"
#endif

namespace mst {
namespace {

#ifdef MST_HAVE_VULKAN
struct Streamed {
    std::vector<int32_t> ids;
    std::vector<std::vector<float>> logits;  // the prompt's, then each decode step's
    uint64_t direct = 0, staged = 0;         // upload bytes by way (CommandStream)
    uint64_t expert_uploads = 0;             // GPU expert cache bytes uploaded
    uint64_t gpu_misses = 0, host_evictions = 0;
    DeviceExpertCacheStats device;
    HostExpertSlabStats slab;
    bool has_slab = false;
    bool transfer_lane = false;                   // expert copies on the transfer lane
    uint64_t transfer_submissions = 0, semaphore_waits = 0, transfer_bytes = 0;
    uint64_t waits = 0;  // the backend's submissions the host waited for (VulkanBackend::submissions)
};

constexpr uint64_t kExpertBytes = 3 * 32 * 64 * 2;  // qwen3_moe_tiny: gate, up, down of bf16 [32][64]
constexpr uint64_t kModelExpertBytes = 2 * 8 * kExpertBytes;  // two sparse layers of 8 experts

struct StreamedSetup {
    bool import = true;
    bool gpu_prefetch = false;                       // guessed experts copied into the GPU cache ahead
    uint64_t gpu_budget = kModelExpertBytes / 4;     // streamed: a quarter on the GPU
    uint64_t host_budget = 6 * kExpertBytes;         // below one token's 8: host evictions
    bool transfer_queue = true;                      // MST_VULKAN_TRANSFER_QUEUE
    int32_t prefetch_layers = 1;                     // the store's guesses (LoadOptions::prefetch_layers)
    bool stream_overlap = true;                      // MST_VULKAN_STREAM_OVERLAP
};

Streamed decode(const std::string &dir, const StreamedSetup &setup, int32_t steps) {
    setenv("MST_VULKAN_SEPARATE_MEMORY", "1", 1);
    if (!setup.import) setenv("MST_VULKAN_HOST_IMPORT", "0", 1);
    if (!setup.transfer_queue) setenv("MST_VULKAN_TRANSFER_QUEUE", "0", 1);
    LoadOptions options;
    options.backend = "vulkan";
    options.storage = "pread";  // reads into buffers (the slab), not a mapping
    options.gpu_expert_cache_bytes = setup.gpu_budget;
    options.expert_cache_bytes = setup.host_budget;
    options.prefetch_layers = setup.prefetch_layers;  // reads ahead land (and evict) while the layer's copies are pending
    const auto model = load_model(dir, options);
    unsetenv("MST_VULKAN_SEPARATE_MEMORY");
    unsetenv("MST_VULKAN_HOST_IMPORT");
    unsetenv("MST_VULKAN_TRANSFER_QUEUE");
    auto *vk = dynamic_cast<VulkanBackend *>(model->backend.get());
    EXPECT_NE(vk, nullptr);
    Streamed s;
    if (!vk) return s;
    vk->set_expert_prefetch(setup.gpu_prefetch);
    vk->set_stream_overlap(setup.stream_overlap);
    const test::Golden golden = test::load_golden(dir + "/golden.safetensors");
    ForwardOptions fo;
    fo.experts_per_token = model->experts_per_token;
    const int32_t prompt = int32_t(golden.input_ids.size());
    const auto state = model->model->create_state(prompt + steps + 1);
    std::vector<float> logits(size_t(model->config.vocab_size));
    ExpertIoStats io;
    model->model->forward(*state, 0, golden.input_ids, fo, logits.data(), io);
    s.logits.push_back(logits);
    for (int32_t pos = prompt; pos < prompt + steps; ++pos) {
        const int32_t next = int32_t(std::max_element(logits.begin(), logits.end()) - logits.begin());
        s.ids.push_back(next);
        const std::vector<int32_t> one{next};
        model->model->forward(*state, pos, one, fo, logits.data(), io);
        s.logits.push_back(logits);
    }
    s.direct = vk->stream().direct_bytes();
    s.staged = vk->stream().staged_bytes();
    s.expert_uploads = vk->expert_cache_stats().bytes_uploaded;
    s.gpu_misses = vk->expert_cache_stats().misses;
    s.host_evictions = model->model->experts().cache_stats().evictions;
    s.device = vk->device_expert_cache_stats();
    s.transfer_lane = vk->stream().transfer_lane();
    s.transfer_submissions = vk->stream().transfer().submissions();
    s.transfer_bytes = vk->stream().transfer().bytes();
    s.semaphore_waits = vk->stream().semaphore_waits();
    s.waits = vk->submissions();
    if (const HostExpertSlab *slab = model->model->experts().host_slab()) {
        s.has_slab = true;
        s.slab = slab->stats();
    }
    return s;
}
#endif

TEST(VulkanStreamedImport, ImportedSlabEqualsTheStagingRingBitForBit) {
#ifndef MST_HAVE_VULKAN
    GTEST_SKIP() << "built without Vulkan";
#else
    if (const std::string why = golden_suite::backend_unavailable("vulkan"); !why.empty()) GTEST_SKIP() << why;
    const std::string dir = test::data_path("qwen3_moe_tiny");
    const int32_t steps = 12;
    const Streamed on = decode(dir, StreamedSetup{.import = true}, steps);
    const Streamed off = decode(dir, StreamedSetup{.import = false}, steps);
    ASSERT_EQ(on.logits.size(), size_t(steps + 1));
    EXPECT_EQ(on.ids, off.ids);
    for (size_t i = 0; i < on.logits.size(); ++i) EXPECT_EQ(on.logits[i], off.logits[i]) << "step " << i;

    // Streamed indeed: the GPU cache missed, the host cache evicted.
    EXPECT_GT(on.gpu_misses, 0u);
    EXPECT_GT(on.host_evictions, 0u);
    // With the import, every expert byte uploaded came straight from the imported slab,
    // and only the rest (dense weights, inputs) took the ring.
    ASSERT_TRUE(on.has_slab) << "the backend declined the host expert slab";
    EXPECT_GT(on.expert_uploads, 0u);
    EXPECT_EQ(on.direct, on.expert_uploads);
    // The same uploads either way: what the import copied directly the ring carried without it.
    EXPECT_EQ(off.direct, 0u);
    EXPECT_FALSE(off.has_slab) << "no slab where the backend does not import";
    EXPECT_EQ(on.expert_uploads, off.expert_uploads);
    EXPECT_EQ(on.direct + on.staged, off.staged);
    // Slots were given back and taken again (after the device's copies from them had run).
    EXPECT_GT(on.slab.taken, on.slab.slots) << "the test did not reuse a slot";
    EXPECT_EQ(on.slab.full, 0u);
#endif
}

TEST(VulkanStreamedImport, GuessesCopiedAheadIntoTheGpuCacheChangeNoResult) {
    // The prefetcher's guesses for the next layer copied into the GPU cache behind the
    // current layer's work (docs/device_graph.md "Guessed experts copied ahead into the GPU
    // cache"): the same logits bit for bit as each layer copying its own misses, guesses
    // used, and the bytes over the bus counted in one place with the rest.
#ifndef MST_HAVE_VULKAN
    GTEST_SKIP() << "built without Vulkan";
#else
    if (const std::string why = golden_suite::backend_unavailable("vulkan"); !why.empty()) GTEST_SKIP() << why;
    const std::string dir = test::data_path("qwen3_moe_tiny");
    const int32_t steps = 12;
    // Three quarters of the experts on the GPU: room for guesses beside the layer in use and the
    // guessed layer's own cached experts (which a guess never evicts); every
    // expert in host memory, where a guess is copied from.
    StreamedSetup setup{.gpu_prefetch = true, .gpu_budget = kModelExpertBytes * 3 / 4, .host_budget = kModelExpertBytes};
    const Streamed ahead = decode(dir, setup, steps);
    setup.gpu_prefetch = false;
    const Streamed own = decode(dir, setup, steps);
    ASSERT_EQ(ahead.logits.size(), size_t(steps + 1));
    EXPECT_EQ(ahead.ids, own.ids);
    for (size_t i = 0; i < ahead.logits.size(); ++i) EXPECT_EQ(ahead.logits[i], own.logits[i]) << "step " << i;
    EXPECT_EQ(own.device.prefetched, 0u);
    EXPECT_GT(ahead.device.prefetched, 0u);
    EXPECT_GT(ahead.device.prefetch_used, 0u);
    EXPECT_LE(ahead.device.prefetch_used + ahead.device.prefetch_wasted, ahead.device.prefetched);
    // A guess used is a copy the layer did not make after its router's wait.
    std::printf("copies ahead: %llu parts prefetched, %llu used, %llu wasted, %llu skipped; GPU misses %llu (own "
                "copies only: %llu); bytes uploaded %llu (%llu)\n",
                (unsigned long long)ahead.device.prefetched, (unsigned long long)ahead.device.prefetch_used,
                (unsigned long long)ahead.device.prefetch_wasted, (unsigned long long)ahead.device.prefetch_skipped,
                (unsigned long long)ahead.device.misses, (unsigned long long)own.device.misses,
                (unsigned long long)ahead.device.bytes_uploaded, (unsigned long long)own.device.bytes_uploaded);
    EXPECT_LT(ahead.device.misses, own.device.misses);
    // Every upload of an expert, guessed or needed, came from the imported slab.
    EXPECT_EQ(ahead.device.direct_bytes, ahead.device.bytes_uploaded);
#endif
}

TEST(VulkanStreamedImport, TheTransferLaneChangesNoResult) {
    // Expert copies (misses and guesses) on the transfer lane, the compute waiting on its
    // timeline semaphore (docs/device_graph.md "Expert copies on a transfer queue"), against
    // MST_VULKAN_TRANSFER_QUEUE=0 (every copy on the compute queue, main's order): the same
    // logits bit for bit, with and without guesses copied ahead, a quarter and three
    // quarters of the experts on the GPU. Lavapipe has one queue: the lane's submissions go
    // to it, waited for through the same semaphore.
#ifndef MST_HAVE_VULKAN
    GTEST_SKIP() << "built without Vulkan";
#else
    if (const std::string why = golden_suite::backend_unavailable("vulkan"); !why.empty()) GTEST_SKIP() << why;
    const std::string dir = test::data_path("qwen3_moe_tiny");
    const int32_t steps = 8;
    for (const bool guesses : {false, true}) {
        StreamedSetup setup{.gpu_prefetch = guesses};
        if (guesses) {
            setup.gpu_budget = kModelExpertBytes * 3 / 4;
            setup.host_budget = kModelExpertBytes;
        }
        SCOPED_TRACE(guesses ? "guesses copied ahead" : "misses only");
        const Streamed lane = decode(dir, setup, steps);
        setup.transfer_queue = false;
        const Streamed main_order = decode(dir, setup, steps);
        if (!lane.transfer_lane) GTEST_SKIP() << "this device has no timeline semaphores: no transfer lane";
        ASSERT_EQ(lane.logits.size(), size_t(steps + 1));
        EXPECT_EQ(lane.ids, main_order.ids);
        for (size_t i = 0; i < lane.logits.size(); ++i) EXPECT_EQ(lane.logits[i], main_order.logits[i]) << "step " << i;
        // The cache's copies went over the lane (not a miss over budget, copied into scratch
        // on the compute queue), and the compute waited for them on the device.
        EXPECT_LE(lane.transfer_bytes, lane.expert_uploads);
        EXPECT_GT(lane.transfer_bytes, lane.expert_uploads / 2);
        EXPECT_GT(lane.transfer_submissions, 0u);
        EXPECT_GT(lane.semaphore_waits, 0u);
        EXPECT_FALSE(main_order.transfer_lane);
        EXPECT_EQ(main_order.transfer_submissions, 0u);
        EXPECT_EQ(main_order.semaphore_waits, 0u);
        EXPECT_EQ(lane.expert_uploads, main_order.expert_uploads);
        EXPECT_EQ(lane.device.misses, main_order.device.misses);
        if (guesses) {
            EXPECT_GT(lane.device.prefetch_used, 0u);
            EXPECT_EQ(lane.device.prefetch_used, main_order.device.prefetch_used);
        }
    }
#endif
}

TEST(VulkanStreamedImport, OverlappedCopiesAndProductsChangeNoResult) {
    // Each missed expert's copies a lane batch of their own and the hits' products first
    // (docs/device_graph.md "Hits first, each miss on its own copies") against
    // MST_VULKAN_STREAM_OVERLAP=0 (a layer's products behind all of its copies): the same
    // logits bit for bit, with and without guesses copied ahead.
#ifndef MST_HAVE_VULKAN
    GTEST_SKIP() << "built without Vulkan";
#else
    if (const std::string why = golden_suite::backend_unavailable("vulkan"); !why.empty()) GTEST_SKIP() << why;
    const std::string dir = test::data_path("qwen3_moe_tiny");
    const int32_t steps = 8;
    for (const bool guesses : {false, true}) {
        StreamedSetup setup{.gpu_prefetch = guesses};
        if (guesses) {
            setup.gpu_budget = kModelExpertBytes * 3 / 4;
            setup.host_budget = kModelExpertBytes;
        }
        SCOPED_TRACE(guesses ? "guesses copied ahead" : "misses only");
        const Streamed overlapped = decode(dir, setup, steps);
        setup.stream_overlap = false;
        const Streamed behind_all = decode(dir, setup, steps);
        if (!overlapped.transfer_lane) GTEST_SKIP() << "this device has no timeline semaphores: no transfer lane";
        ASSERT_EQ(overlapped.logits.size(), size_t(steps + 1));
        EXPECT_EQ(overlapped.ids, behind_all.ids);
        for (size_t i = 0; i < overlapped.logits.size(); ++i)
            EXPECT_EQ(overlapped.logits[i], behind_all.logits[i]) << "step " << i;
        EXPECT_EQ(overlapped.expert_uploads, behind_all.expert_uploads);
        EXPECT_EQ(overlapped.transfer_bytes, behind_all.transfer_bytes);
        // A lane batch per missed expert instead of one per layer, and a compute submission
        // waiting for each.
        EXPECT_GT(overlapped.transfer_submissions, behind_all.transfer_submissions);
        EXPECT_GT(overlapped.semaphore_waits, behind_all.semaphore_waits);
        // (Not the host's waits: with a host cache below a token's experts, how many waits a
        // layer takes depends on when its reads land, one_token_experts in lib/model/ffn.cpp.)
    }
#endif
}

TEST(VulkanStreamedImport, TheGuessComesWithTheLayersOwnIdsAtOneWait) {
    // With prefetch, a decode token's guess for the next sparse layer is routed beside the
    // layer's own router and read at the same wait (LayerRouting::route_with_next): the
    // host waits as often as without prefetch, and the guesses still reach the GPU cache.
#ifndef MST_HAVE_VULKAN
    GTEST_SKIP() << "built without Vulkan";
#else
    if (const std::string why = golden_suite::backend_unavailable("vulkan"); !why.empty()) GTEST_SKIP() << why;
    const std::string dir = test::data_path("qwen3_moe_tiny");
    const int32_t steps = 6;
    StreamedSetup setup{.gpu_prefetch = true, .gpu_budget = kModelExpertBytes * 3 / 4, .host_budget = kModelExpertBytes};
    const Streamed guessing = decode(dir, setup, steps);
    setup.prefetch_layers = 0;
    const Streamed plain = decode(dir, setup, steps);
    ASSERT_EQ(guessing.logits.size(), size_t(steps + 1));
    EXPECT_EQ(guessing.ids, plain.ids);
    for (size_t i = 0; i < guessing.logits.size(); ++i) EXPECT_EQ(guessing.logits[i], plain.logits[i]) << "step " << i;
    EXPECT_GT(guessing.device.prefetched, 0u);
    EXPECT_EQ(plain.device.prefetched, 0u);
    EXPECT_EQ(guessing.waits, plain.waits) << "the guess cost a wait of its own";
#endif
}

}  // namespace
}  // namespace mst
