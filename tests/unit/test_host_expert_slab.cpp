// The host expert cache's slab (experts/host_expert_slab.h): slots are handed out until
// none is free, a slot given back is not handed out again until the device's count of
// finished waits has passed the count at the give-back (a copy recorded from it may still
// be pending), and the sizing switch MST_HOST_EXPERT_SLAB_MB caps or turns it off.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <set>

#include "core/error.h"
#include "experts/host_expert_slab.h"
#include "model/host_expert_import.h"

namespace mst {
namespace {

TEST(HostExpertSlab, SlotsAreAlignedDistinctAndSpreadOverSlabs) {
    HostExpertSlab slab(5000, 5, 3 * 8192, {});
    EXPECT_EQ(slab.slot_bytes(), 8192u);  // rounded up to 4 KiB
    EXPECT_EQ(slab.regions().size(), 2u);  // 3 slots a slab: 3 + 2
    std::set<uint8_t *> seen;
    for (int i = 0; i < 5; ++i) {
        uint8_t *s = slab.take(5000);
        ASSERT_NE(s, nullptr);
        EXPECT_EQ(reinterpret_cast<uintptr_t>(s) % 4096, 0u);
        EXPECT_TRUE(seen.insert(s).second);
    }
    EXPECT_EQ(slab.take(100), nullptr) << "every slot is taken";
    EXPECT_EQ(slab.stats().taken, 5u);
    EXPECT_EQ(slab.stats().full, 1u);
}

TEST(HostExpertSlab, AnExpertLargerThanASlotGetsNone) {
    HostExpertSlab slab(4096, 2, 1 << 20, {});
    EXPECT_EQ(slab.take(4097), nullptr);
    EXPECT_NE(slab.take(4096), nullptr);
}

TEST(HostExpertSlab, AGivenBackSlotWaitsForTheDevice) {
    std::atomic<uint64_t> epoch{7};
    HostExpertSlab slab(4096, 1, 1 << 20, [&] { return epoch.load(); });
    uint8_t *s = slab.take(4096);
    ASSERT_NE(s, nullptr);
    slab.give_back(s);  // at epoch 7: a copy recorded from it may still run
    EXPECT_EQ(slab.stats().waiting, 1u);
    EXPECT_EQ(slab.take(4096), nullptr) << "reused before the device finished";
    epoch = 8;  // the device finished every copy recorded before the give-back
    EXPECT_EQ(slab.take(4096), s);
    EXPECT_EQ(slab.stats().waiting, 0u);
}

TEST(HostExpertSlab, WithoutADeviceASlotIsReusedAtOnce) {
    HostExpertSlab slab(4096, 1, 1 << 20, {});
    uint8_t *s = slab.take(4096);
    slab.give_back(s);
    EXPECT_EQ(slab.take(4096), s);
}

TEST(HostExpertSlab, ReleaseRunsForEverySlabAtTheEnd) {
    std::set<const void *> released;
    std::set<const void *> starts;
    {
        HostExpertSlab slab(4096, 3, 8192, {});
        for (const HostExpertSlab::Region &r : slab.regions()) starts.insert(r.data);
        slab.set_release([&](const void *p) { released.insert(p); });
    }
    EXPECT_EQ(starts.size(), 2u);
    EXPECT_EQ(released, starts);
}

TEST(HostExpertSlab, ZeroSizesAreAnError) {
    EXPECT_THROW(HostExpertSlab(0, 4, 1 << 20, {}), Error);
    EXPECT_THROW(HostExpertSlab(4096, 0, 1 << 20, {}), Error);
}

TEST(HostExpertSlabSizing, TheBudgetAndExpertsInFlightCappedByTheSwitch) {
    unsetenv("MST_HOST_EXPERT_SLAB_MB");
    // 100 experts' budget and max(64, 100 / 8) in flight.
    EXPECT_EQ(host_expert_slab_slots(100 * 4096, 4096), 164u);
    EXPECT_EQ(host_expert_slab_slots(8000 * 4096, 4096), 9000u);  // in flight: an eighth
    setenv("MST_HOST_EXPERT_SLAB_MB", "1", 1);
    EXPECT_EQ(host_expert_slab_slots(8000 * 4096, 4096), 256u);
    setenv("MST_HOST_EXPERT_SLAB_MB", "0", 1);
    EXPECT_EQ(host_expert_slab_slots(8000 * 4096, 4096), 0u);
    setenv("MST_HOST_EXPERT_SLAB_MB", "lots", 1);
    try {
        host_expert_slab_slots(4096, 4096);
        ADD_FAILURE() << "a bad value was taken";
    } catch (const Error &e) {
        EXPECT_NE(std::string(e.what()).find("MST_HOST_EXPERT_SLAB_MB"), std::string::npos) << e.what();
    }
    unsetenv("MST_HOST_EXPERT_SLAB_MB");
}

}  // namespace
}  // namespace mst
