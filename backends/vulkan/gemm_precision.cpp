#include "backends/vulkan/gemm_precision.h"

namespace mst {

const char *coop_precision_name(CoopPrecision p) {
    switch (p) {
        case CoopPrecision::split: return "split";
        case CoopPrecision::exact: return "exact";
        case CoopPrecision::f16: return "f16";
    }
    return "?";
}

uint32_t coop_precision_constant(CoopPrecision p) {
    switch (p) {
        case CoopPrecision::f16: return 0;
        case CoopPrecision::split: return 1;
        case CoopPrecision::exact: return 2;
    }
    return 1;
}

bool parse_coop_precision(std::string_view text, CoopPrecision &out, std::string &why) {
    if (text == "split") out = CoopPrecision::split;
    else if (text == "exact") out = CoopPrecision::exact;
    else if (text == "f16") out = CoopPrecision::f16;
    else {
        why = "'" + std::string(text) +
              "': expected split (activations staged as two f16 but for q4 weights, the default), exact (q4 "
              "too, activations and weights) or f16 (one f16, faster, less exact)";
        return false;
    }
    return true;
}

}  // namespace mst
