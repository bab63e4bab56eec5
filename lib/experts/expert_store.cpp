#include "experts/expert_store.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>

#include "core/error.h"

namespace mst {

ExpertStore::ExpertStore(std::unique_ptr<StorageTier> storage, std::vector<std::vector<ExpertLayout>> layouts,
                         uint64_t cache_budget_bytes)
    : storage_(std::move(storage)), layouts_(std::move(layouts)), cache_(cache_budget_bytes) {}

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

std::vector<ExpertHandle> ExpertStore::fetch(int layer, std::span<const int32_t> experts, ExpertIoStats &stats) {
    if (layer < 0 || layer >= n_layers() || layouts_[size_t(layer)].empty())
        fail(MST_ERR_INTERNAL, "expert fetch for layer {}, which has no routed experts", layer);
    std::vector<ExpertHandle> result(experts.size());
    std::vector<ReadRequest> reads;
    std::vector<size_t> missing;
    for (size_t i = 0; i < experts.size(); ++i) {
        const int32_t e = experts[i];
        if (e < 0 || e >= n_experts(layer))
            fail(MST_ERR_INTERNAL, "expert {} requested for layer {}, which has {} experts", e, layer, n_experts(layer));
        if ((result[i] = cache_.find(ExpertKey{layer, e}))) {
            ++stats.hits;
            continue;
        }
        // The same expert asked for twice in one call is read once.
        auto dup = std::find_if(missing.begin(), missing.end(), [&](size_t j) { return experts[j] == e; });
        if (dup != missing.end()) {
            result[i] = result[*dup];
            continue;
        }
        result[i] = prepare_read(layer, e, reads);
        missing.push_back(i);
    }
    if (reads.empty()) return result;

    const auto start = std::chrono::steady_clock::now();
    storage_->read_batch(reads);
    stats.read_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    for (size_t i : missing) {
        ++stats.misses;
        stats.bytes_read += result[i]->buffer.size();
        cache_.insert(ExpertKey{layer, experts[i]}, result[i]);
    }
    return result;
}

}  // namespace mst
