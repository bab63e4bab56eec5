// Records the work of one or more ops into a command buffer and runs it: inputs are
// copied into host-visible scratch memory, intermediates live in device-local scratch,
// uploads go through the staging ring, and outputs are copied back to the host once the
// device is done. Each op ends with submit(), which waits for the device: the Backend
// interface hands results back in host memory. Inside a batch the waits move to sync and
// end_batch, and kick() starts recorded work early without one.
#pragma once

#include <vulkan/vulkan.h>

#include <atomic>
#include <cstring>
#include <functional>
#include <map>
#include <span>
#include <string_view>
#include <string>
#include <utility>
#include <vector>

#include "backends/vulkan/host_import.h"
#include "backends/vulkan/pipelines.h"
#include "backends/vulkan/staging_ring.h"
#include "backends/vulkan/transfer_lane.h"
#include "backends/vulkan/vulkan_buffers.h"

namespace mst {

class CommandStream {
public:
    CommandStream(const VulkanContext &ctx, PipelineCache &pipelines);
    ~CommandStream();
    CommandStream(const CommandStream &) = delete;
    CommandStream &operator=(const CommandStream &) = delete;

    const VulkanContext &context() const { return ctx_; }
    PipelineCache &pipelines() { return pipelines_; }

    // Host-visible scratch, valid until submit() returns.
    BufferSlice host_scratch(VkDeviceSize bytes) { return host_.allocate(bytes); }
    // Device-local scratch, valid until submit() returns.
    BufferSlice device_scratch(VkDeviceSize bytes) { return device_.allocate(bytes); }
    // Host bytes as the device reads them best: copied into host-visible scratch and, on a
    // discrete GPU, on into device memory (a shader reading host memory across the bus,
    // once per workgroup, is many times slower). Inside a batch, bytes a pending op of
    // the batch writes are taken from that op's device result instead.
    BufferSlice input(const void *data, VkDeviceSize bytes);
    // A host-scratch slice the host has filled, made device-resident likewise.
    BufferSlice to_device(const BufferSlice &host);
    // Where an op writes a result the host will get back: device memory (host-visible
    // memory on unified-memory devices).
    BufferSlice output_buffer(VkDeviceSize bytes);
    // After the device is done, `bytes` of `src` land at host address `dst`.
    void output(const BufferSlice &src, void *dst, VkDeviceSize bytes);
    // input() for an op that writes its result over the bytes it reads (rope, the expert
    // combines). A copy's result may be its source's device bytes themselves (copy_rows
    // of contiguous rows records no command): when another pending result holds these
    // device bytes for another host address, the op gets a copy of its own, so that its
    // write does not change that other result too.
    BufferSlice input_to_modify(const void *data, VkDeviceSize bytes);
    // Scratch resets so far (each wait that resets the arenas): a device slice of scratch
    // taken at one count is valid while the count is the same.
    uint64_t scratch_resets() const { return scratch_resets_; }
    // Host code is about to read or write [ptr, ptr + bytes) itself: when a pending op of
    // the batch writes there, the batch runs first.
    void host_access(const void *ptr, VkDeviceSize bytes);
    // [ptr, ptr + bytes) is about to be freed: pending outputs inside it are dropped (one
    // reaching outside it first runs the batch).
    void drop_outputs(const void *ptr, VkDeviceSize bytes);
    // Whether a pending op of the batch writes into [ptr, ptr + bytes).
    bool pending(const void *ptr, VkDeviceSize bytes) const;
    // The device bytes a pending op of the batch writes for all of [ptr, ptr + bytes), as
    // input() would find them but whatever their alignment and recording nothing; false
    // when no one pending result holds them all.
    bool pending_slice(const void *ptr, VkDeviceSize bytes, BufferSlice &slice) const;

