#include "backends/device_experts.h"

namespace mst {

DeviceExperts *device_experts(Backend &backend) { return dynamic_cast<DeviceExperts *>(&backend); }

}  // namespace mst
