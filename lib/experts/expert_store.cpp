#include "experts/expert_store.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>

#include "core/error.h"

namespace mst {

ExpertStore::ExpertStore(std::unique_ptr<StorageTier> storage, std::vector<std::vector<ExpertLayout>> layouts,
                         uint64_t cache_budget_bytes, const std::string &cache_policy)
    : storage_(std::move(storage)), layouts_(std::move(layouts)),
      cache_(cache_budget_bytes, cache_policy, int(layouts_.size())),
      reads_(std::make_unique<ExpertReadQueue>(
          [this](int32_t layer, std::span<const int32_t> experts) { return read_experts(layer, experts); })) {}

namespace {

// A byte range of one file that one read (or one mapping) serves: an expert's parts that
// touch or overlap on disk, widened to the storage tier's alignment.
struct Run {
    uint32_t file = 0;
    uint64_t begin = 0;     // first part's offset, aligned down
    uint64_t end = 0;       // last part's end, aligned up
    uint64_t data_end = 0;  // last part's end: [data_end, end) is only alignment padding
};

// The runs covering `layout`'s parts in file order, and in run_of the run of each part.
// Parts adjacent on disk (the usual case: one expert's tensors are written together)
// share a run, and so do parts whose widened ranges meet: reading a gap smaller than
// the alignment costs less than a second read.
std::vector<Run> cover_parts(const ExpertLayout &layout, uint64_t alignment, std::vector<size_t> &run_of) {
    std::vector<size_t> order(layout.parts.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
        const ExpertMatrix &x = layout.parts[a], &y = layout.parts[b];
        return x.file != y.file ? x.file < y.file : x.offset < y.offset;
    });
    std::vector<Run> runs;
    run_of.assign(layout.parts.size(), 0);
    for (size_t index : order) {
        const ExpertMatrix &m = layout.parts[index];
        const uint64_t data_end = m.offset + m.nbytes();
        const uint64_t begin = m.offset / alignment * alignment;
        const uint64_t end = (data_end + alignment - 1) / alignment * alignment;
        Run *last = runs.empty() ? nullptr : &runs.back();
        if (last && last->file == m.file && begin <= last->end) {
            last->end = std::max(last->end, end);
            last->data_end = std::max(last->data_end, data_end);
        } else {
            runs.push_back(Run{m.file, begin, end, data_end});
        }
        run_of[index] = runs.size() - 1;
    }
    return runs;
}

// For a tier that maps its files: weights whose views point into the mapping, which
// give the pages back to the tier when the last user lets go. nullptr when the tier
// does not map (it then reads into buffers).
ExpertHandle map_in_place(const std::shared_ptr<StorageTier> &storage, const ExpertLayout &layout,
                          const std::vector<Run> &runs, const std::vector<size_t> &run_of, const std::string &what,
                          int layer, int expert, std::vector<FileRange> &to_populate) {
    std::vector<const uint8_t *> run_data(runs.size());
    uint64_t mapped = 0;
    for (size_t k = 0; k < runs.size(); ++k) {
        const void *data = nullptr;
        try {
            data = storage->map(runs[k].file, runs[k].begin, runs[k].end - runs[k].begin);
        } catch (const Error &e) {
            fail(e.code(), "{}: {}", what, e.what());
        }
        if (!data) {
            if (k == 0) return nullptr;
            fail(MST_ERR_INTERNAL, "storage tier '{}' mapped only part of {}", storage->name(), what);
        }
        run_data[k] = static_cast<const uint8_t *>(data);
        mapped += runs[k].end - runs[k].begin;
    }
    if (runs.empty()) return nullptr;
    for (const Run &r : runs) to_populate.push_back(FileRange{r.file, r.begin, r.end - r.begin});
    // The release callback holds the tier, so the mapping outlives every view into it.
    auto weights = std::make_shared<ExpertWeights>(ExpertWeights::Mapped{}, mapped, [storage, runs] {
        for (const Run &r : runs) storage->release(r.file, r.begin, r.end - r.begin);
    });
    weights->parts.resize(layout.parts.size());
    for (size_t i = 0; i < layout.parts.size(); ++i) {
        const ExpertMatrix &m = layout.parts[i];
        const Run &run = runs[run_of[i]];
        weights->parts[i] = WeightView{m.dtype, run_data[run_of[i]] + (m.offset - run.begin), m.rows, m.cols};
        weights->parts[i].expert_key = make_expert_key(layer, expert, int64_t(i));
    }
    return weights;
}

}  // namespace

