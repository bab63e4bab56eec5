// Host memory the device copies from directly (VK_EXT_external_memory_host): a caller's
// buffer, such as a host-side expert store, imported once as a VkBuffer, so that an upload
// from it is one vkCmdCopyBuffer (a DMA on a discrete GPU) instead of a host memcpy into
// the staging ring followed by the copy. Uploads from memory that is not imported, or with
// the extension absent or MST_VULKAN_HOST_IMPORT=0, take the staging ring as before.
#pragma once

#include <vulkan/vulkan.h>

#include <cstdint>
#include <map>
#include <string>

#include "backends/vulkan/vulkan_buffers.h"

namespace mst {

class HostImports {
public:
    explicit HostImports(const VulkanContext &ctx);
    ~HostImports();
    HostImports(const HostImports &) = delete;
    HostImports &operator=(const HostImports &) = delete;

    // Whether import() can work here; else why not (the extension, the switch).
    bool available() const { return why_not_.empty(); }
    const std::string &why_not() const { return why_not_; }
    // Import the pages holding [ptr, ptr + bytes). The memory must stay allocated and
    // mapped until release(ptr) (or the backend's end). False, with `why`, when the
    // device cannot import it; nothing is changed then.
    bool import(const void *ptr, uint64_t bytes, std::string &why);
    // Forget the import that `ptr` started; the caller has made sure no recorded work
    // reads it any more. False when ptr started none.
    bool release(const void *ptr);
    // The imported buffer range holding [ptr, ptr + bytes), or a slice with no buffer.
    BufferSlice find(const void *ptr, uint64_t bytes) const;
    uint64_t imported_bytes() const { return imported_bytes_; }

private:
    struct Import {
        uintptr_t begin = 0, end = 0;  // the pages imported
        const void *caller_ptr = nullptr;
        VkBuffer buffer = VK_NULL_HANDLE;
        VkDeviceMemory memory = VK_NULL_HANDLE;
    };
    void destroy(const Import &i);
    const VulkanContext &ctx_;
    std::string why_not_;
    std::map<uintptr_t, Import> imports_;  // by begin
    uint64_t imported_bytes_ = 0;
};

}  // namespace mst
