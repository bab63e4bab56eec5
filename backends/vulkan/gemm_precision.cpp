#include "backends/vulkan/gemm_precision.h"

namespace mst {

const char *coop_precision_name(CoopPrecision p) { return p == CoopPrecision::split ? "split" : "f16"; }

bool parse_coop_precision(std::string_view text, CoopPrecision &out, std::string &why) {
    if (text == "split") out = CoopPrecision::split;
    else if (text == "f16") out = CoopPrecision::f16;
    else {
        why = "'" + std::string(text) +
              "': expected split (activations staged as two f16, the default) or f16 (one f16, faster, less exact)";
        return false;
    }
    return true;
}

}  // namespace mst
