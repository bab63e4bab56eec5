#include "convert/convert_options.h"

#include "core/error.h"

namespace mst {
namespace {

constexpr struct {
    std::string_view name;
    DType type;
} kExpertTypes[] = {
    {"q8", DType::Q8},         {"q4", DType::Q4},         {"q6k", DType::GGML_Q6_K}, {"q5k", DType::GGML_Q5_K},
    {"q4k", DType::GGML_Q4_K}, {"q3k", DType::GGML_Q3_K}, {"q2k", DType::GGML_Q2_K},
};

}  // namespace

std::string convert_type_name(const std::optional<DType> &t) {
    if (!t) return "bf16";
    for (const auto &e : kExpertTypes)
        if (e.type == *t) return std::string(e.name);
    return std::string(dtype_name(*t));
}

std::optional<DType> parse_expert_type_name(std::string_view name, std::string_view what) {
    if (name == "bf16") return std::nullopt;
    for (const auto &e : kExpertTypes)
        if (e.name == name) return e.type;
    fail(MST_ERR_INVALID_ARGUMENT, "{} type '{}' is not one of q4, q8, q6k, q5k, q4k, q3k, q2k, bf16", what, name);
}

}  // namespace mst