    // A batch: ops recorded between begin_batch and end_batch are submitted once, at the
    // end of the outermost batch (Backend::begin_batch states the caller's side of it).
    void begin_batch() { ++batch_depth_; in_batch_ = true; }
    void end_batch();
    bool in_batch() const { return in_batch_; }
    // Inside a batch: run what is recorded so far and deliver its outputs (Backend::sync).
    void sync() {
        if (in_batch_) run(nullptr, WaitCause::sync);
    }
    // Inside a batch: run what is recorded so far and deliver only the outputs that overlap
    // `reads` (Backend::sync_reads). The others stay on the device: they are carried into
    // a small arena of their own, so that the scratch of the work done can be reused, and
    // later ops and deliveries take them from there. MST_VULKAN_DELIVER_ALL=1 delivers
    // everything, as sync() does (to compare).
    struct HostRange {
        const void *ptr;
        VkDeviceSize bytes;
    };
    void sync_reads(const std::vector<HostRange> &reads);
    // Bytes of results copied into host memory so far, and bytes carried on the device
    // past a sync_reads instead.
    uint64_t delivered_bytes() const { return delivered_bytes_; }
    // Whether a wait's memcpy of delivered results into host memory is split over threads
    // (1 MiB a piece, up to 8 threads, when they come to 4 MiB or more and do not overlap):
    // a prefill delivers every layer's KV rows at its one wait, 96 MiB at 512 tokens of 48
    // layers, more than one core copies quickly. VulkanBackend::set_prefill_host sets it.
    void set_parallel_delivery(bool on) { parallel_delivery_ = on; }
    uint64_t threaded_deliveries() const { return threaded_deliveries_; }  // waits whose copies took threads
    uint64_t carried_bytes() const { return carried_bytes_; }
    // Inside a batch: hand what is recorded so far to the device without waiting, so that
    // it computes while the host records what follows (the batch's results are still
    // delivered at sync/end_batch). Off under MST_VULKAN_PROFILE=1 and 2 and with
    // MST_VULKAN_NO_KICK=1 (to compare).
    // `replayable` false: a command buffer whose commands change every time (a streamed
    // layer's expert products, whose slots differ) is recorded for this one submission and
    // takes no place among the replay window's recordings, so that the submissions after it
    // keep the places that their earlier matches had.
    void kick(bool replayable = true);
    uint64_t kicks() const { return kicks_; }  // kicks that submitted
    // Which kicks submit (MST_VULKAN_KICK_EVERY=N): every N-th since the last wait (the
    // resident decode kicks at the end of each layer, so N layers a command buffer); 0:
    // none, as MST_VULKAN_NO_KICK=1. A kick passed over leaves its commands in the recording
    // that the next kick or wait submits. Default 1.
    void set_kick_every(uint32_t n) { kick_every_ = n; }
    uint32_t kick_every() const { return kick_every_; }
    // Submit the transfer lane's open batch now, signalling a value of its own, instead of
    // when a compute command first reads it (a streamed layer's missed expert, so that its
    // copies start while the host looks up the next one and its products wait for it alone).
    void start_transfers() { transfer_.submit(); }
    // Run after every submission the device has finished (the ops' results delivered).
    void set_after_submit(std::function<void()> f) { after_submit_ = std::move(f); }
    // Destroy `b` once the work recorded so far is done.
    void release_later(VulkanBuffer &&b) { graveyard_.push_back(std::move(b)); }

    // Where an upload's copy command goes. `compute`: the batch's own command buffer, in
    // order with its other commands. `transfer`: the transfer lane (transfer_lane.h), for
    // destinations nothing reads or writes before the copy but the commands that wait for
    // it (the GPU expert cache's slots); the compute queue when the lane is off.
    enum class Lane { compute, transfer };
    // Copy host bytes into `dst` (device memory): directly when dst is host-visible
    // (unified memory), else through the staging ring.
    void upload(const void *data, VkDeviceSize bytes, const BufferSlice &dst, Lane lane = Lane::compute);
    // Several (host source, destination offset, bytes) pieces into one destination.
    struct Piece {
        const void *data;
        VkDeviceSize dst_offset;
        VkDeviceSize bytes;
    };
    void upload_pieces(const std::vector<Piece> &pieces, const BufferSlice &dst, Lane lane = Lane::compute);
    // The transfer lane (docs/device_graph.md, "Expert copies on a transfer queue"): on
    // where the context has a transfer queue (MST_VULKAN_TRANSFER_QUEUE, default on), the
    // device memory is separate, and no profile is taken (its timestamps are the compute
    // queue's). Copies there are submitted when a compute command first reads what they
    // write, at a kick, or at a wait; a compute submission waits on the lane's timeline
    // semaphore for exactly the batches whose ranges its commands read.
    bool transfer_lane() const { return transfer_on_; }
    const TransferLane &transfer() const { return transfer_; }
    // Compute submissions that waited on the lane's semaphore, and the largest value one
    // waited for (a test's view of the ordering).
    uint64_t semaphore_waits() const { return semaphore_waits_; }
    uint64_t compute_waited_value() const { return compute_waited_; }
    // Host memory imported for the device (host_import.h): uploads from it are copied by
    // the device directly, without the staging ring's memcpy. May be null.
    void set_host_imports(const HostImports *imports) { imports_ = imports; }
    // Upload bytes so far: through the staging ring (and the host seconds of their memcpy
    // into it), and copied by the device straight from imported host memory.
    uint64_t staged_bytes() const { return staged_bytes_; }
    double staging_memcpy_seconds() const { return staging_memcpy_seconds_; }
    uint64_t direct_bytes() const { return direct_bytes_; }
    // How many times the host has found every piece of work recorded before it finished
    // (any thread may read it): host memory a copy was recorded from when this read e may
    // be reused once it reads more than e (a host expert slab's deferred slots).
    uint64_t completed_waits() const { return completed_waits_.load(std::memory_order_acquire); }

