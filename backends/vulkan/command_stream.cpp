#include "backends/vulkan/command_stream.h"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <span>
#include <type_traits>

#include <fmt/format.h>

#include "backends/vulkan/env_switch.h"
#include "backends/vulkan/stream_settings.h"
#include "core/error.h"

namespace mst {
namespace {

constexpr VkDeviceSize kHostScratchBlock = VkDeviceSize(64) << 20;
constexpr VkDeviceSize kDeviceScratchBlock = VkDeviceSize(64) << 20;
constexpr VkDeviceSize kStagingBytes = VkDeviceSize(128) << 20;
constexpr uint32_t kSetsPerPool = 1024;
constexpr VkDeviceSize kShaderCopyBytes = VkDeviceSize(1) << 20;
// Results carried past a sync: a decode step's are kilobytes, a 512-token prefill's a few
// activations of megabytes.
constexpr VkDeviceSize kCarryBlock = VkDeviceSize(16) << 20;
// How many live results back output() looks for one at the same address to supersede.
constexpr size_t kSupersedeWindow = 64;
// The query pool: a whole-pool profile's start, commands and end, or the levels profile's
// ranges of kQueriesPerSubmission (start, levels, end) for each timed command buffer.
constexpr uint32_t kQueriesPerSubmission = CommandStream::kTimedLevels + 2;
constexpr uint32_t kQueries = std::max(CommandStream::kProfiledCommands + 2,
                                       CommandStream::kTimedSubmissions * kQueriesPerSubmission);

// Vulkan handles as log words and back (pointers on 64-bit platforms, integers elsewhere).
template <class H>
uint64_t word(H h) {
    if constexpr (std::is_pointer_v<H>) return uint64_t(reinterpret_cast<uintptr_t>(h));
    else return uint64_t(h);
}
template <class H>
H handle(uint64_t w) {
    if constexpr (std::is_pointer_v<H>) return reinterpret_cast<H>(uintptr_t(w));
    else return H(w);
}

}  // namespace

CommandStream::CommandStream(const VulkanContext &ctx, PipelineCache &pipelines)
    : ctx_(ctx), pipelines_(pipelines), host_(ctx, MemoryKind::Host, kHostScratchBlock),
      device_(ctx, MemoryKind::Device, kDeviceScratchBlock),
      ring_(ctx, ctx.unified_memory() ? VkDeviceSize(1) << 20 : kStagingBytes), transfer_(ctx),
      carry_{BufferArena(ctx, ctx.unified_memory() ? MemoryKind::Host : MemoryKind::Device, kCarryBlock),
             BufferArena(ctx, ctx.unified_memory() ? MemoryKind::Host : MemoryKind::Device, kCarryBlock)},
      // A GPU finishes a decode op in microseconds; sleeping in the driver's wait adds
      // tens of them. A CPU implementation needs the cores itself, so it is waited on.
      offset_alignment_(std::max<VkDeviceSize>(4, ctx.properties().limits.minStorageBufferOffsetAlignment)),
      spin_wait_(ctx.info().type != VK_PHYSICAL_DEVICE_TYPE_CPU) {
    // Read before any Vulkan object is made: a bad value throws, and a throwing constructor
    // runs no destructor.
    kick_every_ = kick_every_from_env();
    barrier_scope_ = barrier_scope_from_env();
    const Profile profile = profile_from_env();
    deliver_all_ = env_switch("MST_VULKAN_DELIVER_ALL", false, "every pending result at each wait",
                              "only what the host reads");
    const bool replay = env_switch("MST_VULKAN_REPLAY", true, "command buffers replayed", "every submission recorded");
    const VkDevice d = ctx_.device();
    VkCommandPoolCreateInfo cpci{VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO};
    cpci.flags = VK_COMMAND_POOL_CREATE_RESET_COMMAND_BUFFER_BIT;
    cpci.queueFamilyIndex = ctx_.queue_family();
    vk_check(vkCreateCommandPool(d, &cpci, nullptr, &pool_), "vkCreateCommandPool");
    cmd_ = allocate_command_buffer();
    VkFenceCreateInfo fci{VK_STRUCTURE_TYPE_FENCE_CREATE_INFO};
    vk_check(vkCreateFence(d, &fci, nullptr, &fence_), "vkCreateFence");
    replay_wanted_ = replay;
    set_profile(profile);
    // The lane's copies are not on the compute queue's timestamps: off under a profile.
    transfer_on_ = transfer_.on() && profile_ == Profile::off && !ctx_.unified_memory();
}

void CommandStream::set_replay(bool on) {
    replay_wanted_ = on;
    replay_ = on && ctx_.push_descriptor() && !whole_pool_profile();
}

bool CommandStream::set_profile(Profile p) {
    if (recording_ || !in_flight_.empty())
        fail(MST_ERR_INTERNAL, "vulkan: the profile changed with work recorded and not yet waited for");
    if (p != Profile::off && !timestamps_) {
        if (!ctx_.properties().limits.timestampComputeAndGraphics) return false;
        VkQueryPoolCreateInfo qci{VK_STRUCTURE_TYPE_QUERY_POOL_CREATE_INFO};
        qci.queryType = VK_QUERY_TYPE_TIMESTAMP;
        qci.queryCount = kQueries;
        vk_check(vkCreateQueryPool(ctx_.device(), &qci, nullptr, &timestamps_), "vkCreateQueryPool");
        timestamp_period_ns_ = ctx_.properties().limits.timestampPeriod;
    }
    profile_ = p;
    timed_.clear();
    set_replay(replay_wanted_);
    return true;
}

CommandStream::~CommandStream() {
    const VkDevice d = ctx_.device();
    vkDeviceWaitIdle(d);
    for (VkDescriptorPool p : descriptor_pools_) vkDestroyDescriptorPool(d, p, nullptr);
    if (timestamps_) vkDestroyQueryPool(d, timestamps_, nullptr);
    vkDestroyFence(d, fence_, nullptr);
    vkDestroyCommandPool(d, pool_, nullptr);
}

VkCommandBuffer CommandStream::allocate_command_buffer() {
    VkCommandBufferAllocateInfo cbai{VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO};
    cbai.commandPool = pool_;
    cbai.level = VK_COMMAND_BUFFER_LEVEL_PRIMARY;
    cbai.commandBufferCount = 1;
    VkCommandBuffer cb;
    vk_check(vkAllocateCommandBuffers(ctx_.device(), &cbai, &cb), "vkAllocateCommandBuffers");
    return cb;
}

void CommandStream::end_and_submit(VkFence fence, bool replayable) {
    recording_ = false;
    open_barrier_ = size_t(-1);
    // A kick(false) passed over (MST_VULKAN_KICK_EVERY) left its commands in this one.
    replayable = replayable && !unreplayable_;
    unreplayable_ = false;
    VkCommandBuffer cb = cmd_;
    submitted_recording_ = replay_ && replayable;
    if (submitted_recording_) {
        // The n-th submission since the scratch was reset: the same log as the n-th of an
        // earlier window names the same memory, so its command buffer runs again.
        const size_t n = segment_;
        if (recordings_.size() <= n) recordings_.resize(n + 1);
        Recording &r = recordings_[n];
        if (r.cmd != VK_NULL_HANDLE && r.destroyed == VulkanBuffer::destroyed() && r.log == log_) {
            ++replayed_;
        } else {
            if (r.cmd == VK_NULL_HANDLE) r.cmd = allocate_command_buffer();
            else vk_check(vkResetCommandBuffer(r.cmd, 0), "vkResetCommandBuffer");
            record(r.cmd, log_, 0);
            r.log.swap(log_);
            r.destroyed = VulkanBuffer::destroyed();
            ++recorded_;
        }
        cb = r.cmd;
    } else {
        record(cmd_, log_, VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT);
    }
    if (replayable) ++segment_;
    log_.clear();
    VkSubmitInfo si{VK_STRUCTURE_TYPE_SUBMIT_INFO};
    si.commandBufferCount = 1;
    si.pCommandBuffers = &cb;
    // The expert copies this command buffer reads, from the transfer lane: a wait on the
    // device, not on the host (hazard() found the value; the batch is submitted already).
    VkTimelineSemaphoreSubmitInfoKHR ts{VK_STRUCTURE_TYPE_TIMELINE_SEMAPHORE_SUBMIT_INFO_KHR};
    const VkSemaphore semaphore = transfer_.semaphore();
    const VkPipelineStageFlags wait_stage = VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT;
    const uint64_t wait_value = compute_wait_;
    if (compute_wait_ > compute_waited_) {
        ts.waitSemaphoreValueCount = 1;
        ts.pWaitSemaphoreValues = &wait_value;
        si.pNext = &ts;
        si.waitSemaphoreCount = 1;
        si.pWaitSemaphores = &semaphore;
        si.pWaitDstStageMask = &wait_stage;
        compute_waited_ = compute_wait_;
        ++semaphore_waits_;
    }
    vk_check(vkQueueSubmit(ctx_.queue(), 1, &si, fence), "vkQueueSubmit");
}

void CommandStream::record(VkCommandBuffer cb, const std::vector<uint64_t> &log, VkCommandBufferUsageFlags usage) {
    VkCommandBufferBeginInfo bi{VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO};
    bi.flags = usage;
    const auto t0 = std::chrono::steady_clock::now();
    vk_check(vkBeginCommandBuffer(cb, &bi), "vkBeginCommandBuffer");
    const PFN_vkCmdPushDescriptorSetKHR push_set = ctx_.push_descriptor();
    size_t i = 0;
    auto next = [&] { return log[i++]; };
    auto memory_barrier = [&](VkPipelineStageFlags src, VkPipelineStageFlags dst, VkAccessFlags dst_access) {
        VkMemoryBarrier mb{VK_STRUCTURE_TYPE_MEMORY_BARRIER};
        mb.srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_WRITE_BIT;
        mb.dstAccessMask = dst_access;
        vkCmdPipelineBarrier(cb, src, dst, 0, 1, &mb, 0, nullptr, 0, nullptr);
    };
    constexpr VkAccessFlags kAllAccess = VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT |
                                         VK_ACCESS_TRANSFER_READ_BIT | VK_ACCESS_TRANSFER_WRITE_BIT;
    constexpr VkPipelineStageFlags kWork = VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT;
    while (i < log.size()) {
        switch (Logged(next())) {
            case Logged::dispatch: {
                const VkPipeline pipeline = handle<VkPipeline>(next());
                const VkPipelineLayout layout = handle<VkPipelineLayout>(next());
                const uint32_t n = uint32_t(next());
                VkDescriptorBufferInfo infos[16];
                VkWriteDescriptorSet writes[16];
                for (uint32_t b = 0; b < n; ++b) {
                    infos[b].buffer = handle<VkBuffer>(next());
                    infos[b].offset = next();
                    infos[b].range = next();
                    writes[b] = VkWriteDescriptorSet{VK_STRUCTURE_TYPE_WRITE_DESCRIPTOR_SET};
                    writes[b].dstBinding = b;
                    writes[b].descriptorCount = 1;
                    writes[b].descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER;
                    writes[b].pBufferInfo = &infos[b];
                }
                const VkDescriptorSet set = handle<VkDescriptorSet>(next());
                const uint32_t push_bytes = uint32_t(next());
                const uint64_t *push = log.data() + i;
                i += (push_bytes + 7) / 8;
                const uint32_t gx = uint32_t(next()), gy = uint32_t(next()), gz = uint32_t(next());
                vkCmdBindPipeline(cb, VK_PIPELINE_BIND_POINT_COMPUTE, pipeline);
                if (push_set) {
                    push_set(cb, VK_PIPELINE_BIND_POINT_COMPUTE, layout, 0, n, writes);
                } else {
                    for (uint32_t b = 0; b < n; ++b) writes[b].dstSet = set;
                    vkUpdateDescriptorSets(ctx_.device(), n, writes, 0, nullptr);
                    vkCmdBindDescriptorSets(cb, VK_PIPELINE_BIND_POINT_COMPUTE, layout, 0, 1, &set, 0, nullptr);
                }
                if (push_bytes) vkCmdPushConstants(cb, layout, VK_SHADER_STAGE_COMPUTE_BIT, 0, push_bytes, push);
                vkCmdDispatch(cb, gx, gy, gz);
                break;
            }
            case Logged::copy: {
                const VkBuffer src = handle<VkBuffer>(next()), dst = handle<VkBuffer>(next());
                const uint32_t n = uint32_t(next());
                std::vector<VkBufferCopy> regions(n);
                for (VkBufferCopy &r : regions) {
                    r.srcOffset = next();
                    r.dstOffset = next();
                    r.size = next();
                }
                vkCmdCopyBuffer(cb, src, dst, n, regions.data());
                break;
            }
            case Logged::fill: {
                const VkBuffer dst = handle<VkBuffer>(next());
                const VkDeviceSize offset = next(), bytes = next();
                vkCmdFillBuffer(cb, dst, offset, bytes, 0);
                break;
            }
            case Logged::barrier: memory_barrier(kWork, kWork, kAllAccess); break;
            case Logged::stage_barrier: {
                VkMemoryBarrier mb{VK_STRUCTURE_TYPE_MEMORY_BARRIER};
                const auto src = VkPipelineStageFlags(next());
                mb.srcAccessMask = VkAccessFlags(next());
                auto dst = VkPipelineStageFlags(next());
                mb.dstAccessMask = VkAccessFlags(next());
                // No command after it in this command buffer (a kick's barrier before the
                // wait's host barrier): nothing to order here, the host barrier orders the rest.
                if (!dst) dst = VK_PIPELINE_STAGE_BOTTOM_OF_PIPE_BIT;
                vkCmdPipelineBarrier(cb, src, dst, 0, 1, &mb, 0, nullptr, 0, nullptr);
                break;
            }
            case Logged::range_barrier: {
                const size_t n = size_t(next());
                std::vector<VkBufferMemoryBarrier> bb(n, VkBufferMemoryBarrier{VK_STRUCTURE_TYPE_BUFFER_MEMORY_BARRIER});
                for (VkBufferMemoryBarrier &b : bb) {
                    b.srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_WRITE_BIT;
                    b.dstAccessMask = kAllAccess;
                    b.srcQueueFamilyIndex = b.dstQueueFamilyIndex = VK_QUEUE_FAMILY_IGNORED;
                    b.buffer = handle<VkBuffer>(next());
                    b.offset = next();
                    b.size = next();
                }
                vkCmdPipelineBarrier(cb, kWork, kWork, 0, 0, nullptr, uint32_t(n), bb.data(), 0, nullptr);
                break;
            }
            case Logged::kick_barrier:
                memory_barrier(VK_PIPELINE_STAGE_ALL_COMMANDS_BIT, VK_PIPELINE_STAGE_ALL_COMMANDS_BIT, kAllAccess);
                break;
            case Logged::host_barrier: memory_barrier(kWork, VK_PIPELINE_STAGE_HOST_BIT, VK_ACCESS_HOST_READ_BIT); break;
            case Logged::reset_queries: {
                const auto first = uint32_t(next());
                vkCmdResetQueryPool(cb, timestamps_, first, uint32_t(next()));
                break;
            }
            case Logged::timestamp: {
                const auto stage = VkPipelineStageFlagBits(next());
                vkCmdWriteTimestamp(cb, stage, timestamps_, uint32_t(next()));
                break;
            }
        }
    }
    vk_check(vkEndCommandBuffer(cb), "vkEndCommandBuffer");
    record_seconds_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

void CommandStream::log_barrier(Logged kind) { log_.push_back(uint64_t(kind)); }

void CommandStream::log_stage_barrier(VkPipelineStageFlags src, VkAccessFlags src_access) {
    log_.insert(log_.end(), {uint64_t(Logged::stage_barrier), uint64_t(src), uint64_t(src_access), 0, 0});
    open_barrier_ = log_.size() - 2;
}

void CommandStream::log_timestamp(VkPipelineStageFlagBits stage, uint32_t query) {
    log_.insert(log_.end(), {uint64_t(Logged::timestamp), uint64_t(stage), uint64_t(query)});
}

void CommandStream::begin_if_needed() {
    if (recording_) return;
    log_.clear();
    open_barrier_ = size_t(-1);
    level_stages_ = 0;
    level_writes_ = 0;
    // The start's timestamp before the kick's barrier: a level's time after it includes
    // the wait for the work submitted before.
    if (whole_pool_profile()) {
        log_.insert(log_.end(), {uint64_t(Logged::reset_queries), 0, uint64_t(kProfiledCommands + 2)});
        log_timestamp(VK_PIPELINE_STAGE_TOP_OF_PIPE_BIT, 0);
        labels_.clear();
    }
    timing_ = profile_ == Profile::levels && timed_.size() < kTimedSubmissions;
    if (timing_) {
        const uint32_t first = uint32_t(timed_.size()) * kQueriesPerSubmission;
        timed_.push_back(TimedSubmission{first, {}});
        log_.insert(log_.end(), {uint64_t(Logged::reset_queries), first, kQueriesPerSubmission});
        log_timestamp(VK_PIPELINE_STAGE_TOP_OF_PIPE_BIT, first);
    }
    level_commands_.clear();
    // After a kick: everything submitted before is ordered before this command buffer
    // (the hazard tracking starts afresh below), and its completion, which the fence
    // reports, then implies theirs.
    if (!in_flight_.empty()) {
        if (barrier_scope_ == BarrierScope::stages)
            log_stage_barrier(VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT,
                              VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_WRITE_BIT);
        else
            log_barrier(Logged::kick_barrier);
    }
    recording_ = true;
    dirty_ = false;
    read_.clear();
    written_.clear();
}

namespace {

bool hits(const std::vector<CommandStream::Range> &set, const CommandStream::Range &r) {
    for (const auto &x : set)
        if (x.buffer == r.buffer && x.begin < r.end && r.begin < x.end) return true;
    return false;
}

}  // namespace

void CommandStream::hazard(const Range *reads, size_t n_reads, const Range *writes, size_t n_writes,
                           VkPipelineStageFlags stage) {
    // Ranges the transfer lane writes: the command buffer waits for their batch.
    if (transfer_.has_pending()) {
        for (size_t i = 0; i < n_reads; ++i)
            compute_wait_ = std::max(compute_wait_, transfer_.value_for(reads[i].buffer, reads[i].begin, reads[i].end));
        for (size_t i = 0; i < n_writes; ++i)
            compute_wait_ = std::max(compute_wait_, transfer_.value_for(writes[i].buffer, writes[i].begin, writes[i].end));
    }
    bool needed = false;
    for (size_t i = 0; i < n_reads && !needed; ++i) needed = hits(written_, reads[i]);
    for (size_t i = 0; i < n_writes && !needed; ++i) needed = hits(written_, writes[i]) || hits(read_, writes[i]);
    if (needed) barrier();
    read_.insert(read_.end(), reads, reads + n_reads);
    written_.insert(written_.end(), writes, writes + n_writes);
    const bool compute = stage == VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT;
    level_stages_ |= stage;
    if (n_writes) level_writes_ |= compute ? VK_ACCESS_SHADER_WRITE_BIT : VK_ACCESS_TRANSFER_WRITE_BIT;
    if (open_barrier_ != size_t(-1)) {
        log_[open_barrier_] |= stage;
        log_[open_barrier_ + 1] |= compute ? VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT
                                           : VK_ACCESS_TRANSFER_READ_BIT | VK_ACCESS_TRANSFER_WRITE_BIT;
    }
    dirty_ = true;
}

void CommandStream::barrier() {
    if (dirty_) {
        end_level();
        switch (barrier_scope_) {
            case BarrierScope::wide: log_barrier(Logged::barrier); break;
            case BarrierScope::stages: log_stage_barrier(level_stages_, level_writes_); break;
            case BarrierScope::ranges:
                log_.insert(log_.end(), {uint64_t(Logged::range_barrier), uint64_t(written_.size())});
                for (const Range &w : written_) log_.insert(log_.end(), {word(w.buffer), w.begin, w.end - w.begin});
                break;
        }
        level_stages_ = 0;
        level_writes_ = 0;
        dirty_ = false;
        ++barriers_;
    }
    read_.clear();
    written_.clear();
}

void CommandStream::end_level() {
    if (!timing_) return;
    TimedSubmission &t = timed_.back();
    // Past the last timed level the commands go on into the command buffer's last one.
    if (t.levels.size() >= kTimedLevels) return;
    log_timestamp(VK_PIPELINE_STAGE_BOTTOM_OF_PIPE_BIT, t.first_query + 1 + uint32_t(t.levels.size()));
    t.levels.push_back(std::move(level_commands_));
    level_commands_.clear();
}

void CommandStream::timestamp_after(std::string label) {
    if (labels_.size() >= kProfiledCommands) return;
    labels_.push_back(std::move(label));
    log_timestamp(VK_PIPELINE_STAGE_BOTTOM_OF_PIPE_BIT, uint32_t(labels_.size()));
}

void CommandStream::read_timestamps() {
    const size_t n = labels_.size() + 2;
    std::vector<uint64_t> t(n, 0);
    if (vkGetQueryPoolResults(ctx_.device(), timestamps_, 0, uint32_t(n), n * sizeof(uint64_t), t.data(),
                              sizeof(uint64_t), VK_QUERY_RESULT_64_BIT) != VK_SUCCESS)
        return;
    auto seconds = [&](size_t from, size_t to) {
        return t[to] > t[from] ? double(t[to] - t[from]) * timestamp_period_ns_ * 1e-9 : 0.0;
    };
    gpu_seconds_ += seconds(0, n - 1);
    for (size_t i = 0; i < labels_.size(); ++i) {
        DispatchStat &d = dispatch_profile_[labels_[i]];
        ++d.calls;
        d.seconds += seconds(i, i + 1);
    }
    if (profile_ != Profile::commands) return;
    // The tail: commands past the timed ones and the final barrier to the host.
    DispatchStat &tail = dispatch_profile_["(end of submission)"];
    ++tail.calls;
    tail.seconds += seconds(n - 2, n - 1);
}

namespace {

// A level's label: its commands as the per-command profile names them, joined by " + ".
std::string level_label(std::span<const CommandStream::LevelCommand> commands) {
    if (commands.empty()) return "(no command: a barrier before the host's wait)";
    std::string label;
    for (const CommandStream::LevelCommand &c : commands) {
        if (!label.empty()) label += " + ";
        if (c.gx) label += fmt::format("{} {}x{}x{}", c.name, c.gx, c.gy, c.gz);
        else label += c.name;
    }
    return label;
}

}  // namespace

void CommandStream::read_levels() {
    double first_start = 0, last_end = 0, previous_end = 0;
    bool any = false;
    for (const TimedSubmission &sub : timed_) {
        const uint32_t n = uint32_t(sub.levels.size()) + 1;  // the start, then each level's end
        uint64_t t[kQueriesPerSubmission];
        if (vkGetQueryPoolResults(ctx_.device(), timestamps_, sub.first_query, n, n * sizeof(uint64_t), t,
                                  sizeof(uint64_t), VK_QUERY_RESULT_64_BIT) != VK_SUCCESS)
            return;  // not all written (none is lost: the next wait reads its own)
        auto at = [&](uint32_t i) { return double(t[i]) * timestamp_period_ns_ * 1e-9; };
        for (uint32_t i = 0; i + 1 < n; ++i) {
            DispatchStat &d = level_profile_[level_label(sub.levels[i])];
            ++d.calls;
            d.seconds += std::max(0.0, at(i + 1) - at(i));
        }
        SubmissionProfile &p = submission_profile_;
        ++p.timed;
        p.busy_seconds += std::max(0.0, at(n - 1) - at(0));
        if (any) {
            const double gap = at(0) - previous_end;
            if (gap > 0) {
                ++p.idle_gaps;
                p.idle_seconds += gap;
            } else {
                ++p.queued_ahead;
            }
        } else {
            first_start = at(0);
        }
        any = true;
        previous_end = at(n - 1);
        last_end = std::max(last_end, previous_end);
    }
    if (any) gpu_seconds_ += std::max(0.0, last_end - first_start);
}

namespace {

bool contains(const void *outer, VkDeviceSize outer_bytes, const void *inner, VkDeviceSize inner_bytes) {
    const auto o = reinterpret_cast<uintptr_t>(outer), i = reinterpret_cast<uintptr_t>(inner);
    return i >= o && i + inner_bytes <= o + outer_bytes;
}

bool overlaps(const void *a, VkDeviceSize a_bytes, const void *b, VkDeviceSize b_bytes) {
    const auto x = reinterpret_cast<uintptr_t>(a), y = reinterpret_cast<uintptr_t>(b);
    return x < y + b_bytes && y < x + a_bytes;
}

// One result's bytes from host-visible scratch to where the host reads them.
struct HostCopy {
    void *dst;
    const uint8_t *src;
    size_t bytes;
};

// The copies in order on this thread; with `parallel`, when they come to 4 MiB or more
// and no two destinations overlap (then the order does not matter), in 1 MiB pieces on
// up to 8 threads. Returns whether it took the threads.
bool copy_to_host(const std::vector<HostCopy> &copies, bool parallel) {
    constexpr size_t kPiece = size_t(1) << 20, kParallelFrom = size_t(4) << 20;
    size_t total = 0;
    for (const HostCopy &c : copies) total += c.bytes;
    parallel = parallel && total >= kParallelFrom;
    if (parallel) {
        std::vector<HostCopy> by_dst = copies;
        std::sort(by_dst.begin(), by_dst.end(), [](const HostCopy &a, const HostCopy &b) {
            return reinterpret_cast<uintptr_t>(a.dst) < reinterpret_cast<uintptr_t>(b.dst);
        });
        for (size_t i = 1; parallel && i < by_dst.size(); ++i)
            parallel = !overlaps(by_dst[i - 1].dst, by_dst[i - 1].bytes, by_dst[i].dst, by_dst[i].bytes);
    }
    if (!parallel) {
        for (const HostCopy &c : copies) std::memcpy(c.dst, c.src, c.bytes);
        return false;
    }
    std::vector<HostCopy> pieces;
    for (const HostCopy &c : copies)
        for (size_t at = 0; at < c.bytes; at += kPiece)
            pieces.push_back({static_cast<uint8_t *>(c.dst) + at, c.src + at, std::min(kPiece, c.bytes - at)});
    const int64_t n = int64_t(pieces.size());
#pragma omp parallel for num_threads(int(std::min<int64_t>(n, 8))) schedule(dynamic)
    for (int64_t i = 0; i < n; ++i) std::memcpy(pieces[size_t(i)].dst, pieces[size_t(i)].src, pieces[size_t(i)].bytes);
    return true;
}

}  // namespace

BufferSlice CommandStream::input(const void *data, VkDeviceSize bytes) {
    if (in_batch_ && bytes) {
        for (auto it = outputs_.rbegin(); it != outputs_.rend(); ++it) {
            if (it->superseded) continue;
            if (contains(it->dst, it->bytes, data, bytes)) {
                const VkDeviceSize at = VkDeviceSize(static_cast<const uint8_t *>(data) - static_cast<uint8_t *>(it->dst));
                const BufferSlice &d = it->device;
                if ((d.offset + at) % offset_alignment_ == 0)
                    return BufferSlice{d.buffer, d.offset + at, bytes, d.mapped ? d.mapped + at : nullptr};
                BufferSlice copy = ctx_.unified_memory() ? host_.allocate(bytes) : device_.allocate(bytes);
                this->copy(BufferSlice{d.buffer, d.offset + at, bytes, nullptr}, copy, bytes);
                return copy;
            }
            if (overlaps(it->dst, it->bytes, data, bytes)) {
                note_partial_wait(WaitCause::input_overlap, data, bytes, it->dst, it->bytes);
                run_for(data, bytes, WaitCause::input_overlap);  // part of it is pending: deliver it, then read the host's
                break;
            }
        }
    }
    BufferSlice s = host_.allocate(bytes);
    if (bytes) std::memcpy(s.mapped, data, size_t(bytes));
    return to_device(s);
}

BufferSlice CommandStream::to_device(const BufferSlice &host) {
    if (ctx_.unified_memory() || host.size == 0) return host;
    BufferSlice d = device_.allocate(host.size);
    copy(host, d, host.size);
    return d;
}

BufferSlice CommandStream::output_buffer(VkDeviceSize bytes) {
    return ctx_.unified_memory() ? host_.allocate(bytes) : device_.allocate(bytes);
}

void CommandStream::output(const BufferSlice &src, void *dst, VkDeviceSize bytes) {
    // The copy to host memory is recorded when the work runs (run()), so that a result a
    // later op of the batch replaces is never copied.
    if (!in_batch_) {
        outputs_.push_back(Output{src, src, dst, bytes});
        return;
    }
    // A step rewrites the same buffers layer after layer (the residual, the norms, q/k/v,
    // the router's ids): the earlier result at the same address, which this one covers,
    // is superseded now, so that the scans below and run() see only the live results, not
    // every result of the step (run()'s covering test was quadratic in them).
    // The search goes back a bounded number of live results (a decode layer writes about
    // 30), so that a result never rewritten (the KV rows for the host cache) costs no more.
    size_t looked = 0;
    for (auto it = outputs_.rbegin(); it != outputs_.rend() && looked < kSupersedeWindow; ++it) {
        if (it->superseded) continue;
        ++looked;
        if (it->dst == dst && it->bytes <= bytes) {
            it->superseded = true;
            ++superseded_;
            break;
        }
    }
    outputs_.push_back(Output{src, src, dst, bytes});
    if (superseded_ > 64 && superseded_ * 2 > outputs_.size()) compact_outputs();
}

void CommandStream::compact_outputs() {
    std::erase_if(outputs_, [](const Output &o) { return o.superseded; });
    superseded_ = 0;
}

BufferSlice CommandStream::input_to_modify(const void *data, VkDeviceSize bytes) {
    const BufferSlice s = input(data, bytes);
    for (const Output &o : outputs_) {
        const BufferSlice &d = o.device;
        if (d.buffer != s.buffer || d.offset >= s.offset + bytes || s.offset >= d.offset + o.bytes) continue;
        // The same device bytes for the same host bytes: the op's write is that result's too.
        const auto host_shift = int64_t(static_cast<const uint8_t *>(data) - static_cast<const uint8_t *>(o.dst));
        if (host_shift == int64_t(s.offset) - int64_t(d.offset)) continue;
        const BufferSlice own = output_buffer(bytes);
        copy(s, own, bytes);
        return own;
    }
    return s;
}

void CommandStream::host_access(const void *ptr, VkDeviceSize bytes) {
    if (!in_batch_) return;
    for (const Output &o : outputs_)
        if (!o.superseded && overlaps(o.dst, o.bytes, ptr, bytes)) {
            note_partial_wait(WaitCause::host_access, ptr, bytes, o.dst, o.bytes);
            run_for(ptr, bytes, WaitCause::host_access);  // what lands there; the rest stays on the device
            return;
        }
}

void CommandStream::drop_outputs(const void *ptr, VkDeviceSize bytes) {
    if (!in_batch_ || bytes == 0) return;
    bool any = false;
    for (const Output &o : outputs_) {
        if (o.superseded || !overlaps(o.dst, o.bytes, ptr, bytes)) continue;
        if (!contains(ptr, bytes, o.dst, o.bytes)) {
            note_partial_wait(WaitCause::drop_outputs, ptr, bytes, o.dst, o.bytes);
            run_for(ptr, bytes, WaitCause::drop_outputs);
            return;
        }
        any = true;
    }
    if (!any) return;
    for (Output &o : outputs_)
        if (contains(ptr, bytes, o.dst, o.bytes)) o.superseded = true;
    compact_outputs();
}

bool CommandStream::pending(const void *ptr, VkDeviceSize bytes) const {
    if (!in_batch_) return false;
    for (const Output &o : outputs_)
        if (!o.superseded && overlaps(o.dst, o.bytes, ptr, bytes)) return true;
    return false;
}

bool CommandStream::pending_slice(const void *ptr, VkDeviceSize bytes, BufferSlice &slice) const {
    if (!in_batch_ || !bytes) return false;
    // The latest result first, as input() takes them.
    for (auto it = outputs_.rbegin(); it != outputs_.rend(); ++it) {
        if (it->superseded) continue;
        if (contains(it->dst, it->bytes, ptr, bytes)) {
            const VkDeviceSize at = VkDeviceSize(static_cast<const uint8_t *>(ptr) - static_cast<uint8_t *>(it->dst));
            slice = BufferSlice{it->device.buffer, it->device.offset + at, bytes, nullptr};
            return true;
        }
        if (overlaps(it->dst, it->bytes, ptr, bytes)) return false;
    }
    return false;
}

void CommandStream::end_batch() {
    if (batch_depth_ > 0 && --batch_depth_ > 0) return;
    in_batch_ = false;
    run(nullptr, WaitCause::batch_end);
}

void CommandStream::sync_reads(const std::vector<HostRange> &reads) {
    if (in_batch_) run(deliver_all_ ? nullptr : &reads, WaitCause::sync_reads);
}

void CommandStream::upload(const void *data, VkDeviceSize bytes, const BufferSlice &dst, Lane lane) {
    upload_pieces({Piece{data, 0, bytes}}, dst, lane);
}

void CommandStream::upload_pieces(const std::vector<Piece> &pieces, const BufferSlice &dst, Lane lane) {
    if (!dst.mapped) record_deferred();
    if (dst.mapped) {
        // Unified memory: the device reads what the host writes, no copy command. The
        // destination may be in use by recorded work only if it was uploaded in this very
        // recording, which callers avoid.
        for (const Piece &p : pieces) std::memcpy(dst.mapped + p.dst_offset, p.data, size_t(p.bytes));
        return;
    }
    std::vector<VkBufferCopy> regions;
    VkBuffer src_buffer = VK_NULL_HANDLE;  // of the regions gathered: the ring or an import
    const char *label = "";
    const bool on_lane = lane == Lane::transfer && transfer_on_;
    auto emit = [&] {
        if (regions.empty()) return;
        if (on_lane) {
            transfer_.copy(src_buffer, dst.buffer, regions);
            ++commands_;
            regions.clear();
            return;
        }
        begin_if_needed();
        std::vector<Range> reads, writes;
        for (const VkBufferCopy &r : regions) {
            reads.push_back(Range{src_buffer, r.srcOffset, r.srcOffset + r.size});
            writes.push_back(Range{dst.buffer, r.dstOffset, r.dstOffset + r.size});
        }
        hazard(reads.data(), reads.size(), writes.data(), writes.size(), VK_PIPELINE_STAGE_TRANSFER_BIT);
        log_.insert(log_.end(), {uint64_t(Logged::copy), word(src_buffer), word(dst.buffer), uint64_t(regions.size())});
        ++commands_;
        for (const VkBufferCopy &r : regions) log_.insert(log_.end(), {r.srcOffset, r.dstOffset, r.size});
        note_level_command(label, 0, 0, 0);
        if (profile_ == Profile::commands) timestamp_after(label);
        regions.clear();
    };
    auto gather = [&](VkBuffer from, const char *what, const VkBufferCopy &region) {
        if (from != src_buffer) emit();
        src_buffer = from;
        label = what;
        regions.push_back(region);
    };
    for (const Piece &p : pieces) {
        // Imported host memory (host_import.h): the device copies from it directly.
        if (const BufferSlice imported = imports_ ? imports_->find(p.data, p.bytes) : BufferSlice{};
            imported.buffer != VK_NULL_HANDLE) {
            gather(imported.buffer, "upload (imported host memory)",
                   VkBufferCopy{imported.offset, dst.offset + p.dst_offset, p.bytes});
            direct_bytes_ += p.bytes;
            continue;
        }
        VkDeviceSize done = 0;
        while (done < p.bytes) {
            // Pieces larger than the ring go in ring-sized parts.
            const VkDeviceSize n = std::min(p.bytes - done, ring_.capacity());
            BufferSlice s = ring_.reserve(n);
            if (s.size == 0) {
                emit();
                wait_cause_ = WaitCause::staging_full;
                flush(false);
                s = ring_.reserve(n);
            }
            // Streamed experts are megabytes: one core's memcpy would hold the bus idle.
            const auto copy0 = std::chrono::steady_clock::now();
            const uint8_t *from = static_cast<const uint8_t *>(p.data) + done;
            constexpr VkDeviceSize kChunk = VkDeviceSize(1) << 20;
            const int64_t chunks = int64_t((n + kChunk - 1) / kChunk);
#pragma omp parallel for num_threads(int(std::min<int64_t>(chunks, 8))) if (chunks > 1) schedule(static)
            for (int64_t c = 0; c < chunks; ++c)
                std::memcpy(s.mapped + c * kChunk, from + c * kChunk,
                            size_t(std::min<VkDeviceSize>(kChunk, n - VkDeviceSize(c) * kChunk)));
            staging_memcpy_seconds_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - copy0).count();
            staged_bytes_ += n;
            gather(s.buffer, "upload (staging ring)", VkBufferCopy{s.offset, dst.offset + p.dst_offset + done, n});
            done += n;
        }
    }
    emit();
}

VkDescriptorSet CommandStream::allocate_set(const VulkanPipeline &p) {
    const VkDevice d = ctx_.device();
    for (;;) {
        if (current_pool_ == descriptor_pools_.size()) {
            VkDescriptorPoolSize size{VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, kSetsPerPool * 8};
            VkDescriptorPoolCreateInfo dpci{VK_STRUCTURE_TYPE_DESCRIPTOR_POOL_CREATE_INFO};
            dpci.maxSets = kSetsPerPool;
            dpci.poolSizeCount = 1;
            dpci.pPoolSizes = &size;
            VkDescriptorPool pool;
            vk_check(vkCreateDescriptorPool(d, &dpci, nullptr, &pool), "vkCreateDescriptorPool");
            descriptor_pools_.push_back(pool);
        }
        VkDescriptorSetAllocateInfo dsai{VK_STRUCTURE_TYPE_DESCRIPTOR_SET_ALLOCATE_INFO};
        dsai.descriptorPool = descriptor_pools_[current_pool_];
        dsai.descriptorSetCount = 1;
        dsai.pSetLayouts = &p.set_layout;
        VkDescriptorSet set;
        const VkResult r = vkAllocateDescriptorSets(d, &dsai, &set);
        if (r == VK_SUCCESS) return set;
        if (r != VK_ERROR_OUT_OF_POOL_MEMORY && r != VK_ERROR_FRAGMENTED_POOL) vk_check(r, "vkAllocateDescriptorSets");
        ++current_pool_;
    }
}

void CommandStream::dispatch(const VulkanPipeline &p, std::initializer_list<BufferSlice> bindings, const void *push,
                             size_t push_bytes, uint32_t gx, uint32_t gy, uint32_t gz) {
    record_deferred();
    if (bindings.size() != p.n_bindings)
        fail(MST_ERR_INTERNAL, "vulkan: dispatch with {} buffers for a pipeline of {}", bindings.size(), p.n_bindings);
    if (push_bytes > PipelineCache::kPushBytes) fail(MST_ERR_INTERNAL, "vulkan: {} bytes of push constants", push_bytes);
    if (gx == 0 || gy == 0 || gz == 0) return;
    begin_if_needed();
    Range read_ranges[16], write_ranges[16];
    size_t n_reads = 0, n_writes = 0;
    {
        uint32_t i = 0;
        for (const BufferSlice &b : bindings) {
            const Range r{b.buffer, b.offset, b.offset + std::max<VkDeviceSize>((b.size + 3) / 4 * 4, 4)};
            if (p.write_mask & (1u << i)) write_ranges[n_writes++] = r;
            else read_ranges[n_reads++] = r;
            ++i;
        }
    }
    hazard(read_ranges, n_reads, write_ranges, n_writes, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT);
    // Without push descriptors each dispatch has a set of its own, from a pool reset after
    // each wait (so no replay then: set_replay).
    const VkDescriptorSet set = ctx_.push_descriptor() ? VK_NULL_HANDLE : allocate_set(p);
    log_.insert(log_.end(), {uint64_t(Logged::dispatch), word(p.pipeline), word(p.layout), uint64_t(bindings.size())});
    ++commands_;
    // Whole words: shaders read weights as 32-bit words, and every allocation is padded to
    // a multiple of 4, so the last partial word is in range.
    for (const BufferSlice &b : bindings)
        log_.insert(log_.end(), {word(b.buffer), b.offset, std::max<VkDeviceSize>((b.size + 3) / 4 * 4, 4)});
    log_.insert(log_.end(), {word(set), uint64_t(push_bytes)});
    const size_t at = log_.size();
    log_.resize(at + (push_bytes + 7) / 8, 0);
    if (push_bytes) std::memcpy(log_.data() + at, push, push_bytes);
    log_.insert(log_.end(), {uint64_t(gx), uint64_t(gy), uint64_t(gz)});
    note_level_command(p.name, gx, gy, gz);
    if (profile_ == Profile::commands) timestamp_after(fmt::format("{} {}x{}x{}", p.name, gx, gy, gz));
}

bool CommandStream::joins_level(std::span<const BufferSlice> reads) const {
    // Conservative about the lane: any pending copy may be one of these ranges.
    if (transfer_.has_pending()) return false;
    for (const BufferSlice &b : reads)
        if (hits(written_, Range{b.buffer, b.offset, b.offset + std::max<VkDeviceSize>((b.size + 3) / 4 * 4, 4)}))
            return false;
    return true;
}

void CommandStream::copy(const BufferSlice &src, const BufferSlice &dst, VkDeviceSize bytes) {
    record_deferred();
    if (!bytes) return;
    // Small copies (activations to and from host memory) by a shader: a transfer command
    // waits on the copy engine, whose start costs more than the bytes.
    if (bytes <= kShaderCopyBytes && bytes % 4 == 0 && src.offset % offset_alignment_ == 0 &&
        dst.offset % offset_alignment_ == 0) {
        const uint32_t words = uint32_t(bytes / 4);
        const uint32_t groups = std::min<uint32_t>((words + 255) / 256, 1024);
        const uint32_t push[2] = {words, groups * 256};
        dispatch(pipelines_.get("copy_words", 2), {BufferSlice{src.buffer, src.offset, bytes, nullptr},
                                                   BufferSlice{dst.buffer, dst.offset, bytes, nullptr}},
                 push, sizeof push, groups);
        return;
    }
    begin_if_needed();
    const Range r{src.buffer, src.offset, src.offset + bytes}, w{dst.buffer, dst.offset, dst.offset + bytes};
    hazard(&r, 1, &w, 1, VK_PIPELINE_STAGE_TRANSFER_BIT);
    log_.insert(log_.end(), {uint64_t(Logged::copy), word(src.buffer), word(dst.buffer), 1, src.offset, dst.offset, bytes});
    ++commands_;
    note_level_command("vkCmdCopyBuffer", 0, 0, 0);
    if (profile_ == Profile::commands) timestamp_after("vkCmdCopyBuffer");
}

void CommandStream::fill_zero(const BufferSlice &dst) {
    record_deferred();
    begin_if_needed();
    const Range w{dst.buffer, dst.offset, dst.offset + (dst.size + 3) / 4 * 4};
    hazard(nullptr, 0, &w, 1, VK_PIPELINE_STAGE_TRANSFER_BIT);
    log_.insert(log_.end(), {uint64_t(Logged::fill), word(dst.buffer), dst.offset, (dst.size + 3) / 4 * 4});
    ++commands_;
    note_level_command("vkCmdFillBuffer", 0, 0, 0);
    if (profile_ == Profile::commands) timestamp_after("vkCmdFillBuffer");
}

const char *CommandStream::wait_cause_name(WaitCause c) {
    switch (c) {
        case WaitCause::op: return "an op outside a batch";
        case WaitCause::batch_end: return "end_batch";
        case WaitCause::sync: return "sync";
        case WaitCause::sync_reads: return "sync_reads";
        case WaitCause::input_overlap: return "an input a pending result covers in part";
        case WaitCause::host_access: return "host_access to a pending result";
        case WaitCause::drop_outputs: return "drop_results of memory a pending result reaches outside";
        case WaitCause::staging_full: return "the staging ring full";
    }
    return "?";
}

void CommandStream::note_partial_wait(WaitCause why, const void *ptr, VkDeviceSize bytes, const void *result,
                                      VkDeviceSize result_bytes) {
    const auto shift = static_cast<const uint8_t *>(ptr) - static_cast<const uint8_t *>(result);
    ++partial_waits_[fmt::format("{}: {} bytes at {:+} bytes from a pending result of {} bytes", wait_cause_name(why),
                                 bytes, shift, result_bytes)];
}

void CommandStream::kick(bool replayable) {
    record_deferred();
    if (kick_every_ == 0 || !in_batch_ || whole_pool_profile()) return;
    transfer_.submit();  // copies ahead (guesses) start now, beside the compute
    if (!recording_) return;
    if (++kicks_since_wait_ % kick_every_ != 0) {
        unreplayable_ = unreplayable_ || !replayable;
        return;
    }
    end_level();
    end_and_submit(VK_NULL_HANDLE, replayable);
    ++kicks_;
    // A recording stays with recordings_; in_flight_ only says that one is in flight.
    in_flight_.push_back(submitted_recording_ ? VK_NULL_HANDLE : cmd_);
    if (submitted_recording_) return;
    if (spare_.empty()) {
        cmd_ = allocate_command_buffer();
    } else {
        cmd_ = spare_.back();
        spare_.pop_back();
    }
}

void CommandStream::flush(bool reset_scratch) {
    record_deferred();
    transfer_.submit();
    // Kicked work is waited for through a last command buffer behind it.
    if (!recording_ && !in_flight_.empty()) begin_if_needed();
    if (recording_) {
        end_level();
        // Device writes become visible to host reads once the fence signals.
        log_barrier(Logged::host_barrier);
        if (whole_pool_profile()) log_timestamp(VK_PIPELINE_STAGE_BOTTOM_OF_PIPE_BIT, uint32_t(labels_.size() + 1));
        end_and_submit(fence_);
        ++submissions_;
        ++waits_[size_t(wait_cause_)];
        VkResult r = VK_NOT_READY;
        const auto wait0 = std::chrono::steady_clock::now();
        if (spin_wait_) {
            const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(5);
            while ((r = vkGetFenceStatus(ctx_.device(), fence_)) == VK_NOT_READY &&
                   std::chrono::steady_clock::now() < until) {
            }
        }
        if (r == VK_NOT_READY) r = vkWaitForFences(ctx_.device(), 1, &fence_, VK_TRUE, UINT64_MAX);
        vk_check(r, "vkWaitForFences");
        wait_seconds_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - wait0).count();
        vk_check(vkResetFences(ctx_.device(), 1, &fence_), "vkResetFences");
        if (whole_pool_profile()) read_timestamps();
        if (profile_ == Profile::levels) read_levels();
        if (!submitted_recording_) vk_check(vkResetCommandBuffer(cmd_, 0), "vkResetCommandBuffer");
        for (VkCommandBuffer done : in_flight_) {
            if (done == VK_NULL_HANDLE) continue;
            vk_check(vkResetCommandBuffer(done, 0), "vkResetCommandBuffer");
            spare_.push_back(done);
        }
        in_flight_.clear();
    }
    kicks_since_wait_ = 0;
    timed_.clear();
    // Copies no compute submission waited for (guesses not used yet) must have run too:
    // the ring and the imported host slots they read are reused after this point.
    transfer_.wait_all(compute_waited_, spin_wait_, wait_seconds_);
    ring_.reset();
    graveyard_.clear();
    // Nothing recorded before this point is pending on the device any more.
    completed_waits_.fetch_add(1, std::memory_order_release);
    if (reset_scratch) {
        ++scratch_resets_;
        for (size_t i = 0; i <= current_pool_ && i < descriptor_pools_.size(); ++i)
            vkResetDescriptorPool(ctx_.device(), descriptor_pools_[i], 0);
        current_pool_ = 0;
        host_.reset();
        device_.reset();
        segment_ = 0;  // the same allocations again: the recordings may match
    }
}