ExpertHandle ExpertStore::prepare_read(int layer, int expert, std::vector<ReadRequest> &reads,
                                       std::vector<FileRange> &to_populate) {
    const ExpertLayout &layout = this->layout(layer, expert);
    const std::string what = fmt::format("layer {} expert {}", layer, expert);
    const uint64_t alignment = storage_->alignment();
    // Expert buffers start on a 4 KiB boundary and widened runs are multiples of the
    // alignment, so every run's destination is aligned too.
    if (alignment == 0 || AlignedBuffer::kAlignment % alignment != 0)
        fail(MST_ERR_UNSUPPORTED, "storage tier '{}' needs {}-byte alignment; expert buffers are aligned to {}",
             storage_->name(), alignment, AlignedBuffer::kAlignment);
    std::vector<size_t> run_of;
    const std::vector<Run> runs = cover_parts(layout, alignment, run_of);
    if (ExpertHandle mapped = map_in_place(storage_, layout, runs, run_of, what, layer, expert, to_populate)) return mapped;

    uint64_t total = 0;
    for (const Run &run : runs) total += run.end - run.begin;
    // A slot of the host expert slab when one is free (the memory a device backend imported).
    std::shared_ptr<ExpertWeights> weights = make_read_weights(total, memory_, slab_);
    weights->parts.resize(layout.parts.size());
    std::vector<uint8_t *> run_dst(runs.size());
    uint8_t *dst = weights->data();
    for (size_t k = 0; k < runs.size(); ++k) {
        const Run &run = runs[k];
        run_dst[k] = dst;
        reads.push_back(ReadRequest{run.file, run.begin, run.end - run.begin, dst, what, run.end - run.data_end});
        dst += run.end - run.begin;
    }
    // Each part's view starts where its bytes land inside its run's widened read.
    for (size_t i = 0; i < layout.parts.size(); ++i) {
        const ExpertMatrix &m = layout.parts[i];
        weights->parts[i] = WeightView{m.dtype, run_dst[run_of[i]] + (m.offset - runs[run_of[i]].begin), m.rows, m.cols};
        weights->parts[i].expert_key = make_expert_key(layer, expert, int64_t(i));
    }
    return weights;
}

uint64_t ExpertStore::largest_expert_read() const {
    uint64_t largest = 0;
    const uint64_t alignment = storage_->alignment();
    if (alignment == 0) return 0;
    std::vector<size_t> run_of;
    for (const std::vector<ExpertLayout> &layer : layouts_)
        for (const ExpertLayout &layout : layer) {
            if (layout.blob) {  // prepare_blob_read's buffer
                largest = std::max(largest, blob_buffer_bytes(*layout.blob, alignment));
                continue;
            }
            uint64_t total = 0;
            for (const Run &run : cover_parts(layout, alignment, run_of)) total += run.end - run.begin;
            largest = std::max(largest, total);
        }
    return largest;
}

std::vector<ExpertHandle> ExpertStore::read_experts(int layer, std::span<const int32_t> experts) {
    std::vector<ExpertHandle> handles;
    std::vector<ReadRequest> reads;
    std::vector<PendingBlob> blobs;
    std::vector<FileRange> mapped;
    handles.reserve(experts.size());
    for (int32_t e : experts) {
        const ExpertLayout &l = layout(layer, e);
        handles.push_back(l.blob ? prepare_blob_read(l, layer, e, storage_, memory_, slab_, reads, mapped, blobs)
                                 : prepare_read(layer, e, reads, mapped));
    }
    if (!reads.empty()) storage_->read_batch(reads);
    // Mapped experts need no reads; their pages come in here, after every expert of the
    // batch was mapped (and advised), so those reads were all in flight together.
    for (const FileRange &r : mapped) storage_->populate(r.file, r.offset, r.length);
    // Checked and decoded before the cache sees them: a bad blob is never cached.
    finish_blob_reads(blobs, blob_options_);
    for (size_t i = 0; i < experts.size(); ++i) cache_.insert(ExpertKey{layer, experts[i]}, handles[i]);
    return handles;
}

void ExpertStore::set_prefetch(int layers_ahead, PrefetchRule rule) {
    prefetch_layers_ = std::max(layers_ahead, 0);
    if (prefetch_layers_ == 0) {
        prefetcher_.reset();
        return;
    }
    prefetcher_ = std::make_unique<ExpertPrefetcher>(
        [this](int32_t layer, std::vector<int32_t> experts) {
            return reads_->submit(layer, std::move(experts), ExpertReadQueue::Priority::kAhead);
        },
        [this](const ExpertKey &key) { return layout(key.layer, key.expert).nbytes(); }, rule);
}

