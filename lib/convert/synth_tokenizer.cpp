#include "convert/synth_tokenizer.h"

#include <filesystem>
#include <map>
#include <set>
#include <string_view>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/file_io.h"
#include "tokenizer/byte_level.h"
#include "tokenizer/tokenizer.h"

namespace mst {
namespace {

// The largest tokenizer.json / tokenizer_config.json read: real ones are a few to tens of MB.
constexpr size_t kMaxTokenizerBytes = size_t(256) << 20;

// The n-th made-up word: one to three consonant-vowel syllables, so words stay short
// and 100 + 100^2 + 100^3 of them cover any vocabulary.
std::string filler_word(uint64_t n) {
    static const char kConsonants[] = "bdfghjklmnprstvwxyzc";
    static const char kVowels[] = "aeiou";
    uint64_t syllables = 1, count = 100;
    while (n >= count) {
        n -= count;
        ++syllables;
        count *= 100;
    }
    std::string word;
    for (uint64_t i = 0; i < syllables; ++i) {
        const uint64_t s = n % 100;
        n /= 100;
        word += kConsonants[s / 5];
        word += kVowels[s % 5];
    }
    return word;
}

std::string utf8(char32_t c) {
    std::string s;
    if (c < 0x80) {
        s += char(c);
    } else {
        s += char(0xc0 | (c >> 6));
        s += char(0x80 | (c & 0x3f));
    }
    return s;
}

}  // namespace

SynthTokenizer make_synth_tokenizer(const ModelConfig &config) {
    const int64_t vocab = config.vocab_size;
    std::map<int64_t, std::string> special;  // id -> content
    auto add_special = [&](int64_t id, const std::string &name) {
        if (id < 0 || id >= vocab)
            fail(MST_ERR_INVALID_ARGUMENT, "config.json: {} {} is outside the vocabulary (vocab_size {})", name, id,
                 vocab);
        special.emplace(id, "<|" + name + "|>");
    };
    for (size_t i = 0; i < config.eos_token_ids.size(); ++i)
        add_special(config.eos_token_ids[i], i == 0 ? "eos" : "eos_" + std::to_string(i));
    if (config.bos_token_id) add_special(*config.bos_token_id, "bos");
    for (const nlohmann::json *scope : {&config.raw, &config.outer_raw})
        if (const auto it = scope->find("pad_token_id"); it != scope->end() && it->is_number_integer())
            add_special(it->get<int64_t>(), "pad");
    if (vocab < 256 + int64_t(special.size()))
        fail(MST_ERR_INVALID_ARGUMENT,
             "config.json: vocab_size {} cannot hold the 256 byte tokens and {} special tokens", vocab,
             special.size());

    // A std::map-backed object: ordered_json's lookups are linear, which made a
    // 150k-token vocabulary take a minute.
    nlohmann::json vocab_json = nlohmann::json::object();
    int64_t id = 0;
    const auto next_free = [&] {
        while (special.count(id)) ++id;
        return id++;
    };
    for (int b = 0; b < 256; ++b) vocab_json[utf8(byte_level::char_for_byte(static_cast<unsigned char>(b)))] = next_free();
    const std::string space = utf8(byte_level::char_for_byte(' '));
    for (uint64_t n = 0; id < vocab; ++n) {
        const int64_t next = next_free();
        if (next >= vocab) break;
        vocab_json[space + filler_word(n)] = next;
    }
    nlohmann::ordered_json added = nlohmann::ordered_json::array();
    for (const auto &[sid, content] : special) {
        vocab_json[content] = sid;
        added.push_back({{"id", sid}, {"content", content}, {"single_word", false}, {"lstrip", false},
                         {"rstrip", false}, {"normalized", false}, {"special", true}});
    }
    const nlohmann::ordered_json byte_level = {
        {"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", false}, {"use_regex", true}};
    nlohmann::ordered_json tokenizer = {
        {"version", "1.0"},
        {"truncation", nullptr},
        {"padding", nullptr},
        {"added_tokens", added},
        {"normalizer", nullptr},
        {"pre_tokenizer", byte_level},
        {"post_processor", nullptr},
        {"decoder", byte_level},
        {"model",
         {{"type", "BPE"}, {"dropout", nullptr}, {"unk_token", nullptr}, {"continuing_subword_prefix", nullptr},
          {"end_of_word_suffix", nullptr}, {"fuse_unk", false}, {"byte_fallback", false}, {"ignore_merges", false},
          {"vocab", vocab_json}, {"merges", nlohmann::json::array()}}}};

    nlohmann::ordered_json tok_config = {{"tokenizer_class", "PreTrainedTokenizerFast"},
                                         {"add_bos_token", false},
                                         {"clean_up_tokenization_spaces", false}};
    if (!config.eos_token_ids.empty()) tok_config["eos_token"] = special.at(config.eos_token_ids.front());
    if (config.bos_token_id) tok_config["bos_token"] = special.at(*config.bos_token_id);
    return {tokenizer.dump(), tok_config.dump(2), vocab};
}

SynthTokenizer read_source_tokenizer(const std::string &path) {
    namespace fs = std::filesystem;
    std::error_code ec;
    const fs::path json_path = fs::is_directory(path, ec) ? fs::path(path) / "tokenizer.json" : fs::path(path);
    if (!fs::is_regular_file(json_path, ec))
        fail(MST_ERR_IO, "--tokenizer-from: no tokenizer.json at '{}'", json_path.string());
    SynthTokenizer out;
    out.tokenizer_json = read_text_file(json_path.string(), kMaxTokenizerBytes);
    const fs::path config_path = json_path.parent_path() / "tokenizer_config.json";
    out.tokenizer_config_json = fs::is_regular_file(config_path, ec)
                                    ? read_text_file(config_path.string(), kMaxTokenizerBytes)
                                    : std::string(R"({"tokenizer_class": "PreTrainedTokenizerFast"})");
    // Parsed as the loader will parse it, so a tokenizer it refuses fails here, before any
    // weights are written.
    out.vocab_size = Tokenizer::from_strings(out.tokenizer_json, out.tokenizer_config_json, json_path.string())
                         ->vocab_size();
    return out;
}

void check_special_ids(const ModelConfig &config, const SynthTokenizer &tokenizer, const std::string &origin) {
    auto check = [&](int64_t id, std::string_view name) {
        if (id < 0 || id >= tokenizer.vocab_size)
            fail(MST_ERR_INVALID_ARGUMENT, "config.json: {} {} is not a token of {} (ids 0..{})", name, id, origin,
                 tokenizer.vocab_size - 1);
    };
    for (const int64_t id : config.eos_token_ids) check(id, "eos_token_id");
    if (config.bos_token_id) check(*config.bos_token_id, "bos_token_id");
    for (const nlohmann::json *scope : {&config.raw, &config.outer_raw})
        if (const auto it = scope->find("pad_token_id"); it != scope->end() && it->is_number_integer())
            check(it->get<int64_t>(), "pad_token_id");
}

}  // namespace mst
