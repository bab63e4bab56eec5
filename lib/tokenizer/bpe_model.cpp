#include "tokenizer/bpe_model.h"

#include <limits>
#include <queue>

#include "core/error.h"
#include "tokenizer/json_fields.h"
#include "tokenizer/utf8.h"

namespace mst {

namespace {

constexpr char32_t kFastCharLimit = 0x800;

struct Symbol {
    int32_t id;
    int32_t prev;
    int32_t next;
    bool alive;
};

struct Candidate {
    uint32_t rank;
    uint32_t pos;
    int32_t merged;
};

// Orders the heap so the lowest rank, then the leftmost position, comes out first.
struct LaterCandidate {
    bool operator()(const Candidate &a, const Candidate &b) const {
        return a.rank != b.rank ? a.rank > b.rank : a.pos > b.pos;
    }
};

int32_t vocab_id(const nlohmann::json &value, const std::string &origin, const std::string &token) {
    if (!value.is_number_integer())
        fail(MST_ERR_BAD_FORMAT, "{}: model.vocab[\"{}\"] is not an integer id", origin, token);
    const auto id = value.get<int64_t>();
    if (id < 0 || id > std::numeric_limits<int32_t>::max())
        fail(MST_ERR_BAD_FORMAT, "{}: model.vocab[\"{}\"] has the out-of-range id {}", origin, token, id);
    return static_cast<int32_t>(id);
}

}  // namespace

std::unique_ptr<BpeModel> BpeModel::from_json(const nlohmann::json &spec, const std::string &origin) {
    tokjson::require_object(spec, origin, "model");
    const std::string type = tokjson::optional_string(spec, "type", origin, "model");
    // Old files omit the type; a vocabulary with merges can only be BPE.
    if (type.empty() && !tokjson::find(spec, "merges"))
        fail(MST_ERR_BAD_FORMAT, "{}: model has no \"type\" and no \"merges\"", origin);
    if (!type.empty() && type != "BPE")
        fail(MST_ERR_UNSUPPORTED, "{}: model type \"{}\" is not supported (only BPE)", origin, type);
    if (const nlohmann::json *dropout = tokjson::find(spec, "dropout")) {
        if (!dropout->is_number()) fail(MST_ERR_BAD_FORMAT, "{}: model.dropout is not a number", origin);
        if (dropout->get<double>() != 0.0)
            fail(MST_ERR_UNSUPPORTED, "{}: BPE dropout {} is not supported (encoding would be random)", origin,
                 dropout->get<double>());
    }

    auto model = std::unique_ptr<BpeModel>(new BpeModel());
    model->origin_ = origin;
    model->fuse_unk_ = tokjson::optional_bool(spec, "fuse_unk", false, origin, "model");
    model->byte_fallback_ = tokjson::optional_bool(spec, "byte_fallback", false, origin, "model");
    model->ignore_merges_ = tokjson::optional_bool(spec, "ignore_merges", false, origin, "model");
    model->continuing_subword_prefix_ = tokjson::optional_string(spec, "continuing_subword_prefix", origin, "model");
    model->end_of_word_suffix_ = tokjson::optional_string(spec, "end_of_word_suffix", origin, "model");

    const nlohmann::json &vocab = tokjson::require(spec, "vocab", origin, "model");
    tokjson::require_object(vocab, origin, "model.vocab");
    model->vocab_.reserve(vocab.size());
    for (const auto &[token, value] : vocab.items()) {
        if (!utf8::is_valid(token)) fail(MST_ERR_BAD_FORMAT, "{}: a model.vocab token is not valid UTF-8", origin);
        model->vocab_[token] = vocab_id(value, origin, token);
    }

    const std::string unk = tokjson::optional_string(spec, "unk_token", origin, "model");
    if (!unk.empty()) {
        // Like the reference, an unk_token missing from the vocabulary only matters once a
        // word has a character that needs it.
        const auto it = model->vocab_.find(unk);
        if (it != model->vocab_.end()) model->unk_id_ = it->second;
        else model->missing_unk_ = unk;
    }

    model->parse_merges(tokjson::require(spec, "merges", origin, "model"), origin);
    for (int b = 0; b < 256; ++b) {
        const auto it = model->vocab_.find(fmt::format("<0x{:02X}>", b));
        model->byte_ids_[b] = it == model->vocab_.end() ? -1 : it->second;
    }

    if (model->continuing_subword_prefix_.empty() && model->end_of_word_suffix_.empty()) {
        model->char_ids_.assign(kFastCharLimit, -1);
        for (const auto &[token, id] : model->vocab_) {
            if (token.empty()) continue;
            const utf8::Decoded d = utf8::decode_at(token, 0);
            if (d.length == token.size() && d.cp < kFastCharLimit) model->char_ids_[d.cp] = id;
        }
    }
    return model;
}

void BpeModel::parse_merges(const nlohmann::json &merges, const std::string &origin) {
    tokjson::require_array(merges, origin, "model.merges");
    merges_.reserve(merges.size());
    const size_t prefix_length = continuing_subword_prefix_.size();
    uint32_t rank = 0;
    for (size_t i = 0; i < merges.size(); ++i) {
        const nlohmann::json &entry = merges[i];
        std::string left, right;
        if (entry.is_string()) {
            const std::string &line = entry.get_ref<const std::string &>();
            // Merges files may start with a version line; the reference skips it.
            if (line.rfind("#version", 0) == 0) continue;
            const size_t space = line.find(' ');
            if (space == std::string::npos || line.find(' ', space + 1) != std::string::npos)
                fail(MST_ERR_BAD_FORMAT, "{}: model.merges[{}] \"{}\" is not two tokens separated by one space",
                     origin, i, line);
            left = line.substr(0, space);
            right = line.substr(space + 1);
        } else if (entry.is_array() && entry.size() == 2 && entry[0].is_string() && entry[1].is_string()) {
            left = entry[0].get<std::string>();
            right = entry[1].get<std::string>();
        } else {
            fail(MST_ERR_BAD_FORMAT, "{}: model.merges[{}] is neither \"a b\" nor [\"a\", \"b\"]", origin, i);
        }
        const auto find_token = [&](const std::string &token) {
            const auto it = vocab_.find(token);
            if (it == vocab_.end())
                fail(MST_ERR_BAD_FORMAT, "{}: model.merges[{}] uses \"{}\", which is not in model.vocab", origin, i,
                     token);
            return it->second;
        };
        if (right.size() < prefix_length || right.compare(0, prefix_length, continuing_subword_prefix_) != 0)
            fail(MST_ERR_BAD_FORMAT, "{}: model.merges[{}] right token \"{}\" lacks the continuing_subword_prefix",
                 origin, i, right);
        const int32_t left_id = find_token(left);
        const int32_t right_id = find_token(right);
        const int32_t merged_id = find_token(left + right.substr(prefix_length));
        // A repeated pair takes its later rank, as the reference's map insertion does.
        merges_[pair_key(left_id, right_id)] = Merge{rank, merged_id};
        ++rank;
    }
}

std::optional<int32_t> BpeModel::id_of(std::string_view token) const {
    const auto it = vocab_.find(token);
    if (it == vocab_.end()) return std::nullopt;
    return it->second;
}

void BpeModel::for_each_token(const std::function<void(const std::string &, int32_t)> &visit) const {
    for (const auto &[token, id] : vocab_) visit(token, id);
}

void BpeModel::initial_symbols(std::string_view word, std::vector<int32_t> &symbols) const {
    // A run of unknown characters becomes one unk symbol when fuse_unk is set.
    bool pending_unk = false;
    std::string scratch;
    size_t pos = 0;
    while (pos < word.size()) {
        const uint32_t length = utf8::length_at(word, pos);
        const bool first = pos == 0;
        const bool last = pos + length >= word.size();
        std::optional<int32_t> id;
        if (!char_ids_.empty()) {
            const utf8::Decoded d = utf8::decode_at(word, pos);
            if (d.cp < kFastCharLimit) {
                if (char_ids_[d.cp] >= 0) id = char_ids_[d.cp];
            } else {
                id = id_of(word.substr(pos, length));
            }
        } else {
            scratch.clear();
            if (!first) scratch += continuing_subword_prefix_;
            scratch.append(word.substr(pos, length));
            if (last) scratch += end_of_word_suffix_;
            id = id_of(scratch);
        }
        if (!id && byte_fallback_) {
            // Only when every byte has its token; the reference adds them without first
            // emitting a pending unk, so neither does this.
            const std::string_view character = word.substr(pos, length);
            bool all = true;
            for (char c : character) all = all && byte_ids_[static_cast<unsigned char>(c)] >= 0;
            if (all) {
                for (char c : character) symbols.push_back(byte_ids_[static_cast<unsigned char>(c)]);
                pos += length;
                continue;
            }
        }
        pos += length;
        if (id) {
            if (pending_unk) symbols.push_back(*unk_id_);
            pending_unk = false;
            symbols.push_back(*id);
            continue;
        }
        if (!missing_unk_.empty())
            fail(MST_ERR_BAD_FORMAT,
                 "{}: model.unk_token \"{}\" is needed for a character of \"{}\" but is not in model.vocab", origin_,
                 missing_unk_, word);
        // Without an unk token the reference drops the character.
        if (!unk_id_) continue;
        if (pending_unk && !fuse_unk_) symbols.push_back(*unk_id_);
        pending_unk = true;
    }
    if (pending_unk) symbols.push_back(*unk_id_);
}

void BpeModel::merge_word(std::string_view word, std::vector<int32_t> &ids) const {
    std::vector<int32_t> initial;
    initial.reserve(word.size());
    initial_symbols(word, initial);
    if (initial.size() < 2) {
        ids.insert(ids.end(), initial.begin(), initial.end());
        return;
    }
    std::vector<Symbol> symbols(initial.size());
    for (size_t i = 0; i < initial.size(); ++i) {
        symbols[i] = Symbol{initial[i], static_cast<int32_t>(i) - 1,
                            i + 1 < initial.size() ? static_cast<int32_t>(i + 1) : -1, true};
    }
    std::vector<Candidate> storage;
    storage.reserve(initial.size());
    std::priority_queue<Candidate, std::vector<Candidate>, LaterCandidate> queue(LaterCandidate{}, std::move(storage));
    const auto find_merge = [&](int32_t left, int32_t right) -> const Merge * {
        const auto it = merges_.find(pair_key(left, right));
        return it == merges_.end() ? nullptr : &it->second;
    };
    for (size_t i = 0; i + 1 < symbols.size(); ++i)
        if (const Merge *m = find_merge(symbols[i].id, symbols[i + 1].id))
            queue.push(Candidate{m->rank, static_cast<uint32_t>(i), m->merged});

    while (!queue.empty()) {
        const Candidate top = queue.top();
        queue.pop();
        Symbol &current = symbols[top.pos];
        if (!current.alive || current.next < 0) continue;
        const int32_t right_pos = current.next;
        const Symbol right = symbols[static_cast<size_t>(right_pos)];
        // A stale entry: the pair at this position changed since it was queued. The
        // reference compares only the merged id, and so does this, to agree with it.
        const Merge *now = find_merge(current.id, right.id);
        if (!now || now->merged != top.merged) continue;

        current.id = top.merged;
        current.next = right.next;
        symbols[static_cast<size_t>(right_pos)].alive = false;
        if (right.next >= 0) symbols[static_cast<size_t>(right.next)].prev = static_cast<int32_t>(top.pos);

        if (current.prev >= 0)
            if (const Merge *m = find_merge(symbols[static_cast<size_t>(current.prev)].id, current.id))
                queue.push(Candidate{m->rank, static_cast<uint32_t>(current.prev), m->merged});
        if (current.next >= 0)
            if (const Merge *m = find_merge(current.id, symbols[static_cast<size_t>(current.next)].id))
                queue.push(Candidate{m->rank, top.pos, m->merged});
    }
    for (const Symbol &s : symbols)
        if (s.alive) ids.push_back(s.id);
}

void BpeModel::tokenize(std::string_view word, std::vector<int32_t> &ids) const {
    if (word.empty()) return;
    if (ignore_merges_) {
        if (const auto id = id_of(word)) {
            ids.push_back(*id);
            return;
        }
    }
    // Long words are rare and would make the cache's memory unbounded; they skip it.
    const bool cacheable = word.size() <= kCacheWordBytes;
    if (!cacheable) {
        merge_word(word, ids);
        return;
    }
    {
        std::lock_guard lock(cache_mutex_);
        const auto it = cache_.find(word);
        if (it != cache_.end()) {
            ids.insert(ids.end(), it->second.begin(), it->second.end());
            return;
        }
    }
    const size_t first = ids.size();
    merge_word(word, ids);
    std::lock_guard lock(cache_mutex_);
    if (cache_.size() < kCacheCapacity)
        cache_.emplace(std::string(word),
                       std::vector<int32_t>(ids.begin() + static_cast<std::ptrdiff_t>(first), ids.end()));
}

}  // namespace mst
