#include "backends/vulkan/weight_residency.h"

#include <algorithm>
#include <vector>

#include "core/error.h"
#include "core/log.h"
#include "core/packed_int.h"

namespace mst {
namespace {

constexpr VkDeviceSize kArenaBlock = VkDeviceSize(256) << 20;
// Expert slots come in buffers of about this size (at most 64 slots each).
constexpr uint64_t kSlotBlockBytes = uint64_t(256) << 20;

}  // namespace

WeightResidency::WeightResidency(const VulkanContext &ctx, uint64_t expert_budget)
    : ctx_(ctx), arena_(ctx, MemoryKind::Device, kArenaBlock) {
    stats_.budget = expert_budget;
}

uint64_t WeightResidency::data_bytes(const WeightView &w) {
    if (w.dtype == DType::MXFP4) return uint64_t(w.rows) * uint64_t(w.cols / 2);
    if (w.dtype == DType::F8_E4M3) return uint64_t(w.rows) * uint64_t(w.cols);
    if (dtype_is_packed_int(w.dtype))
        return uint64_t(w.rows) * uint64_t(packed_int_row_words(w.cols, packed_int_bits(w.dtype))) * 4;
    return uint64_t(w.rows) * uint64_t(dtype_row_bytes(w.dtype, w.cols));
}

uint64_t WeightResidency::scale_bytes(const WeightView &w) {
    if (dtype_is_packed_int(w.dtype) && w.group_size > 0) return uint64_t(w.rows) * uint64_t(w.cols / w.group_size) * 2;
    return w.dtype == DType::MXFP4 ? uint64_t(w.rows) * uint64_t(w.cols / 32) : 0;
}

DeviceWeight WeightResidency::get(CommandStream &stream, const WeightView &w, bool as_f32) {
    if (w.data == nullptr) fail(MST_ERR_INVALID_ARGUMENT, "vulkan: weight without data");
    const uint64_t bytes = data_bytes(w), sbytes = scale_bytes(w);
    if ((w.dtype == DType::MXFP4 || dtype_is_packed_int(w.dtype)) && w.scales == nullptr)
        fail(MST_ERR_INVALID_ARGUMENT, "vulkan: {} weight without scales", dtype_name(w.dtype));
    // A stable weight already on the device is found before anything else: every norm of
    // a decode step asks for its weight widened to f32, and widening it again on each call
    // (an allocation and a conversion) was most of the lookup's cost.
    const auto key = std::make_tuple(w.data, bytes, as_f32);
    if (w.stable)
        if (auto it = stable_.find(key); it != stable_.end()) return it->second;
    std::vector<float> widened;
    const void *src = w.data;
    uint64_t src_bytes = bytes;
    if (as_f32 && w.dtype != DType::F32) {
        widened.resize(size_t(w.rows * w.cols));
        convert_to_f32(w.dtype, w.data, widened.data(), widened.size());
        src = widened.data();
        src_bytes = widened.size() * sizeof(float);
    }

    if (w.stable) {
        DeviceWeight d;
        d.data = arena_.allocate(src_bytes);
        stream.upload(src, src_bytes, d.data);
        if (sbytes) {
            d.scales = arena_.allocate(sbytes);
            stream.upload(w.scales, sbytes, d.scales);
        }
        return stable_.emplace(key, d).first->second;
    }
    if (w.expert_key != 0 && !as_f32) return expert(stream, w);

    DeviceWeight d;
    d.data = stream.input(src, src_bytes);
    if (sbytes) d.scales = stream.input(w.scales, sbytes);
    return d;
}

WeightResidency::Slot WeightResidency::take_slot(uint64_t bytes) {
    SlotPool &pool = pools_[bytes];
    if (pool.free.empty()) {
        const uint64_t slot = (bytes + 255) / 256 * 256;
        pool.slot_bytes = slot;
        pool.slots_per_block = uint32_t(std::clamp<uint64_t>(kSlotBlockBytes / slot, 1, 64));
        const uint32_t block = uint32_t(pool.blocks.size());
        pool.blocks.emplace_back(ctx_, slot * pool.slots_per_block, MemoryKind::Device);
        const VulkanBuffer &b = pool.blocks.back();
        for (uint32_t i = pool.slots_per_block; i-- > 0;)
            pool.free.push_back(Slot{BufferSlice{b.buffer(), slot * i, bytes, b.mapped() ? b.mapped() + slot * i : nullptr},
                                     block, i});
    }
    const Slot s = pool.free.back();
    pool.free.pop_back();
    return s;
}

namespace {

// Where the data and scales of an expert part of `bytes` data and `sbytes` scales lie in its slot.
DeviceWeight slot_slices(const BufferSlice &s, uint64_t bytes, uint64_t sbytes) {
    const uint64_t scale_offset = (bytes + 255) / 256 * 256;
    DeviceWeight d;
    d.data = BufferSlice{s.buffer, s.offset, bytes, s.mapped};
    if (sbytes) d.scales = BufferSlice{s.buffer, s.offset + scale_offset, sbytes, s.mapped ? s.mapped + scale_offset : nullptr};
    return d;
}

uint64_t slot_total(uint64_t bytes, uint64_t sbytes) { return (bytes + 255) / 256 * 256 + sbytes; }

}  // namespace

bool WeightResidency::make_room(uint64_t total, int64_t keep_layer) {
    // Least recently used first, never one this submission uses (nor one of keep_layer).
    for (auto it = lru_.end(); stats_.bytes_used + total > stats_.budget && it != lru_.begin();) {
        --it;
        auto found = experts_.find(*it);
        if (found->second.epoch == epoch_ || layer_of(*it) == keep_layer) continue;
        ++stats_.evictions;
        forget(found);
        it = lru_.erase(it);
    }
    return stats_.bytes_used + total <= stats_.budget;
}

DeviceWeight WeightResidency::insert(CommandStream &stream, const WeightView &w, uint64_t total) {
    const uint64_t bytes = data_bytes(w), sbytes = scale_bytes(w);
    CachedExpert e;
    e.slot = take_slot(total);
    e.bytes = total;
    e.epoch = epoch_;
    lru_.push_front(w.expert_key);
    e.lru = lru_.begin();
    const DeviceWeight d = slot_slices(e.slot.slice, bytes, sbytes);
    // On the transfer lane: the copy is ordered only before the commands that read it, so
    // the slot must be free of recorded work, as a slot evicted from a finished submission
    // is. One given back during this submission (a key seen again with another size) may
    // still be read by recorded work: its copy stays in order on the compute queue.
    const CommandStream::Lane lane =
        e.slot.used_epoch == epoch_ ? CommandStream::Lane::compute : CommandStream::Lane::transfer;
    stream.upload(w.data, bytes, d.data, lane);
    if (sbytes) stream.upload(w.scales, sbytes, d.scales, lane);
    stats_.bytes_used += total;
    stats_.bytes_uploaded += total;
    layer_bytes_[layer_of(w.expert_key)] += total;
    experts_.emplace(w.expert_key, std::move(e));
    return d;
}

DeviceWeight WeightResidency::expert(CommandStream &stream, const WeightView &w) {
    const uint64_t bytes = data_bytes(w), sbytes = scale_bytes(w);
    const uint64_t total = slot_total(bytes, sbytes);
    if (sbytes == 0) {
        DeviceWeight stacked;
        if (slots_.lookup(w, stacked.data)) {
            ++stats_.hits;
            return stacked;
        }
    }
    if (auto it = experts_.find(w.expert_key); it != experts_.end()) {
        CachedExpert &e = it->second;
        if (e.bytes == total) {
            ++stats_.hits;
            if (e.guessed) {
                ++stats_.prefetch_used;
                e.guessed = false;
            }
            e.epoch = epoch_;
            lru_.splice(lru_.begin(), lru_, e.lru);
            return slot_slices(e.slot.slice, bytes, sbytes);
        }
        // A different size under one key: the model changed shape; start over.
        lru_.erase(e.lru);
        forget(it);
    }
    ++stats_.misses;
    if (!make_room(total)) {
        // Over budget with what this submission holds: use it without caching.
        DeviceWeight d;
        d.data = stream.device_scratch(bytes);
        stream.upload(w.data, bytes, d.data);
        if (sbytes) {
            d.scales = stream.device_scratch(sbytes);
            stream.upload(w.scales, sbytes, d.scales);
        }
        stats_.bytes_uploaded += total;
        return d;
    }
    return insert(stream, w, total);
}

bool WeightResidency::prefetch(CommandStream &stream, const WeightView &w) {
    if (w.expert_key == 0 || !w.data) return false;
    const uint64_t bytes = data_bytes(w), sbytes = scale_bytes(w);
    const uint64_t total = slot_total(bytes, sbytes);
    DeviceWeight stacked;
    if (sbytes == 0 && slots_.lookup(w, stacked.data)) return false;
    if (auto it = experts_.find(w.expert_key); it != experts_.end() && it->second.bytes == total) return false;
    if (experts_.count(w.expert_key)) return false;  // another size under the key: the lookup sorts it out
    // Room only from parts the current submission does not use, and not from the guessed
    // layer's own: those are what the layer finds when the guess is wrong (with a cache of
    // about a token's experts, the least recently used are the coming layer's from the
    // previous token). Else nothing is evicted.
    const int64_t layer = layer_of(w.expert_key);
    uint64_t evictable = 0;
    if (stats_.bytes_used + total > stats_.budget)
        for (const auto &[key, e] : experts_)
            if (e.epoch != epoch_ && layer_of(key) != layer) evictable += e.bytes;
    if (stats_.bytes_used - evictable + total > stats_.budget) {
        ++stats_.prefetch_skipped;
        return false;
    }
    make_room(total, layer);
    insert(stream, w, total);
    experts_.at(w.expert_key).guessed = true;
    ++stats_.prefetched;
    stats_.prefetch_bytes += total;
    return true;
}

bool WeightResidency::make_resident(CommandStream &stream, const SwigluExpertSet &set) {
    const uint64_t need = slots_.bytes_needed(set);
    if (set.model_expert_bytes > stats_.budget) return false;  // streamed: the budget serves the LRU cache
    if (need > 0) {
        // The expert cache's copies of this layer go first (stacked, they would be twice
        // here); judged from the layer's cached bytes, so that a layer that cannot fit
        // (streamed decode) costs no walk over the cache.
        auto cached = layer_bytes_.find(set.layer);
        const uint64_t freeable = cached == layer_bytes_.end() ? 0 : cached->second;
        if (stats_.bytes_used - freeable + need > stats_.budget) return false;
        for (auto it = lru_.begin(); it != lru_.end();) {
            auto found = experts_.find(*it);
            if (layer_of(*it) != set.layer || found->second.epoch == epoch_) {
                ++it;
                continue;
            }
            forget(found);
            it = lru_.erase(it);
        }
        if (stats_.bytes_used + need > stats_.budget) return false;  // some were in use
        stats_.bytes_used += need;
        stats_.bytes_uploaded += need;
    }
    slots_.add(ctx_, stream, set);
    return true;
}

void WeightResidency::forget(std::unordered_map<uint64_t, CachedExpert>::iterator it) {
    if (it->second.guessed) ++stats_.prefetch_wasted;
    stats_.bytes_used -= it->second.bytes;
    layer_bytes_[layer_of(it->first)] -= it->second.bytes;
    Slot slot = it->second.slot;
    slot.used_epoch = it->second.epoch;
    give_back(it->second.bytes, slot);
    experts_.erase(it);
}

}  // namespace mst
