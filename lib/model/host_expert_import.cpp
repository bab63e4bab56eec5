#include "model/host_expert_import.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstdlib>
#include <memory>

#include "backends/host_memory_import.h"
#include "core/error.h"

namespace mst {

namespace {

constexpr uint64_t kMiB = uint64_t(1) << 20;
// One import per slab: a few hundred MiB keeps the driver's allocations few without one
// enormous pinned range.
constexpr uint64_t kSlabBytes = 256 * kMiB;

// MST_HOST_EXPERT_SLAB_MB: unset -> no cap (~0); else the cap in bytes (0: off).
uint64_t slab_cap_from_environment() {
    const char *env = std::getenv("MST_HOST_EXPERT_SLAB_MB");
    if (!env || !*env) return ~uint64_t(0);
    char *end = nullptr;
    const unsigned long long mb = std::strtoull(env, &end, 10);
    if (*end != '\0' || env[0] == '-')
        fail(MST_ERR_INVALID_ARGUMENT, "MST_HOST_EXPERT_SLAB_MB='{}': expected a whole number of MiB (0: no slab)",
             env);
    return uint64_t(mb) * kMiB;
}

}  // namespace

uint64_t host_expert_slab_slots(uint64_t cache_budget, uint64_t slot_bytes) {
    const uint64_t cap = slab_cap_from_environment();
    if (cap == 0 || slot_bytes == 0) return 0;
    const uint64_t cached = (cache_budget + slot_bytes - 1) / slot_bytes;
    // Beyond the budget: experts a layer step still uses after eviction, reads ahead, and
    // slots set aside until the device's copies from them have run (a layer's misses).
    const uint64_t in_flight = std::max<uint64_t>(64, cached / 8);
    return std::min(cached + in_flight, cap / slot_bytes);
}

std::string import_host_expert_slab(ExpertStore &store, Backend &backend) {
    HostMemoryImport *importer = host_memory_import(backend);
    if (!importer) return fmt::format("backend {} does not import host memory", backend.name());
    const uint64_t slot = store.largest_expert_read();
    const uint64_t slots = host_expert_slab_slots(store.cache_budget(), slot);
    if (slots == 0) return slot == 0 ? "no expert reads into buffers" : "MST_HOST_EXPERT_SLAB_MB=0 or below one expert";
    auto slab = std::make_shared<HostExpertSlab>(slot, slots, kSlabBytes,
                                                 [importer] { return importer->device_reads_epoch(); });
    std::vector<const void *> imported;
    for (const HostExpertSlab::Region &r : slab->regions()) {
        std::string why;
        if (importer->import_host_memory(r.data, r.bytes, why)) {
            imported.push_back(r.data);
            continue;
        }
        // All or nothing: a slab half imported would split the same streamed decode's
        // uploads between two paths for no reason the user chose.
        for (const void *p : imported) importer->release_host_memory(p);
        return fmt::format("the backend declined the host expert slab: {}", why);
    }
    slab->set_release([importer](const void *p) { importer->release_host_memory(p); });
    store.set_host_slab(slab);
    return fmt::format("host expert slab: {} slots of {} bytes in {} imported region(s)", slots,
                       slab->slot_bytes(), imported.size());
}

}  // namespace mst
