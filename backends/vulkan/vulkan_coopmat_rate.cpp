#include "backends/vulkan/vulkan_coopmat_rate.h"

#include <algorithm>
#include <chrono>

#include "backends/vulkan/command_stream.h"
#include "backends/vulkan/vulkan_buffers.h"

namespace mst {
namespace {

// FLOP/s of one variant of coopmat_rate.comp: the best of a few timed dispatches after a
// warm-up, each long enough (about 10^11 FLOP on a large GPU) that submitting is noise.
double variant_rate(CommandStream &stream, const VulkanBuffer &out, const char *name, uint32_t products_per_iteration) {
    using Clock = std::chrono::steady_clock;
    const VulkanPipeline &p = stream.pipelines().get(name, 1);
    const uint32_t groups = 132 * 8, iterations = 4096;  // several workgroups per multiprocessor
    stream.dispatch(p, {whole(out)}, &iterations, sizeof iterations, groups);
    stream.submit();
    double best = 0;
    for (int rep = 0; rep < 5; ++rep) {
        const auto t0 = Clock::now();
        stream.dispatch(p, {whole(out)}, &iterations, sizeof iterations, groups);
        stream.submit();
        const double s = std::chrono::duration<double>(Clock::now() - t0).count();
        const double flops = 2.0 * 16 * 16 * 16 * products_per_iteration * iterations * 4.0 * groups;
        best = std::max(best, flops / s);
    }
    return best;
}

}  // namespace

VulkanCoopmatRate vulkan_measure_coopmat_rate(VulkanBackend &backend) {
    VulkanCoopmatRate r;
    const VulkanContext &ctx = backend.context();
    if (!ctx.cooperative_matrix()) {
        r.why_not = ctx.cooperative_matrix_why_not();
        return r;
    }
    CommandStream &stream = backend.stream();
    const VulkanBuffer out(ctx, uint64_t(132 * 8) * 4 * 256 * sizeof(float), MemoryKind::Device);
    r.flops = variant_rate(stream, out, "coopmat_rate", 8);
    r.shared_flops = variant_rate(stream, out, "coopmat_rate_shared", 4);
    r.f16_sum_flops = variant_rate(stream, out, "coopmat_rate_f16acc", 8);
    r.measured = true;
    return r;
}

}  // namespace mst
