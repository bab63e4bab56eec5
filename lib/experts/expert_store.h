// The expert store: the one way a model gets routed-expert weights. Ask for a layer's
// experts, get ready buffers or pending ones; misses are read from storage in one batch
// (one read per contiguous byte range) on the store's I/O threads and offered to the
// budgeted cache.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "experts/expert_blob.h"
#include "experts/expert_cache.h"
#include "experts/expert_layout.h"
#include "experts/expert_prefetcher.h"
#include "experts/expert_read_queue.h"
#include "experts/host_expert_slab.h"
#include "storage/storage_tier.h"

namespace mst {

// What one caller's fetches cost; sessions keep one each.
struct ExpertIoStats {
    uint64_t hits = 0;
    uint64_t misses = 0;
    uint64_t bytes_read = 0;
    double read_seconds = 0.0;
};

class ExpertStore;

// One expert of a fetch: ready at once (a cache hit) or when its read lands.
class PendingExpert {
public:
    PendingExpert() = default;
    // Whether get() would return without waiting.
    bool ready() const;
    // The weights, waiting for the read if needed (the wait counts in stats.read_seconds,
    // the read in stats.misses and bytes_read, once). Throws mst::Error as
    // ExpertStore::fetch does; a failed read ahead of need is read again here first.
    ExpertHandle get(ExpertIoStats &stats);
    // Read ahead of need (its read was queued before the fetch asked for it).
    bool read_ahead() const { return prefetched_; }

private:
    friend class ExpertStore;
    ExpertHandle handle_;                      // set once known
    std::shared_future<ExpertHandle> future_;  // the read, when not known yet
    ExpertStore *store_ = nullptr;             // for reading again a failed prefetch
    int32_t layer_ = 0, expert_ = 0;
    bool prefetched_ = false;  // read ahead: a failure is retried, not thrown
    bool counted_ = false;     // stats already hold this read (or it is a duplicate)
};

class ExpertStore {
public:
    // layouts[layer] holds that layer's experts (empty for a layer without routed experts).
    // cache_policy: one of cache_policy_names() ("none", "lru", "lrfu", "lfu", "arc").
    ExpertStore(std::unique_ptr<StorageTier> storage, std::vector<std::vector<ExpertLayout>> layouts,
                uint64_t cache_budget_bytes, const std::string &cache_policy = "lrfu");

    int n_layers() const { return int(layouts_.size()); }
    int n_experts(int layer) const { return int(layouts_.at(size_t(layer)).size()); }
    const ExpertLayout &layout(int layer, int expert) const { return layouts_.at(size_t(layer)).at(size_t(expert)); }
    const StorageTier &storage() const { return *storage_; }

    // The weights of `experts` of `layer`, in the same order. Throws mst::Error (I/O,
    // bad format) naming the layer and expert; the store stays usable afterwards.
    std::vector<ExpertHandle> fetch(int layer, std::span<const int32_t> experts, ExpertIoStats &stats);
    // The same, without waiting: the reads are started and each expert is handed back
    // pending, so the caller can compute the ready ones while the rest land. Errors in
    // the arguments throw here; read errors throw from PendingExpert::get.
    std::vector<PendingExpert> fetch_async(int layer, std::span<const int32_t> experts, ExpertIoStats &stats);

    // How experts stored as packed-file blobs are read (checksums on by default).
    void set_blob_reads(BlobReadOptions options) { blob_options_ = std::move(options); }

    // Prefetch: read predicted experts ahead on the I/O threads (see expert_prefetcher.h),
    // for the next `layers_ahead` MoE layers (0 = off), reading the guesses `rule` keeps.
    void set_prefetch(int layers_ahead, PrefetchRule rule = default_prefetch_rule());
    bool prefetch_enabled() const { return prefetch_layers_ > 0; }
    int prefetch_layers() const { return prefetch_layers_; }
    // The predictor's guesses for `layer` with the router's weights for them (empty: unknown).
    void prefetch(int layer, std::span<const int32_t> experts, std::span<const float> weights = {});
    PrefetchStats prefetch_stats() const { return prefetcher_ ? prefetcher_->stats() : PrefetchStats{}; }

    bool is_cached(int layer, int expert) const { return cache_.contains(ExpertKey{layer, expert}); }
    // The expert if it is in the cache now, counting nothing (ExpertCache::peek).
    ExpertHandle peek_cached(int layer, int expert) const { return cache_.peek(ExpertKey{layer, expert}); }
    ExpertCacheStats cache_stats() const { return cache_.stats(); }
    ExpertCacheStats layer_cache_stats(int layer) const { return cache_.layer_stats(layer); }
    const std::string &cache_policy() const { return cache_.policy_name(); }
    uint64_t cache_budget() const { return cache_.budget(); }
    // Before the store is first used: see ExpertCache::set_budget.
    void set_cache_budget(uint64_t bytes) { cache_.set_budget(bytes); }
    // Before the store is first used: see ExpertCache::set_lookups_per_token.
    void set_experts_per_token(int32_t k) { cache_.set_lookups_per_token(k); }
    // Experts read from storage into buffers (not mapped in place, not packed blobs) go to
    // slots of `slab` while it has free ones (host_expert_slab.h); before the store is
    // first used. Null: a buffer each, as before.
    void set_host_slab(std::shared_ptr<HostExpertSlab> slab) { slab_ = std::move(slab); }
    const HostExpertSlab *host_slab() const { return slab_.get(); }
    // The largest buffer one expert's read needs (its parts widened to the tier's alignment):
    // the slab's slot size.
    uint64_t largest_expert_read() const;
    uint64_t live_expert_bytes() const { return memory_->live_bytes.load(); }
    uint64_t peak_expert_bytes() const { return memory_->peak_bytes.load(); }

private:
    // Allocate one expert's buffer and append the reads that fill it, widened to the
    // tier's alignment; for a mapping tier, point the weights into the mapping instead
    // (no reads) and append the mapped ranges to populate.
    ExpertHandle prepare_read(int layer, int expert, std::vector<ReadRequest> &reads,
                              std::vector<FileRange> &to_populate);
    // Read distinct experts of a layer in one batch and offer them to the cache.
    std::vector<ExpertHandle> read_experts(int layer, std::span<const int32_t> experts);

    // Shared with mapped weights, whose views point into the tier's mapping.
    std::shared_ptr<StorageTier> storage_;
    std::vector<std::vector<ExpertLayout>> layouts_;
    BlobReadOptions blob_options_;
    ExpertCache cache_;
    std::shared_ptr<ExpertMemoryCounter> memory_ = std::make_shared<ExpertMemoryCounter>();
    std::shared_ptr<HostExpertSlab> slab_;
    std::unique_ptr<ExpertPrefetcher> prefetcher_;
    int prefetch_layers_ = 0;
    std::unique_ptr<ExpertReadQueue> reads_;  // last: its threads call read_experts
};

}  // namespace mst
