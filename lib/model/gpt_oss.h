// gpt-oss (gpt-oss-20b, gpt-oss-120b): GQA with q/k/v/o biases and per-head attention
// sinks, sliding-window and full-attention layers as layer_types says, YaRN RoPE; a router
// with a bias whose top-k logits are softmaxed; experts with a fused, interleaved gate/up
// projection and the clamped SwiGLU, stored as float or MXFP4 (gpt_oss_experts.h).
#pragma once

#include "model/moe_decoder.h"

namespace mst {

class GptOss final : public MoeDecoder {
public:
    explicit GptOss(const ModelBuildContext &ctx);
};

}  // namespace mst
