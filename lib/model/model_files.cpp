#include "model/model_files.h"

#include <filesystem>
#include <system_error>

#include "core/error.h"
#include "format/packed_format.h"
#include "model/gguf_model_files.h"

namespace mst {
namespace {

namespace fs = std::filesystem;

const std::string &require_metadata(const PackedContents &packed, const Checkpoint &checkpoint, const char *key) {
    const std::string *value = packed.find_metadata(key);
    if (!value) fail(MST_ERR_BAD_FORMAT, "{}: the packed file has no '{}' entry", checkpoint.dir(), key);
    return *value;
}

}  // namespace

ModelConfig read_model_config(const Checkpoint &checkpoint) {
    if (const GgufFile *gguf = checkpoint.gguf()) return read_gguf_model_config(*gguf);
    if (const PackedContents *packed = checkpoint.packed())
        return parse_model_config(require_metadata(*packed, checkpoint, packed::kConfigKey),
                                  checkpoint.dir() + ": " + packed::kConfigKey);
    return parse_model_config_file((fs::path(checkpoint.dir()) / "config.json").string());
}

std::unique_ptr<Tokenizer> read_model_tokenizer(const Checkpoint &checkpoint) {
    if (const GgufFile *gguf = checkpoint.gguf()) return read_gguf_tokenizer(*gguf);
    if (const PackedContents *packed = checkpoint.packed()) {
        const std::string *config = packed->find_metadata(packed::kTokenizerConfigKey);
        return Tokenizer::from_strings(require_metadata(*packed, checkpoint, packed::kTokenizerKey),
                                       config ? *config : std::string(),
                                       checkpoint.dir() + ": " + packed::kTokenizerKey);
    }
    // tokenizer.json, or tiktoken.model with tokenizer_config.json (Kimi K2).
    return Tokenizer::load_dir(checkpoint.dir());
}

}  // namespace mst
