// Hand-made tokenizer.json documents for the tokenizer tests: a byte-level BPE whose ids
// 0..255 are the 256 byte symbols, plus the merges a test asks for. The byte alphabet is
// computed here on its own, not taken from the library under test.
#pragma once

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace mst::test {

inline void append_utf8(std::string &out, char32_t cp) {
    if (cp < 0x80) {
        out += static_cast<char>(cp);
    } else if (cp < 0x800) {
        out += static_cast<char>(0xC0 | (cp >> 6));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        out += static_cast<char>(0xE0 | (cp >> 12));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
        out += static_cast<char>(0xF0 | (cp >> 18));
        out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    }
}

// The GPT-2 byte-level spelling of raw bytes.
inline std::string byte_spelling(std::string_view raw) {
    std::string out;
    for (char ch : raw) {
        const int b = static_cast<unsigned char>(ch);
        const bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
        if (printable) {
            append_utf8(out, static_cast<char32_t>(b));
            continue;
        }
        char32_t shifted = 256;
        for (int x = 0; x < b; ++x) {
            const bool p = (x >= 33 && x <= 126) || (x >= 161 && x <= 172) || (x >= 174 && x <= 255);
            if (!p) ++shifted;
        }
        append_utf8(out, shifted);
    }
    return out;
}

struct HandMade {
    nlohmann::json doc;

    // merges are raw text pairs; each one's result gets the next free id.
    explicit HandMade(std::initializer_list<std::pair<std::string, std::string>> merges = {}) {
        nlohmann::json vocab = nlohmann::json::object();
        for (int b = 0; b < 256; ++b) vocab[byte_spelling(std::string(1, static_cast<char>(b)))] = b;
        nlohmann::json merge_list = nlohmann::json::array();
        int next = 256;
        for (const auto &[a, b] : merges) {
            const std::string merged = byte_spelling(a + b);
            if (!vocab.contains(merged)) vocab[merged] = next++;
            merge_list.push_back({byte_spelling(a), byte_spelling(b)});
        }
        doc = {{"version", "1.0"},
               {"truncation", nullptr},
               {"padding", nullptr},
               {"added_tokens", nlohmann::json::array()},
               {"normalizer", nullptr},
               {"pre_tokenizer",
                {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true}, {"use_regex", true}}},
               {"post_processor", nullptr},
               {"decoder",
                {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"trim_offsets", true}, {"use_regex", true}}},
               {"model",
                {{"type", "BPE"},
                 {"dropout", nullptr},
                 {"unk_token", nullptr},
                 {"continuing_subword_prefix", nullptr},
                 {"end_of_word_suffix", nullptr},
                 {"fuse_unk", false},
                 {"byte_fallback", false},
                 {"ignore_merges", false},
                 {"vocab", vocab},
                 {"merges", merge_list}}}};
    }

    // The id of a token given as raw text.
    int32_t id(std::string_view raw) const { return doc["model"]["vocab"][byte_spelling(raw)].get<int32_t>(); }

    // Adds a vocabulary entry (raw text) that no merge produces.
    int32_t add_vocab(std::string_view raw) {
        const auto id = static_cast<int32_t>(doc["model"]["vocab"].size());
        doc["model"]["vocab"][byte_spelling(raw)] = id;
        return id;
    }

    int32_t add_token(const std::string &content, bool special, bool lstrip = false, bool rstrip = false,
                      bool single_word = false, bool normalized = false) {
        int32_t id = static_cast<int32_t>(doc["model"]["vocab"].size());
        for (const auto &t : doc["added_tokens"]) id = std::max(id, t["id"].get<int32_t>() + 1);
        doc["added_tokens"].push_back({{"id", id},
                                       {"content", content},
                                       {"single_word", single_word},
                                       {"lstrip", lstrip},
                                       {"rstrip", rstrip},
                                       {"normalized", normalized},
                                       {"special", special}});
        return id;
    }

    // Rewrites the merges as "a b" strings, the older file format.
    void merges_as_strings() {
        nlohmann::json lines = nlohmann::json::array();
        for (const auto &pair : doc["model"]["merges"])
            lines.push_back(pair[0].get<std::string>() + " " + pair[1].get<std::string>());
        doc["model"]["merges"] = lines;
    }

    std::string str() const { return doc.dump(); }
};

}  // namespace mst::test