    // Record a dispatch. Bindings in order; `push` (up to 128 bytes) as push constants.
    // The pipeline's write_mask says which bindings it writes; a barrier is recorded only
    // when this command reads or writes what an earlier command since the last barrier
    // wrote, or writes what one read, so independent commands (the q, k and v products,
    // every expert's gate and up products) overlap on the device.
    void dispatch(const VulkanPipeline &p, std::initializer_list<BufferSlice> bindings, const void *push,
                  size_t push_bytes, uint32_t gx, uint32_t gy = 1, uint32_t gz = 1);
    // Whether a dispatch reading `reads` and writing only memory no command has touched since
    // the last barrier (a fresh scratch slice) would be recorded now without a barrier before
    // it and without making the command buffer wait on the transfer lane: it joins the level
    // open now, and no command after it can need a barrier for its sake (the L2 warm-up,
    // op_l2_warm.cpp, records only such dispatches).
    bool joins_level(std::span<const BufferSlice> reads) const;
    void copy(const BufferSlice &src, const BufferSlice &dst, VkDeviceSize bytes);
    void fill_zero(const BufferSlice &dst);
    // Several (source, destination) copies of source.size bytes each: those between the
    // same two buffers in one dispatch (shaders/copy_table.comp), not a command each.
    // `whole_destination`, when given, is the whole buffer every copy goes into: the
    // dispatch binds all of it, so that copies to other offsets of it (the KV rows of the
    // next position) record the same command and a recording can be replayed.
    void copy_many(const std::vector<std::pair<BufferSlice, BufferSlice>> &copies,
                   const BufferSlice *whole_destination = nullptr);

    // Work an op left to record later (VulkanBackend's deferred norms and products, which
    // the op that reads their result may fold into its own dispatch: op_fusion.cpp). The
    // stream calls `record` before it records any other command, kicks or runs, so the
    // commands come in the order the ops were called unless the owner records them itself.
    // `record` must record the deferred work (through dispatch) or nothing.
    void set_deferred(std::function<void()> record) { deferred_ = std::move(record); }

    // Run what was recorded, wait, deliver outputs, and reset the scratch memory; inside
    // a batch nothing happens until end_batch.
    void submit();