void ExpertStore::prefetch(int layer, std::span<const int32_t> experts, std::span<const float> weights) {
    if (!prefetcher_ || layer < 0 || layer >= n_layers() || layouts_[size_t(layer)].empty()) return;
    for (int32_t e : experts)
        if (e < 0 || e >= n_experts(layer))
            fail(MST_ERR_INTERNAL, "prefetch of expert {} for layer {}, which has {} experts", e, layer, n_experts(layer));
    if (!weights.empty() && weights.size() != experts.size())
        fail(MST_ERR_INTERNAL, "prefetch of {} experts with {} weights for layer {}", experts.size(), weights.size(), layer);
    prefetcher_->predict(layer, experts, weights, [this](const ExpertKey &key) { return cache_.contains(key); });
}

std::vector<PendingExpert> ExpertStore::fetch_async(int layer, std::span<const int32_t> experts,
                                                    ExpertIoStats &stats) {
    if (layer < 0 || layer >= n_layers() || layouts_[size_t(layer)].empty())
        fail(MST_ERR_INTERNAL, "expert fetch for layer {}, which has no routed experts", layer);
    std::vector<PendingExpert> result(experts.size());
    std::vector<int32_t> to_read;
    std::vector<size_t> read_slot;  // result index of each expert in to_read
    for (size_t i = 0; i < experts.size(); ++i) {
        const int32_t e = experts[i];
        if (e < 0 || e >= n_experts(layer))
            fail(MST_ERR_INTERNAL, "expert {} requested for layer {}, which has {} experts", e, layer, n_experts(layer));
        PendingExpert &p = result[i];
        p.store_ = this;
        p.layer_ = layer;
        p.expert_ = e;
        const ExpertKey key{layer, e};
        // A staged read comes first, even when it already landed in the cache: it is a miss
        // served ahead of time, and taking it keeps no stale read behind for a later step.
        if (prefetcher_)
            if (std::optional<std::shared_future<ExpertHandle>> staged = prefetcher_->take(key)) {
                // Needed now: a read ahead still queued must not wait behind other reads ahead.
                if (staged->wait_for(std::chrono::seconds(0)) != std::future_status::ready) reads_->promote(layer, e);
                p.future_ = std::move(*staged);
                p.prefetched_ = true;
                continue;
            }
        if ((p.handle_ = cache_.find(key))) {
            ++stats.hits;
            continue;
        }
        // The same expert asked for twice in one call is read once.
        if (std::find(to_read.begin(), to_read.end(), e) != to_read.end()) continue;
        to_read.push_back(e);
        read_slot.push_back(i);
    }
    if (!to_read.empty()) {
        const std::vector<std::shared_future<ExpertHandle>> futures =
            reads_->submit(layer, to_read, ExpertReadQueue::Priority::kDemand);
        for (size_t j = 0; j < futures.size(); ++j) result[read_slot[j]].future_ = futures[j];
        for (size_t i = 0; i < experts.size(); ++i)  // duplicates share the first copy, counted once
            if (!result[i].handle_ && !result[i].future_.valid()) {
                const size_t first = size_t(std::find(to_read.begin(), to_read.end(), experts[i]) - to_read.begin());
                result[i].future_ = futures[first];
                result[i].counted_ = true;
            }
    }
    if (prefetcher_) prefetcher_->settle(layer, experts);
    return result;
}

std::vector<ExpertHandle> ExpertStore::fetch(int layer, std::span<const int32_t> experts, ExpertIoStats &stats) {
    std::vector<PendingExpert> pending = fetch_async(layer, experts, stats);
    std::vector<ExpertHandle> result;
    result.reserve(pending.size());
    for (PendingExpert &p : pending) result.push_back(p.get(stats));
    return result;
}

bool PendingExpert::ready() const {
    return handle_ || future_.wait_for(std::chrono::seconds(0)) == std::future_status::ready;
}

ExpertHandle PendingExpert::get(ExpertIoStats &stats) {
    if (handle_) return handle_;
    const auto start = std::chrono::steady_clock::now();
    ExpertHandle handle;
    try {
        handle = future_.get();
    } catch (...) {
        if (!prefetched_) throw;
    }
    stats.read_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (!handle) {
        // A read ahead of need that failed: read it again now, which throws the error if
        // it persists (and counts the read itself).
        handle_ = store_->fetch(layer_, std::span<const int32_t>(&expert_, 1), stats).front();
        return handle_;
    }
    if (!counted_) {
        ++stats.misses;
        stats.bytes_read += handle->nbytes;
        counted_ = true;
    }
    handle_ = std::move(handle);
    return handle_;
}

}  // namespace mst
