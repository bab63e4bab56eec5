#include "convert/synth_config.h"

#include <nlohmann/json.hpp>

#include "core/error.h"

namespace mst {

SynthConfig prepare_synth_config(const std::string &config_text, const std::string &origin, int64_t layers,
                                 uint64_t seed, int64_t min_vocab) {
    SynthConfig out;
    // Every required field is checked, and named, by the loader's own parser first.
    const ModelConfig source = parse_model_config(config_text, origin);
    out.source_layers = source.n_layers;
    out.source_vocab = source.vocab_size;
    // The loader reads a config without routed experts as a dense model; a synthesized
    // model is for measuring expert streaming, so that is a missing field here.
    if (source.n_experts <= 0)
        fail(MST_ERR_BAD_FORMAT, "{}: no routed experts: num_experts (or num_local_experts, n_routed_experts) is "
             "missing or 0", origin);
    if (layers < 0 || layers > source.n_layers)
        fail(MST_ERR_INVALID_ARGUMENT, "{}: --layers {} is outside 1..{} (num_hidden_layers)", origin, layers,
             source.n_layers);
    if (layers == 0) layers = source.n_layers;

    nlohmann::json root = nlohmann::json::parse(config_text);
    const bool nested = root.contains("text_config") && root["text_config"].is_object();
    nlohmann::json &text = nested ? root["text_config"] : root;
    text["num_hidden_layers"] = layers;
    if (min_vocab > source.vocab_size) text["vocab_size"] = min_vocab;
    for (auto &[key, value] : text.items()) {
        if (key == "mlp_only_layers" && value.is_array()) {
            nlohmann::json kept = nlohmann::json::array();
            for (const auto &index : value)
                if (!index.is_number_integer() || index.get<int64_t>() < layers) kept.push_back(index);
            value = std::move(kept);
        } else if (value.is_array() && int64_t(value.size()) == source.n_layers && key != "architectures") {
            value.erase(value.begin() + layers, value.end());
        }
    }
    nlohmann::json removed = nlohmann::json::array();
    for (nlohmann::json *scope : {&root, &text}) {
        // MXFP4's stays: gpt-oss experts are synthesized in MXFP4, so it still says what
        // the file holds. FP8 and INT4 weights are written as BF16 / Q8 / Q4 instead.
        const auto q = scope->find("quantization_config");
        if (q != scope->end() && q->is_object() && q->value("quant_method", "") == "mxfp4") continue;
        if (scope->contains("quantization_config")) {
            if (q->is_object()) out.removed_quantization = q->value("quant_method", "(unnamed)");
            scope->erase("quantization_config");
            removed.push_back(scope == &root ? "quantization_config" : "text_config.quantization_config");
        }
    }
    root["moestream_synthetic"] = {{"source_num_hidden_layers", source.n_layers},
                                   {"num_hidden_layers", layers},
                                   {"seed", seed},
                                   {"removed", removed},
                                   {"weights", "random: moestream synth, not a trained model"}};
    if (min_vocab > source.vocab_size) root["moestream_synthetic"]["source_vocab_size"] = source.vocab_size;
    out.json_text = root.dump(2);
    out.config = parse_model_config(out.json_text, origin + " (as synthesized)");
    return out;
}

}  // namespace mst
