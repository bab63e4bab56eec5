#include "backends/vulkan/vulkan_backend.h"

#include <algorithm>

#include <fmt/format.h>

#include "core/error.h"
#include "core/log.h"

namespace mst {

VulkanBackend::VulkanBackend(const BackendOptions &options, bool gpu_only) {
    ctx_ = std::make_unique<VulkanContext>(options.device, gpu_only);
    pipelines_ = std::make_unique<PipelineCache>(*ctx_);
    stream_ = std::make_unique<CommandStream>(*ctx_, *pipelines_);
    host_imports_ = std::make_unique<HostImports>(*ctx_);
    stream_->set_host_imports(host_imports_.get());
    // Experts a submission used may be evicted once it has run.
    stream_->set_after_submit([this] { residency_->end_submission(); });
    const uint64_t device_bytes = ctx_->info().device_local_bytes;
    // Unified memory: the expert cache would only duplicate the host's copy, so it is small
    // unless asked for; discrete: a quarter of the device memory.
    uint64_t budget = options.gpu_expert_cache_bytes;
    if (budget == 0) budget = ctx_->unified_memory() ? (uint64_t(256) << 20) : device_bytes / 4;
    residency_ = std::make_unique<WeightResidency>(*ctx_, budget);
    unused_binding_ = std::make_unique<VulkanBuffer>(*ctx_, 16, MemoryKind::Device);
    kv_budget_ = std::max<uint64_t>(device_bytes / 4, uint64_t(256) << 20);
    const uint32_t sg = ctx_->subgroup_size();
    use_subgroup_ = ctx_->subgroup_arithmetic() && sg >= 8 && sg <= 128 && (sg & (sg - 1)) == 0;
    lanes_ = use_subgroup_ ? sg : 32;
    rows_per_group_ = std::max<uint32_t>(1, 128 / lanes_);
    configure_gemm_from_environment();
    configure_split_attention_from_environment();
    configure_flash_attention_from_environment();
    configure_matvec_from_environment();
    configure_experts_by_id_from_environment();
    configure_moe_fusion_from_environment();
    configure_grouped_experts_from_environment();
    configure_device_grouping_from_environment();
    configure_decode_fusion_from_environment();
    configure_attention_fusion_from_environment();
    configure_kv_append_fusion_from_environment();
    configure_router_topk_fusion_from_environment();
    configure_qkv_fusion_from_environment();
    configure_l2_warm_from_environment();
    configure_expert_prefetch_from_environment();
    configure_stream_overlap_from_environment();
    configure_prefill_host_from_environment();
    log(MST_LOG_INFO, "vulkan: backend on '{}': GPU expert cache {} MiB, matmul {} lanes x {} rows{}",
        ctx_->info().name, budget >> 20, lanes_, rows_per_group_, use_subgroup_ ? " (subgroupAdd)" : "");
}

BackendCounters VulkanBackend::counters() const {
    BackendCounters c;
    c.submissions = stream_->submissions();
    c.replayed = stream_->replayed();
    c.recorded = stream_->recorded();
    c.pipelines_created = pipelines_->created();
    c.pipeline_create_seconds = pipelines_->create_seconds();
    return c;
}

VulkanBackend::~VulkanBackend() {
    // The stream outlives deferred_ (declared after it): nothing may call back into here.
    if (stream_) stream_->set_deferred(nullptr);
}

void VulkanBackend::submit() { stream_->submit(); }

void VulkanBackend::begin_batch() {
    mutex_.lock();  // released by end_batch
    stream_->begin_batch();
}

void VulkanBackend::end_batch() {
    const std::lock_guard<std::recursive_mutex> release(mutex_, std::adopt_lock);
    stream_->end_batch();
    if (!stream_->in_batch()) check_expert_misses();
}

void VulkanBackend::sync() {
    const std::lock_guard<std::recursive_mutex> lock(mutex_);
    stream_->sync();
    check_expert_misses();
}

void VulkanBackend::sync_reads(std::span<const HostSpan> reads) {
    const std::lock_guard<std::recursive_mutex> lock(mutex_);
    std::vector<CommandStream::HostRange> ranges;
    for (const HostSpan &r : reads) ranges.push_back({r.ptr, r.bytes});
    stream_->sync_reads(ranges);
}

void VulkanBackend::drop_results(const void *ptr, size_t bytes) {
    const std::lock_guard<std::recursive_mutex> lock(mutex_);
    record_deferred_results_in(ptr, bytes);  // op_fusion.cpp
    stream_->drop_outputs(ptr, bytes);
}

bool VulkanBackend::import_host_memory(const void *ptr, uint64_t bytes, std::string &why) {
    const std::lock_guard<std::recursive_mutex> lock(mutex_);
    // Unified memory: uploads are already a memcpy into memory the device reads; nothing to gain.
    if (ctx_->unified_memory()) {
        why = "unified memory (uploads are a memcpy into device memory)";
        return false;
    }
    return host_imports_->import(ptr, bytes, why);
}

bool VulkanBackend::release_host_memory(const void *ptr) {
    const std::lock_guard<std::recursive_mutex> lock(mutex_);
    // Outside a batch every recorded copy has run (each op waits for its submission).
    if (stream_->in_batch()) fail(MST_ERR_INVALID_ARGUMENT, "vulkan: release_host_memory inside a batch");
    return host_imports_->release(ptr);
}

void VulkanBackend::groups_for(int64_t n, uint32_t per_group, uint32_t &gx, uint32_t &gy) {
    const int64_t groups = (n + per_group - 1) / per_group;
    gx = uint32_t(std::min<int64_t>(groups, 65535));
    gy = uint32_t((groups + 65534) / 65535);
    if (groups == 0) gx = gy = 0;
}

std::unique_ptr<Backend> create_vulkan_backend(const BackendOptions &options) {
    return std::make_unique<VulkanBackend>(options, false);
}

std::unique_ptr<Backend> try_create_vulkan_gpu(const BackendOptions &options, std::string &why) {
    try {
        return std::make_unique<VulkanBackend>(options, true);
    } catch (const Error &e) {
        why = e.what();
        return nullptr;
    }
}

std::vector<std::string> vulkan_device_descriptions() {
    std::vector<std::string> out;
    for (const VulkanDeviceInfo &d : vk_list_devices())
        out.push_back(fmt::format("Vulkan device {}: {} ({}, {} MiB){}{}", d.index, d.name,
                                  vk_device_type_name(d.type), d.device_local_bytes >> 20,
                                  d.usable ? "" : ", unusable: ", d.why_not));
    return out;
}

}  // namespace mst
