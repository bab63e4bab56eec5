// Host memory a device backend copies from directly (issue 17 item 2, docs/device_graph.md
// "The library's host expert cache, imported"). A backend that implements HostMemoryImport
// can take a region of host memory (the host expert cache's slab) once, so that an upload
// from inside it is a copy the device makes itself (a DMA on a discrete GPU) instead of a
// host memcpy into a staging buffer and a copy from there. Optional, like DeviceExperts:
// a backend without it (the CPU), or one that declines the region, uploads as before.
#pragma once

#include <cstdint>
#include <string>

#include "backends/backend.h"

namespace mst {

class HostMemoryImport {
public:
    virtual ~HostMemoryImport() = default;
    // Import [ptr, ptr + bytes); the memory must stay allocated until release_host_memory(ptr)
    // or the backend's end. False, with `why`, when the device cannot or need not (no
    // extension, unified memory, the user turned it off): uploads from it then copy as before.
    virtual bool import_host_memory(const void *ptr, uint64_t bytes, std::string &why) = 0;
    // Forget an import, outside a batch; false when ptr imported nothing.
    virtual bool release_host_memory(const void *ptr) = 0;
    // A count that grows each time the device has finished every copy recorded before the
    // count was read (thread-safe). Imported memory that was last read by recorded work
    // when the count was e may be written again once the count is above e: the host keeps
    // a freed slot aside until then, so that a pending copy never reads its next contents.
    virtual uint64_t device_reads_epoch() const = 0;
};

// The backend's host memory import, or nullptr when it has none (a capability query,
// DESIGN.md conventions 5).
HostMemoryImport *host_memory_import(Backend &backend);

}  // namespace mst