void CommandStream::submit() {
    if (!in_batch_) run(nullptr, WaitCause::op);
}

void CommandStream::copy_many(const std::vector<std::pair<BufferSlice, BufferSlice>> &copies,
                              const BufferSlice *whole_destination) {
    record_deferred();
    // Grouped by (source buffer, destination buffer): a group of several becomes one
    // copy_table dispatch over the spans they cover; the rest go one by one.
    // The copies' indices sorted by (source, destination, index), each run of one pair a
    // group, in the order a map keyed by the pair would give (the same commands, so that
    // recordings still match); the index vector is the stream's, so no allocation per call.
    std::vector<size_t> &order = copy_order_;
    order.clear();
    for (size_t i = 0; i < copies.size(); ++i)
        if (copies[i].first.size) order.push_back(i);
    auto pair_of = [&](size_t i) { return std::make_pair(copies[i].first.buffer, copies[i].second.buffer); };
    std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
        const auto pa = pair_of(a), pb = pair_of(b);
        return pa != pb ? pa < pb : a < b;
    });
    const VkDeviceSize max_range = ctx_.properties().limits.maxStorageBufferRange;
    for (size_t first = 0, last = 0; first < order.size(); first = last) {
        while (last < order.size() && pair_of(order[last]) == pair_of(order[first])) ++last;
        const std::span<const size_t> group(order.data() + first, last - first);
        const std::pair<VkBuffer, VkBuffer> buffers = pair_of(order[first]);
        VkDeviceSize src_lo = ~VkDeviceSize(0), src_hi = 0, dst_lo = ~VkDeviceSize(0), dst_hi = 0, longest = 0;
        bool table = group.size() > 1 && group.size() <= 65535;
        for (size_t i : group) {
            const auto &[src, dst] = copies[i];
            table = table && src.offset % 4 == 0 && dst.offset % 4 == 0 && src.size % 4 == 0;
            src_lo = std::min(src_lo, src.offset);
            src_hi = std::max(src_hi, src.offset + src.size);
            dst_lo = std::min(dst_lo, dst.offset);
            dst_hi = std::max(dst_hi, dst.offset + src.size);
            longest = std::max(longest, src.size / 4);
        }
        src_lo -= src_lo % offset_alignment_;
        dst_lo -= dst_lo % offset_alignment_;
        if (whole_destination && whole_destination->buffer == buffers.second &&
            whole_destination->offset + whole_destination->size >= dst_hi && whole_destination->size <= max_range) {
            dst_lo = whole_destination->offset;
            dst_hi = whole_destination->offset + whole_destination->size;
        }
        if (!table || src_hi - src_lo > max_range || dst_hi - dst_lo > max_range) {
            for (size_t i : group) copy(copies[i].first, copies[i].second, copies[i].first.size);
            continue;
        }
        // The table is read from host memory: three words per workgroup cost less than
        // a copy of it to the device and the barrier after.
        const BufferSlice entries = host_.allocate(group.size() * 3 * sizeof(uint32_t));
        auto *entry = reinterpret_cast<uint32_t *>(entries.mapped);
        for (size_t i : group) {
            const auto &[src, dst] = copies[i];
            *entry++ = uint32_t((src.offset - src_lo) / 4);
            *entry++ = uint32_t((dst.offset - dst_lo) / 4);
            *entry++ = uint32_t(src.size / 4);
        }
        const uint32_t n_entries = uint32_t(group.size());
        const uint32_t gx = uint32_t(std::min<VkDeviceSize>((longest + 255) / 256, 64));
        dispatch(pipelines_.get("copy_table", 3),
                 {BufferSlice{buffers.first, src_lo, src_hi - src_lo, nullptr},
                  BufferSlice{buffers.second, dst_lo, dst_hi - dst_lo, nullptr}, entries},
                 &n_entries, sizeof n_entries, gx, n_entries);
    }
}

