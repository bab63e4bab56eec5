#include "backends/host_memory_import.h"

namespace mst {

HostMemoryImport *host_memory_import(Backend &backend) { return dynamic_cast<HostMemoryImport *>(&backend); }

}  // namespace mst
