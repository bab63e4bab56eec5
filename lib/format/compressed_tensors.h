// A config's compressed-tensors quantization (quant_method "compressed-tensors", the
// format llm-compressor writes and Kimi K2.5 ships its experts in), and the tensors of one
// quantized Linear. Supported: format "pack-quantized", weight-only, static, symmetric
// integers of 4 or 8 bits with strategy "group" (group_size inputs per scale) or "channel"
// (one scale per output row). The packing is in core/packed_int.h.
//
// Which Linear a scheme applies to (config_groups.*.targets) and which stay unquantized
// (`ignore`), as compressed-tensors matches them: an entry "re:<regex>" matches a module
// whose name the regex matches from its start (Python's re.match, e.g. "re:.*self_attn.*");
// "Linear" (a class name) matches every Linear; any other entry matches the module of that
// exact name. Module names are the text model's, without a multimodal wrapper's prefix
// ("model.layers.1.mlp.experts.0.gate_proj", "lm_head").
#pragma once

#include <cstdint>
#include <optional>
#include <regex>
#include <string>
#include <string_view>
#include <vector>

#include "format/checkpoint.h"
#include "format/model_config.h"

namespace mst {

struct PackedIntScheme {
    int bits = 4;
    int64_t group_size = 0;  // 0: strategy "channel", one scale per row
    bool operator==(const PackedIntScheme &) const = default;
    // The inputs sharing a scale in a row of `cols`.
    int64_t group_for(int64_t cols) const { return group_size > 0 ? group_size : cols; }
};

class CompressedTensorsConfig {
public:
    // The scheme of the Linear module `module`, or nullopt when no group targets it or the
    // ignore list names it.
    std::optional<PackedIntScheme> scheme_for(std::string_view module) const;

private:
    friend std::optional<CompressedTensorsConfig> compressed_tensors_config(const ModelConfig &config);
    struct Pattern {
        std::string text;
        std::optional<std::regex> regex;  // for "re:" entries
        bool matches(std::string_view module) const;
    };
    struct Group {
        std::vector<Pattern> targets;
        PackedIntScheme scheme;
    };
    std::vector<Group> groups_;
    std::vector<Pattern> ignore_;
};

// The compressed-tensors quantization of `config` (its quantization_config in the text
// config or at the top level), or nullopt when it has none of that method. Anything else
// is refused, naming the field and value: another `format` (MST_ERR_UNSUPPORTED), input or
// output activation quantization, dynamic or asymmetric weights, a type other than int,
// bits other than 4 or 8, a strategy other than group or channel (all UNSUPPORTED), a
// missing or non-positive group_size, an invalid regex (MST_ERR_BAD_FORMAT).
std::optional<CompressedTensorsConfig> compressed_tensors_config(const ModelConfig &config);

// The stored tensors of one quantized Linear.
struct PackedIntTensors {
    const TensorInfo *packed = nullptr;  // <module>.weight_packed, I32 [rows][words]
    const TensorInfo *scale = nullptr;   // <module>.weight_scale, BF16 [rows][cols / group]
};

// Finds and checks `<module>.weight_packed`, `.weight_scale` and `.weight_shape` for a
// [rows][cols] weight under `scheme`. MST_ERR_BAD_FORMAT naming the tensor when one is
// missing, has the wrong dtype or shape, when weight_shape does not hold [rows, cols], or
// when the group size does not divide cols; MST_ERR_UNSUPPORTED for scales not in bf16.
PackedIntTensors require_packed_int(const Checkpoint &checkpoint, const std::string &module, int64_t rows,
                                    int64_t cols, const PackedIntScheme &scheme);

}  // namespace mst
