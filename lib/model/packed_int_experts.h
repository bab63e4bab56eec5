// Routed SwiGLU experts stored as compressed-tensors pack-quantized integers (Kimi K2.5's
// INT4 experts; format/compressed_tensors.h, core/packed_int.h). The expert cache keeps
// them as stored, so an INT4 expert costs 4.5 bits a weight on disk, on the read path and
// in memory, and the backends compute on it directly (Backend::matmul on PACKED_I4).
//
// Layout parts, in order: gate, up, down, each as two parts: its words (I32
// [rows][packed_int_row_words(cols)]) and its scales (BF16 [rows][cols / group]). Neither
// is quantizable: `convert` keeps them as they are. weight_shape is checked at load time
// and not stored with the expert.
#pragma once

#include <string>
#include <vector>

#include "experts/expert_layout.h"
#include "format/checkpoint.h"
#include "format/compressed_tensors.h"
#include "model/ffn.h"

namespace mst {

// One layer's experts under `prefix` ("language_model.model.layers.N.mlp.experts"), each
// projection <prefix>.<e>.<proj>.weight_packed / weight_scale / weight_shape. Throws as
// require_packed_int, naming the first missing or misshapen tensor.
std::vector<ExpertLayout> locate_packed_int_experts(const Checkpoint &checkpoint, const std::string &prefix,
                                                    int64_t n_experts, int64_t hidden, int64_t intermediate,
                                                    const PackedIntScheme &scheme);

// Whether layouts (from a checkpoint or a packed file) hold packed integers: their first
// part is I32.
bool layouts_are_packed_int(const std::vector<ExpertLayout> &layouts);

// Checks layouts from wherever they came: n_experts experts of six parts with the shapes
// and dtypes above for `scheme`. Throws BAD_FORMAT naming `where`, the layer, expert and part.
void check_packed_int_experts(const std::vector<ExpertLayout> &layouts, int64_t n_experts, int64_t hidden,
                              int64_t intermediate, const PackedIntScheme &scheme, const std::string &where,
                              int64_t layer);

// The ExpertFn computing such experts.
ExpertFn packed_int_swiglu_expert(const PackedIntScheme &scheme, int64_t hidden, int64_t intermediate);

}  // namespace mst
