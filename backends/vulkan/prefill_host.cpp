// The host's side of a prefill (issue 17, docs/gpu_prefill.md "The host's side of a
// 512-token prefill"): what a batch of many tokens costs the thread that records it,
// outside the ops' own recording. Two costs grow with the tokens: the step's scratch
// vectors (BackendVector: q, k, v and the attention's output, 18 MiB a layer at 512 tokens
// of the Qwen3-30B-A3B shape), which std::vector zeroed on the host although the device
// keeps their results and never delivers them, each a fresh allocation whose pages fault
// in as the zeroing touches them; and the results a wait copies into host memory (the KV
// rows, 2 MiB a layer), one memcpy after another on the waiting thread. Now the vectors
// start uninitialised (their pages are never touched) and the copies are split over
// threads (CommandStream::set_parallel_delivery). MST_VULKAN_PREFILL_HOST=0 restores both.
#include "backends/vulkan/env_switch.h"
#include "backends/vulkan/vulkan_backend.h"
#include "core/log.h"

namespace mst {

void VulkanBackend::configure_prefill_host_from_environment() {
    set_prefill_host(env_switch("MST_VULKAN_PREFILL_HOST", prefill_host_,
                                "scratch vectors left uninitialised, delivered results copied by several threads",
                                "scratch vectors zeroed, delivered results copied by one thread"));
    if (!prefill_host_)
        log(MST_LOG_INFO, "vulkan: scratch vectors zeroed, results delivered by one thread (MST_VULKAN_PREFILL_HOST=0)");
}

void VulkanBackend::set_prefill_host(bool on) {
    const std::lock_guard<std::recursive_mutex> lock(mutex_);
    prefill_host_ = on;
    stream_->set_parallel_delivery(on);
}

}  // namespace mst
