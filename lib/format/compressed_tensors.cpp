#include "format/compressed_tensors.h"

#include <cstring>

#include "core/error.h"
#include "core/packed_int.h"

namespace mst {
namespace {

using nlohmann::json;

const json *quantization_config(const ModelConfig &config) {
    for (const json *object : {&config.raw, &config.outer_raw}) {
        if (!object->is_object()) continue;
        const auto it = object->find("quantization_config");
        if (it != object->end() && !it->is_null()) return &*it;
    }
    return nullptr;
}

// The value at key, nullptr when absent or null.
const json *field(const json &object, const char *key) {
    const auto it = object.find(key);
    return it == object.end() || it->is_null() ? nullptr : &*it;
}

std::string string_field(const json &object, const char *key, const std::string &where) {
    const json *v = field(object, key);
    if (v == nullptr) return "";
    if (!v->is_string()) fail(MST_ERR_BAD_FORMAT, "{}.{} must be a string, not {}", where, key, v->dump());
    return v->get<std::string>();
}

// The weights' scheme of one config group, refused unless moestream computes on it.
PackedIntScheme parse_weights(const json &group, const std::string &where) {
    for (const char *key : {"input_activations", "output_activations"})
        if (const json *v = field(group, key))
            fail(MST_ERR_UNSUPPORTED, "compressed-tensors scheme {}: {} quantization ({}) is not supported (weight-only "
                 "schemes only)", where, key, v->dump());
    const json *w = field(group, "weights");
    if (w == nullptr || !w->is_object())
        fail(MST_ERR_BAD_FORMAT, "compressed-tensors scheme {} has no 'weights' object", where);
    const std::string at = where + ".weights";
    const std::string type = string_field(*w, "type", at);
    if (type != "int")
        fail(MST_ERR_UNSUPPORTED, "compressed-tensors scheme {}: type '{}' is not supported (only int)", at, type);
    const json *bits = field(*w, "num_bits");
    if (bits == nullptr || !bits->is_number_integer() || (bits->get<int64_t>() != 4 && bits->get<int64_t>() != 8))
        fail(MST_ERR_UNSUPPORTED, "compressed-tensors scheme {}: num_bits {} is not supported (4 or 8)", at,
             bits ? bits->dump() : "(missing)");
    const json *symmetric = field(*w, "symmetric");
    if (symmetric == nullptr || !symmetric->is_boolean() || !symmetric->get<bool>())
        fail(MST_ERR_UNSUPPORTED, "compressed-tensors scheme {}: symmetric {} is not supported (only true: no zero "
             "point)", at, symmetric ? symmetric->dump() : "(missing)");
    if (const json *dynamic = field(*w, "dynamic"); dynamic != nullptr && *dynamic != json(false))
        fail(MST_ERR_UNSUPPORTED, "compressed-tensors scheme {}: dynamic {} is not supported", at, dynamic->dump());
    if (const json *actorder = field(*w, "actorder"); actorder != nullptr && *actorder != json(false))
        fail(MST_ERR_UNSUPPORTED, "compressed-tensors scheme {}: actorder {} is not supported", at, actorder->dump());
    PackedIntScheme scheme;
    scheme.bits = int(bits->get<int64_t>());
    const std::string strategy = string_field(*w, "strategy", at);
    if (strategy == "group") {
        const json *size = field(*w, "group_size");
        if (size == nullptr || !size->is_number_integer() || size->get<int64_t>() < 1 ||
            size->get<int64_t>() > (int64_t(1) << 24))
            fail(MST_ERR_BAD_FORMAT, "compressed-tensors scheme {}: strategy group needs a positive group_size, not {}",
                 at, size ? size->dump() : "(missing)");
        scheme.group_size = size->get<int64_t>();
    } else if (strategy != "channel") {
        fail(MST_ERR_UNSUPPORTED, "compressed-tensors scheme {}: strategy '{}' is not supported (group or channel)", at,
             strategy);
    }
    return scheme;
}

std::vector<std::string> string_list(const json &object, const char *key, const std::string &where) {
    std::vector<std::string> out;
    const json *v = field(object, key);
    if (v == nullptr) return out;
    if (!v->is_array()) fail(MST_ERR_BAD_FORMAT, "{}.{} must be a list of strings, not {}", where, key, v->dump());
    for (const json &item : *v) {
        if (!item.is_string())
            fail(MST_ERR_BAD_FORMAT, "{}.{} must be a list of strings, not {}", where, key, v->dump());
        out.push_back(item.get<std::string>());
    }
    return out;
}

}  // namespace

bool CompressedTensorsConfig::Pattern::matches(std::string_view module) const {
    if (regex) {
        // re.match: anchored at the start of the name, not at its end.
        return std::regex_search(module.begin(), module.end(), *regex, std::regex_constants::match_continuous);
    }
    return text == "Linear" || text == module;
}

std::optional<PackedIntScheme> CompressedTensorsConfig::scheme_for(std::string_view module) const {
    for (const Pattern &p : ignore_)
        if (p.matches(module)) return std::nullopt;
    for (const Group &g : groups_)
        for (const Pattern &p : g.targets)
            if (p.matches(module)) return g.scheme;
    return std::nullopt;
}

std::optional<CompressedTensorsConfig> compressed_tensors_config(const ModelConfig &config) {
    const json *q = quantization_config(config);
    if (q == nullptr || !q->is_object()) return std::nullopt;
    const std::string where = "quantization_config";
    if (string_field(*q, "quant_method", where) != "compressed-tensors") return std::nullopt;
    const std::string format = string_field(*q, "format", where);
    if (format != "pack-quantized")
        fail(MST_ERR_UNSUPPORTED, "compressed-tensors format '{}' is not supported (only pack-quantized)",
             format.empty() ? "(missing)" : format);
    const auto pattern = [&](const std::string &text, const std::string &list) {
        CompressedTensorsConfig::Pattern p{text, std::nullopt};
        if (text.starts_with("re:")) {
            try {
                p.regex.emplace(text.substr(3), std::regex::ECMAScript | std::regex::optimize);
            } catch (const std::regex_error &e) {
                fail(MST_ERR_BAD_FORMAT, "{}.{}: '{}' is not a valid regular expression: {}", where, list, text,
                     e.what());
            }
        }
        return p;
    };
    CompressedTensorsConfig out;
    for (const std::string &text : string_list(*q, "ignore", where)) out.ignore_.push_back(pattern(text, "ignore"));
    const json *groups = field(*q, "config_groups");
    if (groups == nullptr || !groups->is_object() || groups->empty())
        fail(MST_ERR_BAD_FORMAT, "{}.config_groups must be a non-empty object", where);
    for (const auto &[name, group] : groups->items()) {
        const std::string at = where + ".config_groups." + name;
        if (!group.is_object()) fail(MST_ERR_BAD_FORMAT, "{} must be an object", at);
        CompressedTensorsConfig::Group g;
        g.scheme = parse_weights(group, at);
        for (const std::string &text : string_list(group, "targets", at)) g.targets.push_back(pattern(text, "targets"));
        out.groups_.push_back(std::move(g));
    }
    return out;
}

PackedIntTensors require_packed_int(const Checkpoint &ck, const std::string &module, int64_t rows, int64_t cols,
                                    const PackedIntScheme &scheme) {
    const int64_t group = scheme.group_for(cols);
    if (cols % group != 0)
        fail(MST_ERR_BAD_FORMAT, "'{}': group size {} does not divide the {} inputs of a row", module, group, cols);
    const int64_t words = packed_int_row_words(cols, scheme.bits);
    PackedIntTensors t;
    t.packed = &ck.require(module + ".weight_packed", {rows, words});
    if (t.packed->dtype != DType::I32)
        fail(MST_ERR_BAD_FORMAT, "tensor '{}' has dtype {}; pack-quantized weights are I32", t.packed->name,
             dtype_name(t.packed->dtype));
    t.scale = &ck.require(module + ".weight_scale", {rows, cols / group});
    if (t.scale->dtype != DType::BF16)
        fail(MST_ERR_UNSUPPORTED, "tensor '{}' has dtype {}; moestream computes on BF16 scales only", t.scale->name,
             dtype_name(t.scale->dtype));
    const TensorInfo &shape = ck.require(module + ".weight_shape");
    const bool int_type = shape.dtype == DType::I64 || shape.dtype == DType::I32;
    if (!int_type || shape.shape != std::vector<int64_t>{2})
        fail(MST_ERR_BAD_FORMAT, "tensor '{}' is {} {}; expected I64 or I32 [2]", shape.name, dtype_name(shape.dtype),
             shape_to_string(shape.shape));
    uint8_t bytes[16] = {};
    ck.read(shape, bytes);
    int64_t dims[2];
    for (int i = 0; i < 2; ++i) {
        if (shape.dtype == DType::I64) {
            std::memcpy(&dims[i], bytes + 8 * i, 8);
        } else {
            int32_t d;
            std::memcpy(&d, bytes + 4 * i, 4);
            dims[i] = d;
        }
    }
    if (dims[0] != rows || dims[1] != cols)
        fail(MST_ERR_BAD_FORMAT, "tensor '{}' says the weight is [{}, {}]; the model needs [{}, {}]", shape.name,
             dims[0], dims[1], rows, cols);
    return t;
}

}  // namespace mst