void CommandStream::deliver(const std::vector<size_t> &which) {
    // The results computed in one device buffer land side by side in one host slice, so
    // that copy_many makes them one dispatch.
    std::map<VkBuffer, VkDeviceSize> bytes_from;
    for (size_t i : which) bytes_from[outputs_[i].device.buffer] += (outputs_[i].bytes + 3) / 4 * 4;
    std::map<VkBuffer, std::pair<BufferSlice, VkDeviceSize>> to;  // host slice, bytes used
    for (const auto &[buffer, bytes] : bytes_from) to[buffer] = {host_.allocate(bytes), 0};
    std::vector<std::pair<BufferSlice, BufferSlice>> copies;
    for (size_t i : which) {
        Output &o = outputs_[i];
        auto &[slice, used] = to[o.device.buffer];
        o.src = BufferSlice{slice.buffer, slice.offset + used, o.bytes, slice.mapped + used};
        used += (o.bytes + 3) / 4 * 4;
        copies.push_back({BufferSlice{o.device.buffer, o.device.offset, o.bytes, nullptr}, o.src});
    }
    copy_many(copies);
}

void CommandStream::carry(const std::vector<size_t> &which, BufferArena &to) {
    std::vector<std::pair<BufferSlice, BufferSlice>> copies;
    for (size_t i : which) {
        Output &o = outputs_[i];
        const BufferSlice c = to.allocate(o.bytes);
        copies.push_back({BufferSlice{o.device.buffer, o.device.offset, o.bytes, nullptr}, c});
        o.device = o.src = BufferSlice{c.buffer, c.offset, o.bytes, c.mapped};
        carried_bytes_ += o.bytes;
    }
    copy_many(copies);
}

