#include "backends/device_routing.h"

#include "core/error.h"

namespace mst {

void check_softmax_topk_params(const float *logits, int64_t n_tokens, int32_t n_experts, int32_t k,
                               const int32_t *ids, const float *weights) {
    if (n_tokens < 0 || n_experts < 1)
        fail(MST_ERR_INVALID_ARGUMENT, "softmax_topk: {} tokens of {} experts", n_tokens, n_experts);
    if (k < 1 || k > n_experts)
        fail(MST_ERR_INVALID_ARGUMENT, "softmax_topk: k = {} is outside 1..{}", k, n_experts);
    if (n_tokens > 0 && (!logits || !ids || !weights))
        fail(MST_ERR_INVALID_ARGUMENT, "softmax_topk: null logits, ids or weights");
}

DeviceRouting *device_routing(Backend &backend) { return dynamic_cast<DeviceRouting *>(&backend); }

}  // namespace mst
