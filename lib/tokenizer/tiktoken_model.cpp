#include "tokenizer/tiktoken_model.h"

#include <limits>
#include <queue>

#include "core/error.h"
#include "tokenizer/byte_level.h"

namespace mst {

namespace {

// A part of the word being merged: bytes [begin, end) of it, linked to its neighbours.
struct Part {
    uint32_t begin, end;
    int32_t prev, next;
};

// A pair that may merge: the part at `left` with its right neighbour, which ended at
// `right_end` when this was queued. If that neighbour has grown since, the entry is stale.
struct Candidate {
    int32_t rank;
    uint32_t left;
    uint32_t right_end;
};

struct LaterCandidate {
    bool operator()(const Candidate &a, const Candidate &b) const {
        return a.rank != b.rank ? a.rank > b.rank : a.left > b.left;
    }
};

}  // namespace

TiktokenModel::TiktokenModel(std::vector<std::string> by_rank, const std::string &origin)
    : by_rank_(std::move(by_rank)) {
    if (by_rank_.size() > static_cast<size_t>(std::numeric_limits<int32_t>::max()))
        fail(MST_ERR_BAD_FORMAT, "{}: too many ranks", origin);
    ranks_.reserve(by_rank_.size());
    for (size_t r = 0; r < by_rank_.size(); ++r) {
        if (by_rank_[r].empty()) fail(MST_ERR_BAD_FORMAT, "{}: the token of rank {} is empty", origin, r);
        if (!ranks_.emplace(by_rank_[r], static_cast<int32_t>(r)).second)
            fail(MST_ERR_BAD_FORMAT, "{}: rank {} repeats the bytes of rank {}", origin, r, ranks_[by_rank_[r]]);
    }
    for (int b = 0; b < 256; ++b)
        if (!ranks_.count(std::string(1, static_cast<char>(b))))
            fail(MST_ERR_BAD_FORMAT, "{}: the single byte 0x{:02X} has no rank, so some text could not be encoded",
                 origin, b);
}

std::optional<int32_t> TiktokenModel::rank_of(std::string_view bytes) const {
    const auto it = ranks_.find(bytes);
    if (it == ranks_.end()) return std::nullopt;
    return it->second;
}

void TiktokenModel::tokenize(std::string_view word, std::vector<int32_t> &ids) const {
    if (word.empty()) return;
    if (const auto whole = rank_of(word)) {
        ids.push_back(*whole);
        return;
    }
    const auto n = static_cast<uint32_t>(word.size());
    std::vector<Part> parts(n);
    for (uint32_t i = 0; i < n; ++i)
        parts[i] = Part{i, i + 1, static_cast<int32_t>(i) - 1, i + 1 < n ? static_cast<int32_t>(i + 1) : -1};
    std::priority_queue<Candidate, std::vector<Candidate>, LaterCandidate> queue;
    const auto consider = [&](uint32_t left) {
        const Part &l = parts[left];
        if (l.next < 0) return;
        const uint32_t right_end = parts[static_cast<size_t>(l.next)].end;
        if (const auto rank = rank_of(word.substr(l.begin, right_end - l.begin)))
            queue.push(Candidate{*rank, left, right_end});
    };
    for (uint32_t i = 0; i + 1 < n; ++i) consider(i);
    // The heap yields the lowest rank, leftmost first, among the pairs that exist now,
    // which is exactly the pair tiktoken's scan over all pairs would pick.
    while (!queue.empty()) {
        const Candidate top = queue.top();
        queue.pop();
        Part &left = parts[top.left];
        // Dead parts have begin == UINT32_MAX; a changed right neighbour makes the entry stale.
        if (left.begin == std::numeric_limits<uint32_t>::max() || left.next < 0) continue;
        Part &right = parts[static_cast<size_t>(left.next)];
        if (right.end != top.right_end) continue;
        left.end = right.end;
        left.next = right.next;
        right.begin = std::numeric_limits<uint32_t>::max();
        if (left.next >= 0) parts[static_cast<size_t>(left.next)].prev = static_cast<int32_t>(top.left);
        if (left.prev >= 0) consider(static_cast<uint32_t>(left.prev));
        consider(top.left);
    }
    for (int32_t i = 0; i >= 0; i = parts[static_cast<size_t>(i)].next) {
        const Part &p = parts[static_cast<size_t>(i)];
        ids.push_back(*rank_of(word.substr(p.begin, p.end - p.begin)));
    }
}

std::optional<int32_t> TiktokenModel::id_of(std::string_view token) const {
    std::string bytes;
    if (!byte_level::decode_append(token, bytes)) return std::nullopt;
    return rank_of(bytes);
}

void TiktokenModel::for_each_token(const std::function<void(const std::string &, int32_t)> &visit) const {
    std::string spelled;
    for (size_t r = 0; r < by_rank_.size(); ++r) {
        spelled.clear();
        byte_level::encode_append(by_rank_[r], spelled);
        visit(spelled, static_cast<int32_t>(r));
    }
}

}  // namespace mst
