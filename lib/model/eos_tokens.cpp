#include "model/eos_tokens.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <filesystem>
#include <optional>
#include <string>
#include <system_error>

#include "core/error.h"
#include "core/file_io.h"
#include "format/packed_format.h"

namespace mst {
namespace {

constexpr const char *kGenerationConfig = "generation_config.json";
constexpr size_t kMaxGenerationConfigBytes = size_t(1) << 20;

// generation_config.json's text and a name for messages, or nullopt when there is none.
std::optional<std::pair<std::string, std::string>> generation_config(const Checkpoint &checkpoint) {
    if (const PackedContents *packed = checkpoint.packed()) {
        const std::string *text = packed->find_metadata(kGenerationConfig);
        if (!text) return std::nullopt;
        return std::pair{*text, checkpoint.dir() + ": " + kGenerationConfig};
    }
    const std::filesystem::path path = std::filesystem::path(checkpoint.dir()) / kGenerationConfig;
    std::error_code ec;
    if (!std::filesystem::exists(path, ec)) return std::nullopt;
    return std::pair{read_text_file(path.string(), kMaxGenerationConfigBytes), path.string()};
}

std::vector<int64_t> generation_eos_ids(const std::string &text, const std::string &origin) {
    const nlohmann::json root = nlohmann::json::parse(text, nullptr, false);
    if (root.is_discarded() || !root.is_object()) fail(MST_ERR_BAD_FORMAT, "{}: not a JSON object", origin);
    const auto it = root.find("eos_token_id");
    if (it == root.end() || it->is_null()) return {};
    const auto bad = [&] {
        fail(MST_ERR_BAD_FORMAT, "{}: eos_token_id must be a token id or a list of token ids, got {}", origin,
             it->dump());
    };
    std::vector<int64_t> ids;
    if (it->is_number_integer()) ids.push_back(it->get<int64_t>());
    else if (it->is_array())
        for (const nlohmann::json &v : *it) {
            if (!v.is_number_integer()) bad();
            ids.push_back(v.get<int64_t>());
        }
    else
        bad();
    return ids;
}

}  // namespace

std::vector<int32_t> collect_eos_ids(const Checkpoint &checkpoint, const ModelConfig &config,
                                     const Tokenizer &tokenizer) {
    std::vector<int32_t> out;
    const auto add = [&](int64_t id, const std::string &origin) {
        if (id < 0 || id >= config.vocab_size)
            fail(MST_ERR_BAD_FORMAT, "{}: eos_token_id {} is outside the vocabulary (0..{})", origin, id,
                 config.vocab_size - 1);
        out.push_back(int32_t(id));
    };
    if (tokenizer.eos_id() >= 0) add(tokenizer.eos_id(), "tokenizer_config.json");
    for (int64_t id : config.eos_token_ids) add(id, "config.json");
    if (const auto gen = generation_config(checkpoint))
        for (int64_t id : generation_eos_ids(gen->first, gen->second)) add(id, gen->second);
    std::sort(out.begin(), out.end());
    out.erase(std::unique(out.begin(), out.end()), out.end());
    return out;
}

}  // namespace mst
