#include "model/model_registry.h"

#include <fmt/ranges.h>

#include "core/error.h"
#include "model/gpt_oss.h"
#include "model/mixtral.h"
#include "model/qwen3_moe.h"

namespace mst {

std::vector<std::string> supported_model_types() { return {"qwen3_moe", "mixtral", "gpt_oss"}; }

std::unique_ptr<Model> build_model(const ModelBuildContext &ctx) {
    const std::string &type = ctx.config.model_type;
    if (type == "qwen3_moe") return std::make_unique<Qwen3Moe>(ctx);
    if (type == "mixtral") return std::make_unique<Mixtral>(ctx);
    if (type == "gpt_oss") return std::make_unique<GptOss>(ctx);
    fail(MST_ERR_UNSUPPORTED, "model_type '{}' is not supported; supported: {}", type,
         fmt::join(supported_model_types(), ", "));
}

}  // namespace mst
