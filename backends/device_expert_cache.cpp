#include "backends/device_expert_cache.h"

namespace mst {

DeviceExpertCache *device_expert_cache(Backend &backend) { return dynamic_cast<DeviceExpertCache *>(&backend); }

}  // namespace mst