void CommandStream::run(const std::vector<HostRange> *reads, WaitCause why) {
    record_deferred();
    wait_cause_ = why;
    // Results a later one covers entirely are neither delivered nor carried (those at the
    // same address were marked as the later one came: output()).
    for (size_t i = 0; i < outputs_.size(); ++i) {
        Output &o = outputs_[i];
        for (size_t j = i + 1; j < outputs_.size() && !o.superseded; ++j)
            o.superseded = !outputs_[j].superseded && contains(outputs_[j].dst, outputs_[j].bytes, o.dst, o.bytes);
    }
    compact_outputs();
    // What the host reads now is copied to host memory after the work (each copy waits
    // only for what wrote its source); the rest moves out of the scratch being reset.
    std::vector<size_t> now, later, to_copy;
    for (size_t i = 0; i < outputs_.size(); ++i) {
        bool read = reads == nullptr;
        for (size_t r = 0; !read && r < reads->size(); ++r)
            read = overlaps((*reads)[r].ptr, (*reads)[r].bytes, outputs_[i].dst, outputs_[i].bytes);
        (read ? now : later).push_back(i);
        if (read && !outputs_[i].device.mapped) to_copy.push_back(i);
    }
    deliver(to_copy);
    const int carry_to = later.empty() ? -1 : 1 - std::max(carry_live_, 0);
    auto reset_carried = [&] {
        if (carry_live_ >= 0) carry_[carry_live_].reset();
        carry_live_ = carry_to;
    };
    if (carry_to >= 0) carry(later, carry_[carry_to]);
    try {
        flush(false);
    } catch (...) {
        outputs_.clear();
        superseded_ = 0;
        recording_ = false;
        flush(true);
        carry_[0].reset();
        carry_[1].reset();
        carry_live_ = -1;
        throw;
    }
    std::vector<Output> kept;
    std::vector<HostCopy> copies;
    for (size_t i : now) {
        copies.push_back({outputs_[i].dst, outputs_[i].src.mapped, size_t(outputs_[i].bytes)});
        delivered_bytes_ += outputs_[i].bytes;
    }
    if (copy_to_host(copies, parallel_delivery_)) ++threaded_deliveries_;
    for (size_t i : later) kept.push_back(outputs_[i]);
    outputs_ = std::move(kept);
    flush(true);
    reset_carried();
    if (after_submit_) after_submit_();
}

}  // namespace mst
