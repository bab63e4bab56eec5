// Mixtral (Mixtral-8x7B, 8x22B): GQA with RoPE and no q/k norm, an optional sliding
// window on every layer, softmax top-k routing renormalised over the kept experts, and
// SwiGLU experts named w1 (gate), w3 (up), w2 (down).
#pragma once

#include "model/moe_decoder.h"

namespace mst {

class Mixtral final : public MoeDecoder {
public:
    explicit Mixtral(const ModelBuildContext &ctx);
};

}  // namespace mst