    uint64_t submissions() const { return submissions_; }
    // Why each waited submission waited: an op outside a batch, the end of a batch, a sync,
    // a sync_reads, an input that a pending result covers only in part, host code touching
    // a pending result (host_access), a pending result reaching outside memory about to be
    // freed (drop_outputs), the staging ring full in the middle of an upload.
    enum class WaitCause { op, batch_end, sync, sync_reads, input_overlap, host_access, drop_outputs, staging_full };
    static constexpr size_t kWaitCauses = 8;
    static const char *wait_cause_name(WaitCause c);
    uint64_t waits(WaitCause c) const { return waits_[size_t(c)]; }
    // The waits of the three partial-overlap causes, by what overlapped: the host range's
    // bytes, where it starts against the pending result and that result's bytes (what names
    // the vector involved), counted.
    const std::map<std::string, uint64_t> &partial_waits() const { return partial_waits_; }
    // Seconds the host has spent waiting for submissions to finish: the rest of a step's
    // wall time is host work (recording, the model's own code) or device time it overlaps.
    double wait_seconds() const { return wait_seconds_; }
    struct Range {
        VkBuffer buffer;
        VkDeviceSize begin, end;
    };
    // Device time from timestamp queries, chosen by MST_VULKAN_PROFILE when the stream is
    // made or by set_profile between waits:
    //   submissions ("1"): a timestamp at the start and end of each command buffer;
    //   commands ("2"): a timestamp after every command as well (dispatch_profile). Each
    //     timestamp drains the device, so this is the commands' serialized time;
    //   levels ("levels"): a timestamp only where a barrier drains the device anyway, and at
    //     each command buffer's start and end (level_profile, submission_profile). Kicks and
    //     replay stay on, so these are the times of a normal run.
    // The first two turn kicks and replay off (a submission's timestamps take the whole
    // query pool). Unset, empty or "0": off; any other value is an error.
    enum class Profile { off, submissions, commands, levels };
    // Between waits only (nothing recorded or in flight). Returns false, changing nothing,
    // where the device has no timestamps on its compute queue.
    bool set_profile(Profile p);
    Profile profile() const { return profile_; }
    // Device time of all submissions so far under a profile (levels: from each wait's first
    // submission's start to its last one's end), else 0.
    double gpu_seconds() const { return gpu_seconds_; }
    // Profile::commands: device time by command, keyed by the shader variant and
    // its grid ("matmul_bf16 1024x1x1") or the transfer command. A timestamp follows each
    // command, and each command is charged the time from the previous timestamp to its
    // own: commands that overlap on the device share their time, the sum is exact. Up to
    // kProfiledCommands per submission are timed; later ones are charged together.
    struct DispatchStat {
        uint64_t calls = 0;
        double seconds = 0;
    };
    static constexpr uint32_t kProfiledCommands = 4094;
    const std::map<std::string, DispatchStat> &dispatch_profile() const { return dispatch_profile_; }
    void clear_dispatch_profile() { dispatch_profile_.clear(); }
    // Profile::levels: device time by level (the commands between two barriers, or between
    // a barrier and a command buffer's end), keyed by its commands' labels as
    // dispatch_profile names them, joined by " + " in recording order. A level is charged
    // from the timestamp before it (the previous level's end, or its command buffer's
    // start) to its own end, so its time includes the barrier's drain and its commands'
    // launch: what the level costs a real run. Up to kTimedLevels levels of a command
    // buffer are timed (later ones are charged together with its last), and up to
    // kTimedSubmissions command buffers between two waits.
    static constexpr uint32_t kTimedSubmissions = 256, kTimedLevels = 62;
    // A command of a timed level (its name outlives the stream: a pipeline's or a literal).
    struct LevelCommand {
        std::string_view name;
        uint32_t gx = 0, gy = 0, gz = 0;  // 0: a transfer command
    };
    const std::map<std::string, DispatchStat> &level_profile() const { return level_profile_; }
    // Profile::levels, over the command buffers timed so far: their device time (start to
    // end), and between one's end and the next one's start (both before one wait): time the
    // device had nothing to run (the host had not submitted the next one yet; positive
    // gaps), and how many started before the one before them ended (queued ahead).
    struct SubmissionProfile {
        uint64_t timed = 0, idle_gaps = 0, queued_ahead = 0;
        double busy_seconds = 0, idle_seconds = 0;
    };
    const SubmissionProfile &submission_profile() const { return submission_profile_; }
    void clear_level_profile() {
        level_profile_.clear();
        submission_profile_ = {};
    }
    // Pipeline barriers recorded so far (each one a point where the device drains).
    uint64_t barriers() const { return barriers_; }
    // What a barrier between two levels names (MST_VULKAN_BARRIERS, or set_barrier_scope at
    // any time): `wide` (the default): compute and transfer stages on both sides, every
    // shader and transfer access after it, all of memory; `stages`: a memory barrier with
    // exactly the stages and accesses of the commands on either side (compute alone where
    // both levels are dispatches), also after a kick; `ranges`: buffer memory barriers on
    // exactly the ranges the level before wrote, the stages as `wide`.
    enum class BarrierScope { wide, stages, ranges };
    void set_barrier_scope(BarrierScope s) { barrier_scope_ = s; }
    BarrierScope barrier_scope() const { return barrier_scope_; }
    // Commands recorded so far: dispatches, copies and fills (each a launch on the device).
    uint64_t commands() const { return commands_; }

