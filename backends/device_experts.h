// Routed experts chosen on the device (issue 17, docs/device_graph.md "One submission per
// resident decode step"). A device backend that implements DeviceExperts keeps every
// expert of a layer on the device, stacked per part, with a table of each expert's slot,
// and runs one token's routed SwiGLU experts from ids and weights that are results of its
// batch (DeviceRouting::softmax_topk): the host never reads the ids, so a resident decode
// step needs no wait between its layers. Optional, like DeviceRouting: a backend without
// it, or one that declines a layer, keeps the host path (sync, expert lookup,
// routed_swiglu).
#pragma once

#include <cstdint>

#include "backends/backend.h"

namespace mst {

// Every expert of one layer: n_experts views of each part (gate, up: [I][H]; down: [H][I]),
// with expert_key set as make_expert_key(layer, e, part). An expert whose gate view has no
// data is not provided: its table entry stays -1. model_expert_bytes: the bytes of every
// expert of every layer of the model, when the caller knows them: a backend then takes
// the layer only if its budget holds them all (resident decode), so that a streamed
// model's budget is not spent on the first layers' stacks; 0: judged by this layer alone.
struct SwigluExpertSet {
    int64_t layer = 0;
    int32_t n_experts = 0;
    const WeightView *gate = nullptr, *up = nullptr, *down = nullptr;
    uint64_t model_expert_bytes = 0;
};

class DeviceExperts {
public:
    virtual ~DeviceExperts() = default;
    // Put the provided experts of `set` on the device (those not there yet are uploaded;
    // the views are read now, not kept). False, with nothing changed, when the backend will
    // not run this layer by id: the expert budget cannot hold the layer, a part's type or
    // shape is not one its id kernels take, or the user turned it off; the caller then
    // keeps the host path for the layer.
    virtual bool make_experts_resident(const SwigluExpertSet &set) = 0;
    // Whether every one of the layer's n_experts experts is on the device (made resident,
    // none left out): a step may then run the layer by id.
    virtual bool experts_resident(int64_t layer, int32_t n_experts) = 0;
    // One token: out[c] += sum over j < k, in ascending expert id, of
    // weights[j] * down_e(silu(gate_e h) * up_e h), e = ids[j]. ids and weights may be pending
    // results of the batch; h: [hidden]; out: [hidden]. The layer must have been made
    // resident. A chosen expert that is not on the device makes the end of the batch (or
    // its next sync) throw MST_ERR_BACKEND naming the layer and expert: the step's results
    // are not to be used.
    virtual void routed_swiglu_by_id(int64_t layer, const float *h, float *out, int64_t hidden, const int32_t *ids,
                                     const float *weights, int32_t k) = 0;
    // routed_swiglu_by_id's result added into the residual stream x: x[c] = x[c] + s[c],
    // s[c] the sum over j < k in ascending expert id of weights[j] * down_e(silu(gate_e h) *
    // up_e h) starting from 0 (bitwise routed_swiglu_by_id into a zeroed out, then
    // Backend::add(x, out)), in fewer device commands. False, with nothing recorded, where
    // the backend does not fuse the add (the default): the caller then records those two.
    virtual bool routed_swiglu_by_id_add(int64_t layer, const float *h, float *x, int64_t hidden,
                                         const int32_t *ids, const float *weights, int32_t k) {
        (void)layer, (void)h, (void)x, (void)hidden, (void)ids, (void)weights, (void)k;
        return false;
    }
    // Whether routed_swiglu_batch_by_id takes n_tokens tokens of `layer`: every one of its
    // n_experts experts on the device and the backend's batched kernels for them available
    // (and not turned off). False: the caller reads the ids and takes the host path.
    virtual bool batch_by_id(int64_t layer, int32_t n_experts, int64_t n_tokens) = 0;
    // A batch of n_tokens tokens (a prefill): out[t] = sum over j < k, in ascending expert
    // id, of weights[t k + j] * down_e(silu(gate_e h[t]) * up_e h[t]), e = ids[t k + j]; out
    // ([n_tokens][hidden]) is overwritten, not added to. ids and weights may be pending
    // results of the batch: the tokens are grouped by expert on the device and the host
    // never reads them. Only where batch_by_id said yes; misses as routed_swiglu_by_id.
    virtual void routed_swiglu_batch_by_id(int64_t layer, const float *h, float *out, int64_t n_tokens,
                                           int64_t hidden, const int32_t *ids, const float *weights, int32_t k) = 0;
};

// The backend's device expert selection, or nullptr when it has none (a capability query,
// DESIGN.md conventions 5).
DeviceExperts *device_experts(Backend &backend);

}  // namespace mst
