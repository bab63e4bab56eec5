// Qwen3-MoE (Qwen3-30B-A3B, Qwen3-235B-A22B): GQA with per-head q/k RMSNorm and RoPE,
// softmax top-k routing with optional renormalisation, SwiGLU experts; layers listed in
// mlp_only_layers (or off the decoder_sparse_step grid) use a dense MLP.
#pragma once

#include "model/moe_decoder.h"

namespace mst {

class Qwen3Moe final : public MoeDecoder {
public:
    explicit Qwen3Moe(const ModelBuildContext &ctx);
};

}  // namespace mst
