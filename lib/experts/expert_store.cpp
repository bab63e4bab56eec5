#include "experts/expert_store.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>

#include "core/error.h"

namespace mst {

ExpertStore::ExpertStore(std::unique_ptr<StorageTier> storage, std::vector<std::vector<ExpertLayout>> layouts,
                         uint64_t cache_budget_bytes, const std::string &cache_policy)
    : storage_(std::move(storage)), layouts_(std::move(layouts)),
      cache_(cache_budget_bytes, cache_policy, int(layouts_.size())) {}

ExpertHandle ExpertStore::prepare_read(int layer, int expert, std::vector<ReadRequest> &reads) {
    const ExpertLayout &layout = this->layout(layer, expert);
    // Lay the parts out in file order, so that parts adjacent on disk (the usual case:
    // one expert's tensors are written together) become one read.
    std::vector<size_t> order(layout.parts.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
        const ExpertMatrix &x = layout.parts[a], &y = layout.parts[b];
        return x.file != y.file ? x.file < y.file : x.offset < y.offset;
    });
    auto weights = std::make_shared<ExpertWeights>(layout.nbytes(), memory_);
    weights->parts.resize(layout.parts.size());
    uint8_t *base = weights->buffer.data();
    uint64_t pos = 0;
    const std::string what = fmt::format("layer {} expert {}", layer, expert);
    for (size_t index : order) {
        const ExpertMatrix *m = &layout.parts[index];
        const uint64_t n = m->nbytes();
        ReadRequest *last = reads.empty() ? nullptr : &reads.back();
        // Contiguous both on disk and in memory: one read serves both.
        const bool extends_last = last && last->file == m->file && last->offset + last->length == m->offset &&
                                  static_cast<uint8_t *>(last->dst) + last->length == base + pos;
        if (extends_last) {
            last->length += n;
        } else {
            reads.push_back(ReadRequest{m->file, m->offset, n, base + pos, what});
        }
        weights->parts[index] = WeightView{m->dtype, base + pos, m->rows, m->cols};
        pos += n;
    }
    return weights;
}

std::vector<ExpertHandle> ExpertStore::read_experts(int layer, std::span<const int32_t> experts) {
    std::vector<ExpertHandle> handles;
    std::vector<ReadRequest> reads;
    std::vector<PendingBlob> blobs;
    handles.reserve(experts.size());
    for (int32_t e : experts) {
        const ExpertLayout &l = layout(layer, e);
        handles.push_back(l.blob ? prepare_blob_read(l, layer, e, storage_->alignment(), memory_, reads, blobs)
                                 : prepare_read(layer, e, reads));
    }
    storage_->read_batch(reads);
    // Checked and decoded before the cache sees them: a bad blob is never cached.
    finish_blob_reads(blobs, blob_options_);
    for (size_t i = 0; i < experts.size(); ++i) cache_.insert(ExpertKey{layer, experts[i]}, handles[i]);
    return handles;
}

void ExpertStore::set_prefetch(bool enabled) {
    if (!enabled) {
        prefetcher_.reset();
        return;
    }
    if (prefetcher_) return;
    prefetcher_ = std::make_unique<ExpertPrefetcher>(
        [this](int32_t layer, std::span<const int32_t> experts) { return read_experts(layer, experts); },
        [this](const ExpertKey &key) { return layout(key.layer, key.expert).nbytes(); });
}

void ExpertStore::prefetch(int layer, std::span<const int32_t> experts) {
    if (!prefetcher_ || layer < 0 || layer >= n_layers() || layouts_[size_t(layer)].empty()) return;
    for (int32_t e : experts)
        if (e < 0 || e >= n_experts(layer))
            fail(MST_ERR_INTERNAL, "prefetch of expert {} for layer {}, which has {} experts", e, layer, n_experts(layer));
    prefetcher_->predict(layer, experts, [this](const ExpertKey &key) { return cache_.contains(key); });
}

std::vector<ExpertHandle> ExpertStore::fetch(int layer, std::span<const int32_t> experts, ExpertIoStats &stats) {
    if (layer < 0 || layer >= n_layers() || layouts_[size_t(layer)].empty())
        fail(MST_ERR_INTERNAL, "expert fetch for layer {}, which has no routed experts", layer);
    std::vector<ExpertHandle> result(experts.size());
    std::vector<int32_t> to_read;
    std::vector<size_t> read_slot;  // result index of each expert in to_read
    for (size_t i = 0; i < experts.size(); ++i) {
        const int32_t e = experts[i];
        if (e < 0 || e >= n_experts(layer))
            fail(MST_ERR_INTERNAL, "expert {} requested for layer {}, which has {} experts", e, layer, n_experts(layer));
        const ExpertKey key{layer, e};
        if ((result[i] = cache_.find(key))) {
            ++stats.hits;
            continue;
        }
        if (prefetcher_ && (result[i] = prefetcher_->take(key, stats.read_seconds))) {
            ++stats.misses;  // read from storage, but ahead of time
            stats.bytes_read += result[i]->bytes();
            continue;
        }
        // The same expert asked for twice in one call is read once.
        if (std::find(to_read.begin(), to_read.end(), e) != to_read.end()) continue;
        to_read.push_back(e);
        read_slot.push_back(i);
    }
    if (!to_read.empty()) {
        const auto start = std::chrono::steady_clock::now();
        const std::vector<ExpertHandle> read = read_experts(layer, to_read);
        stats.read_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        for (size_t j = 0; j < read.size(); ++j) {
            result[read_slot[j]] = read[j];
            ++stats.misses;
            stats.bytes_read += read[j]->bytes();
        }
        for (size_t i = 0; i < experts.size(); ++i)  // duplicates share the first copy
            if (!result[i]) result[i] = result[read_slot[size_t(std::find(to_read.begin(), to_read.end(), experts[i]) - to_read.begin())]];
    }
    if (prefetcher_) prefetcher_->settle(layer, experts);
    return result;
}

}  // namespace mst