    // Replay (docs/device_graph.md, "Recorded once, replayed"). Commands are logged as
    // they are recorded and turned into a command buffer only at submission; the n-th
    // submission after a wait whose log is word for word the n-th one of an earlier
    // window (same pipelines, buffers, offsets, push constants, grids and barriers, no
    // buffer destroyed since) submits that command buffer again instead of recording it.
    // What changes between decode steps is then only memory contents: the inputs the ops
    // write into host scratch, the rope table, the KV copy tables, the attention's
    // position (a binding, not a push constant). On by default where the device pushes
    // descriptors (a replayed buffer must not name descriptor sets of a reset pool), off
    // while profiling and with MST_VULKAN_REPLAY=0 (to compare).
    void set_replay(bool on);
    bool replay() const { return replay_; }
    uint64_t replayed() const { return replayed_; }  // submissions that reused a recording
    uint64_t recorded() const { return recorded_; }  // submissions recorded afresh
    // Host seconds spent recording command buffers from the logs (what replay saves).
    double record_seconds() const { return record_seconds_; }

private:
    void begin_if_needed();
    // Records the owner's deferred work now (set_deferred), before the command that asks.
    void record_deferred() {
        if (deferred_) deferred_();
    }
    std::function<void()> deferred_;
    VkCommandBuffer allocate_command_buffer();
    // End the recording of cmd_ and submit it, signalling `fence` (may be null) when done;
    // `replayable` as kick() says.
    void end_and_submit(VkFence fence, bool replayable = true);
    // Order the next command, of pipeline stage `stage`, after the earlier ones when it
    // depends on them.
    void hazard(const Range *reads, size_t n_reads, const Range *writes, size_t n_writes, VkPipelineStageFlags stage);
    void barrier();
    std::vector<Range> read_, written_;  // since the last barrier
    BarrierScope barrier_scope_ = BarrierScope::wide;
    // The stages of the commands since the last barrier and the accesses they write with,
    // and (BarrierScope::stages) where in log_ the open barrier's destination stage and
    // access words are, which each command after it widens; npos when none is open.
    VkPipelineStageFlags level_stages_ = 0;
    VkAccessFlags level_writes_ = 0;
    size_t open_barrier_ = size_t(-1);
    void log_stage_barrier(VkPipelineStageFlags src, VkAccessFlags src_access);
    // Submit and wait without resetting scratch (the ring is full mid-op).
    void flush(bool reset_scratch);
    VkDescriptorSet allocate_set(const VulkanPipeline &p);

