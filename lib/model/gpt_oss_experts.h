// gpt-oss's routed experts: a fused gate/up projection with interleaved output columns
// (gate_i, up_i at 2i, 2i + 1) and a bias, the clamped SwiGLU, and a down projection with
// a bias. Two stored forms are read, each computed on as stored:
//   float (transformers' own save): gate_up_proj [E][H][2I] and down_proj [E][I][H], held
//     as x @ W (inputs along rows), computed with Backend::matmul_xw;
//   MXFP4 (the published checkpoints): gate_up_proj_blocks [E][2I][H/32][16] with
//     gate_up_proj_scales [E][2I][H/32], down_proj_blocks [E][H][I/32][16] with
//     down_proj_scales [E][H][I/32], held as W x (outputs along rows), computed with
//     Backend::matmul on MXFP4.
// Both keep gate_up_proj_bias [E][2I] and down_proj_bias [E][H] in a float type.
// A third form is how llama.cpp's GGUF stores them (per expert, as format/gguf_names.h
// names its views): gate_proj and up_proj [I][H] de-interleaved, each with its bias [I],
// and down_proj [H][I] with its bias [H], held as W x in a float type or Q8, computed
// with Backend::matmul.
#pragma once

#include <vector>

#include "experts/expert_layout.h"
#include "format/checkpoint.h"
#include "model/ffn.h"

namespace mst {

enum class GptOssExpertFormat { Float, Mxfp4, SplitGateUp };

struct GptOssExperts {
    GptOssExpertFormat format = GptOssExpertFormat::Float;
    std::vector<ExpertLayout> layouts;  // one per expert, parts in the format's order
};

// Finds one layer's experts under `prefix` ("model.layers.N.mlp.experts"): MXFP4 when
// <prefix>.gate_up_proj_blocks exists, split when <prefix>.0.gate_proj.weight does, float
// otherwise. Throws BAD_FORMAT naming the first
// missing or misshapen tensor (or a size MXFP4 cannot hold), UNSUPPORTED for a weight
// dtype the kernels lack.
GptOssExperts locate_gpt_oss_experts(const Checkpoint &checkpoint, const std::string &prefix, int64_t n_experts,
                                     int64_t hidden, int64_t intermediate);

// Checks one layer's layouts, from the checkpoint or a packed file: n_experts experts of
// the float form's 4, or the MXFP4 or split form's 6 parts (told apart by the first part's
// dtype) with the shapes and dtypes above, and
// returns the form. Throws BAD_FORMAT naming `where`, the layer, expert and part.
GptOssExpertFormat check_gpt_oss_experts(const std::vector<ExpertLayout> &layouts, int64_t n_experts, int64_t hidden,
                                         int64_t intermediate, const std::string &where, int64_t layer);

// The expert function for `format`, with the SwiGLU's alpha and clamp limit.
ExpertFn gpt_oss_expert_fn(GptOssExpertFormat format, float alpha, float limit);

}  // namespace mst
