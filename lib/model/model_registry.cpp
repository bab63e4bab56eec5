#include "model/model_registry.h"

#include <fmt/ranges.h>

#include "core/error.h"
#include "model/deepseek_v3.h"
#include "model/gpt_oss.h"
#include "model/mixtral.h"
#include "model/qwen3_5_moe.h"
#include "model/qwen3_moe.h"

namespace mst {

std::vector<std::string> supported_model_types() {
    return {"qwen3_moe", "qwen3_5_moe", "qwen3_5_moe_text", "qwen3_next", "deepseek_v3", "kimi_k2", "kimi_k25",
            "mixtral", "gpt_oss"};
}

std::unique_ptr<Model> build_model(const ModelBuildContext &ctx) {
    const std::string &type = ctx.config.model_type;
    if (type == "qwen3_moe") return std::make_unique<Qwen3Moe>(ctx);
    if (type == "mixtral") return std::make_unique<Mixtral>(ctx);
    if (type == "gpt_oss") return std::make_unique<GptOss>(ctx);
    if (type == "qwen3_5_moe" || type == "qwen3_5_moe_text")
        return std::make_unique<Qwen35Moe>(ctx, Qwen35Moe::Flavor::Qwen3_5);
    if (type == "qwen3_next") return std::make_unique<Qwen35Moe>(ctx, Qwen35Moe::Flavor::Qwen3Next);
    // kimi_k25: Kimi K2.5's wrapper, when its text_config does not name its own type.
    if (type == "deepseek_v3" || type == "kimi_k2" || type == "kimi_k25") return std::make_unique<DeepseekV3>(ctx);
    fail(MST_ERR_UNSUPPORTED, "model_type '{}' is not supported; supported: {}", type,
         fmt::join(supported_model_types(), ", "));
}

}  // namespace mst