    const VulkanContext &ctx_;
    PipelineCache &pipelines_;
    VkCommandPool pool_ = VK_NULL_HANDLE;
    VkCommandBuffer cmd_ = VK_NULL_HANDLE;
    VkFence fence_ = VK_NULL_HANDLE;
    std::vector<VkDescriptorPool> descriptor_pools_;
    size_t current_pool_ = 0;
    BufferArena host_, device_;
    StagingRing ring_;
    TransferLane transfer_;
    bool transfer_on_ = false;
    // The lane's value the compute recording in progress must wait for, the largest one a
    // submitted compute command buffer waited for, and how many waited.
    uint64_t compute_wait_ = 0, compute_waited_ = 0, semaphore_waits_ = 0;
    const HostImports *imports_ = nullptr;
    uint64_t staged_bytes_ = 0, direct_bytes_ = 0;
    std::atomic<uint64_t> completed_waits_{0};
    double staging_memcpy_seconds_ = 0;
    // submit() regardless of batches: delivers the outputs overlapping `reads` (all of
    // them when null) and carries the rest.
    void run(const std::vector<HostRange> *reads, WaitCause why);
    void run_for(const void *ptr, VkDeviceSize bytes, WaitCause why) {
        const std::vector<HostRange> r{{ptr, bytes}};
        run(&r, why);
    }
    WaitCause wait_cause_ = WaitCause::op;  // of the next wait (flush counts it)
    // Counts a partial-overlap wait (partial_waits) before run_for runs it.
    void note_partial_wait(WaitCause why, const void *ptr, VkDeviceSize bytes, const void *result,
                           VkDeviceSize result_bytes);
    std::map<std::string, uint64_t> partial_waits_;
    uint64_t waits_[kWaitCauses] = {};
    // Record the copies of outputs_[i], i in `which`, to host scratch (setting their src).
    void deliver(const std::vector<size_t> &which);
    // Record the copies of outputs_[i], i in `which`, into `to` (their new device copy).
    void carry(const std::vector<size_t> &which, BufferArena &to);
    // Two arenas taking turns: at each sync_reads the results still pending move from
    // scratch (or the other arena) into the free one.
    BufferArena carry_[2];
    int carry_live_ = -1;  // the arena that holds pending results, -1 when none does
    bool deliver_all_ = false;
    bool parallel_delivery_ = true;
    uint64_t threaded_deliveries_ = 0;
    uint64_t delivered_bytes_ = 0, carried_bytes_ = 0;
    struct Output {
        BufferSlice src;     // host-visible: what is copied to dst (set by run() unless device is)
        BufferSlice device;  // where the result was computed (for inputs of later ops)
        void *dst;
        VkDeviceSize bytes;
        bool superseded = false;  // a later result covers it: skipped, removed by compact_outputs
    };
    bool in_batch_ = false;
    int batch_depth_ = 0;
    std::function<void()> after_submit_;
    std::vector<VulkanBuffer> graveyard_;
    VkDeviceSize offset_alignment_;
    std::vector<Output> outputs_;
    // Results marked superseded (output() marks an earlier one at the same address).
    size_t superseded_ = 0;
    void compact_outputs();
    uint64_t scratch_resets_ = 0;
    uint64_t commands_ = 0;
    bool recording_ = false;
    bool dirty_ = false;  // commands recorded since the last barrier
    bool spin_wait_;
    uint64_t submissions_ = 0;
    double wait_seconds_ = 0;
    VkQueryPool timestamps_ = VK_NULL_HANDLE;  // made by the first profile
    double gpu_seconds_ = 0, timestamp_period_ns_ = 0;
    Profile profile_ = Profile::off;
    // The profiles that time every submission from the start of the query pool.
    bool whole_pool_profile() const { return profile_ == Profile::submissions || profile_ == Profile::commands; }
    // Profile::commands: the label of each timed command of the recording (query i + 1
    // follows command i), and what the finished submissions added up to.
    void timestamp_after(std::string label);
    void read_timestamps();
    std::vector<std::string> labels_;
    std::map<std::string, DispatchStat> dispatch_profile_;
    // Profile::levels: the commands of the level being recorded, the timed command buffers since the last wait (each its
    // first query, the start, then one query per level's end), and their totals.
    struct TimedSubmission {
        uint32_t first_query;
        std::vector<std::vector<LevelCommand>> levels;
    };
    std::vector<LevelCommand> level_commands_;
    std::vector<TimedSubmission> timed_;
    bool timing_ = false;  // the recording in progress is timed (it had a free range of queries)
    void note_level_command(std::string_view name, uint32_t gx, uint32_t gy, uint32_t gz) {
        if (profile_ == Profile::levels) level_commands_.push_back({name, gx, gy, gz});
    }
    void end_level();
    void read_levels();
    std::map<std::string, DispatchStat> level_profile_;
    SubmissionProfile submission_profile_;
    uint64_t barriers_ = 0;
    // Command buffers kicked and not yet waited for, and reset ones to record into next.
    std::vector<VkCommandBuffer> in_flight_, spare_;
    uint32_t kick_every_ = 1;
    uint64_t kicks_ = 0;
    uint64_t kicks_since_wait_ = 0;  // kick() calls since the last wait, those passed over too
    bool unreplayable_ = false;  // a kick(false) passed over: the recording must not be replayed

    // The log of the recording in progress (words: a command kind, then its arguments),
    // and what each submission since the last scratch reset recorded.
    enum class Logged : uint64_t {
        dispatch,
        copy,
        fill,
        barrier,
        stage_barrier,  // source stages and accesses, destination stages and accesses
        range_barrier,  // n, then n (buffer, offset, bytes)
        kick_barrier,
        host_barrier,
        reset_queries,  // first, count
        timestamp
    };
    std::vector<uint64_t> log_;
    std::vector<size_t> copy_order_;  // copy_many's grouping, kept to reuse its memory
    void log_barrier(Logged kind);
    void log_timestamp(VkPipelineStageFlagBits stage, uint32_t query);
    // Record `log` into `cb` (begun and ended here).
    void record(VkCommandBuffer cb, const std::vector<uint64_t> &log, VkCommandBufferUsageFlags usage);
    struct Recording {
        std::vector<uint64_t> log;
        VkCommandBuffer cmd = VK_NULL_HANDLE;
        uint64_t destroyed = 0;  // VulkanBuffer::destroyed() when it was recorded
    };
    std::vector<Recording> recordings_;
    size_t segment_ = 0;  // submissions since the scratch was last reset
    bool replay_ = false;
    bool replay_wanted_ = true;  // set_replay's, before the device and the profile had their say
    bool submitted_recording_ = false;  // the last submission was one of recordings_
    uint64_t replayed_ = 0, recorded_ = 0;
    double record_seconds_ = 0;
};

}  // namespace mst
