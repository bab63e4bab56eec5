#include "backends/vulkan/host_import.h"

#include <cstdlib>

#include <fmt/format.h>

#include "backends/vulkan/env_switch.h"
#include "backends/vulkan/object_counts.h"

namespace mst {

HostImports::HostImports(const VulkanContext &ctx) : ctx_(ctx) {
    if (!env_switch("MST_VULKAN_HOST_IMPORT", true, "streamed experts copied from imported host memory",
                    "through the staging ring"))
        why_not_ = "MST_VULKAN_HOST_IMPORT=0";
    else if (ctx.host_import_alignment() == 0)
        why_not_ = "the device has no VK_EXT_external_memory_host";
}

HostImports::~HostImports() {
    for (const auto &[begin, i] : imports_) destroy(i);
}

void HostImports::destroy(const Import &i) {
    vkDestroyBuffer(ctx_.device(), i.buffer, nullptr);
    vkFreeMemory(ctx_.device(), i.memory, nullptr);
    vulkan_object_destroyed(VulkanObject::memory);
}

bool HostImports::import(const void *ptr, uint64_t bytes, std::string &why) {
    if (!available()) {
        why = why_not_;
        return false;
    }
    if (ptr == nullptr || bytes == 0) {
        why = "an empty range";
        return false;
    }
    // The driver takes whole aligned pages; the caller's range may start and end inside
    // them (its allocation owns at least the bytes it named, the pages around them are
    // mapped too: a page is mapped whole).
    const uint64_t align = ctx_.host_import_alignment();
    const uintptr_t begin = uintptr_t(ptr) / align * align;
    const uintptr_t end = (uintptr_t(ptr) + bytes + align - 1) / align * align;
    for (const auto &[b, i] : imports_)
        if (begin < i.end && i.begin < end) {
            why = fmt::format("[{}, +{}) overlaps an earlier import", ptr, bytes);
            return false;
        }
    const VkExternalMemoryHandleTypeFlagBits type = VK_EXTERNAL_MEMORY_HANDLE_TYPE_HOST_ALLOCATION_BIT_EXT;
    VkMemoryHostPointerPropertiesEXT props{VK_STRUCTURE_TYPE_MEMORY_HOST_POINTER_PROPERTIES_EXT};
    VkResult r = ctx_.host_pointer_properties()(ctx_.device(), type, reinterpret_cast<void *>(begin), &props);
    if (r != VK_SUCCESS || props.memoryTypeBits == 0) {
        why = fmt::format("vkGetMemoryHostPointerPropertiesEXT: {}", vk_result_name(r));
        return false;
    }
    Import im;
    im.begin = begin;
    im.end = end;
    im.caller_ptr = ptr;
    VkExternalMemoryBufferCreateInfo ext{VK_STRUCTURE_TYPE_EXTERNAL_MEMORY_BUFFER_CREATE_INFO};
    ext.handleTypes = type;
    VkBufferCreateInfo bci{VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO};
    bci.pNext = &ext;
    bci.size = end - begin;
    bci.usage = VK_BUFFER_USAGE_TRANSFER_SRC_BIT | VK_BUFFER_USAGE_STORAGE_BUFFER_BIT;
    ctx_.set_sharing(bci);
    if ((r = vkCreateBuffer(ctx_.device(), &bci, nullptr, &im.buffer)) != VK_SUCCESS) {
        why = fmt::format("vkCreateBuffer of {} bytes: {}", bci.size, vk_result_name(r));
        return false;
    }
    VkMemoryRequirements req;
    vkGetBufferMemoryRequirements(ctx_.device(), im.buffer, &req);
    const int32_t mtype = ctx_.find_memory_type(req.memoryTypeBits & props.memoryTypeBits, 0, 0);
    if (mtype < 0 || req.size > end - begin) {
        vkDestroyBuffer(ctx_.device(), im.buffer, nullptr);
        why = mtype < 0 ? "no memory type takes the imported pages"
                        : fmt::format("the buffer needs {} bytes, more than the {} imported", req.size, end - begin);
        return false;
    }
    VkImportMemoryHostPointerInfoEXT imp{VK_STRUCTURE_TYPE_IMPORT_MEMORY_HOST_POINTER_INFO_EXT};
    imp.handleType = type;
    imp.pHostPointer = reinterpret_cast<void *>(begin);
    VkMemoryAllocateInfo mai{VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO};
    mai.pNext = &imp;
    mai.allocationSize = end - begin;
    mai.memoryTypeIndex = uint32_t(mtype);
    if ((r = vkAllocateMemory(ctx_.device(), &mai, nullptr, &im.memory)) != VK_SUCCESS ||
        (r = vkBindBufferMemory(ctx_.device(), im.buffer, im.memory, 0)) != VK_SUCCESS) {
        if (im.memory) vkFreeMemory(ctx_.device(), im.memory, nullptr);
        vkDestroyBuffer(ctx_.device(), im.buffer, nullptr);
        why = fmt::format("importing {} bytes of host memory: {}", end - begin, vk_result_name(r));
        return false;
    }
    vulkan_object_created(VulkanObject::memory);
    imported_bytes_ += end - begin;
    imports_.emplace(begin, im);
    return true;
}

bool HostImports::release(const void *ptr) {
    for (auto it = imports_.begin(); it != imports_.end(); ++it)
        if (it->second.caller_ptr == ptr) {
            imported_bytes_ -= it->second.end - it->second.begin;
            destroy(it->second);
            imports_.erase(it);
            return true;
        }
    return false;
}

BufferSlice HostImports::find(const void *ptr, uint64_t bytes) const {
    const uintptr_t p = uintptr_t(ptr);
    auto it = imports_.upper_bound(p);
    if (it == imports_.begin()) return BufferSlice{};
    --it;
    const Import &i = it->second;
    if (p + bytes > i.end) return BufferSlice{};
    return BufferSlice{i.buffer, p - i.begin, bytes, nullptr};
}

}  // namespace mst
