#include "backends/vulkan/vulkan_bandwidth.h"

#include <algorithm>
#include <chrono>

namespace mst {

VulkanBandwidth vulkan_measure_bandwidth(VulkanBackend &backend) {
    using Clock = std::chrono::steady_clock;
    const VulkanContext &ctx = backend.context();
    CommandStream &stream = backend.stream();
    VulkanBandwidth out;
    const uint64_t device_bytes = std::min<uint64_t>(uint64_t(1) << 30, ctx.info().device_local_bytes / 16);
    {
        // A compute shader copy: the path kernels take (the copy engine is slower).
        VulkanBuffer a(ctx, device_bytes, MemoryKind::Device), b(ctx, device_bytes, MemoryKind::Device);
        const VulkanPipeline &p = stream.pipelines().get("copy", 2);
        const uint32_t groups = 132 * 16, stride = groups * 256;
        const uint32_t push[2] = {uint32_t(device_bytes / 16), stride};
        stream.dispatch(p, {whole(a), whole(b)}, push, sizeof push, groups);
        stream.submit();
        const int reps = 10;
        const auto t0 = Clock::now();
        for (int i = 0; i < reps; ++i)
            stream.dispatch(p, {i % 2 ? whole(b) : whole(a), i % 2 ? whole(a) : whole(b)}, push, sizeof push, groups);
        stream.submit();
        const double s = std::chrono::duration<double>(Clock::now() - t0).count();
        out.device_bytes_per_s = 2.0 * double(device_bytes) * reps / s;
    }
    {
        const uint64_t bytes = std::min<uint64_t>(uint64_t(256) << 20, device_bytes);
        VulkanBuffer h(ctx, bytes, MemoryKind::Host), d(ctx, bytes, MemoryKind::Device);
        stream.copy(whole(h), whole(d), bytes);
        stream.submit();
        const int reps = 8;
        const auto t0 = Clock::now();
        for (int i = 0; i < reps; ++i) stream.copy(whole(h), whole(d), bytes);
        stream.submit();
        const double s = std::chrono::duration<double>(Clock::now() - t0).count();
        out.host_to_device_bytes_per_s = double(bytes) * reps / s;
    }
    {
        VulkanBuffer d(ctx, 256, MemoryKind::Device);
        const int reps = 200;
        const auto t0 = Clock::now();
        for (int i = 0; i < reps; ++i) {
            stream.fill_zero(whole(d));
            stream.submit();
        }
        out.submit_wait_us = std::chrono::duration<double>(Clock::now() - t0).count() / reps * 1e6;
    }
    return out;
}

}  // namespace mst
