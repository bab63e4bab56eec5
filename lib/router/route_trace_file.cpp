#include "router/route_trace_file.h"

#include <cerrno>
#include <charconv>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string_view>

#include "core/error.h"

namespace mst {

namespace {

constexpr const char *kMagic = "moestream-route-trace";
constexpr int kVersion = 2;  // 1: no r lines (still written when there are none)
// Bounds that keep a malformed header from asking for absurd allocations.
constexpr int64_t kMaxExperts = 1 << 16, kMaxK = 1 << 10, kMaxAhead = 16, kMaxLayers = 1 << 12;
constexpr int64_t kMaxSlots = int64_t(1) << 31;  // tokens x layers x k

// Reads whitespace-separated fields of one line, failing with its line number.
class LineReader {
public:
    LineReader(const std::string &path, size_t line_no, std::string_view line)
        : path_(path), line_no_(line_no), rest_(line) {}

    std::string_view word() {
        while (!rest_.empty() && rest_.front() == ' ') rest_.remove_prefix(1);
        if (rest_.empty()) error("the line ends early");
        const size_t end = rest_.find(' ');
        std::string_view w = rest_.substr(0, end);
        rest_.remove_prefix(end == std::string_view::npos ? rest_.size() : end);
        return w;
    }
    void expect(std::string_view want) {
        if (word() != want) error(fmt::format("expected '{}'", want));
    }
    int64_t integer(int64_t lo, int64_t hi, std::string_view what) { return parse_int(word(), lo, hi, what); }
    int64_t parse_int(std::string_view w, int64_t lo, int64_t hi, std::string_view what) {
        int64_t v = 0;
        const auto [end, ec] = std::from_chars(w.data(), w.data() + w.size(), v);
        if (ec != std::errc() || end != w.data() + w.size()) error(fmt::format("{} '{}' is not an integer", what, w));
        if (v < lo || v > hi) error(fmt::format("{} {} is outside {}..{}", what, v, lo, hi));
        return v;
    }
    float real(std::string_view w, std::string_view what) {
        float v = 0;
        const auto [end, ec] = std::from_chars(w.data(), w.data() + w.size(), v);
        if (ec != std::errc() || end != w.data() + w.size()) error(fmt::format("{} '{}' is not a number", what, w));
        return v;
    }
    bool at_end() {
        while (!rest_.empty() && rest_.front() == ' ') rest_.remove_prefix(1);
        return rest_.empty();
    }
    void done() {
        if (!at_end()) error("unexpected text at the end of the line");
    }
    [[noreturn]] void error(const std::string &what) const {
        fail(MST_ERR_BAD_FORMAT, "route trace {} line {}: {}", path_, line_no_, what);
    }

private:
    const std::string &path_;
    size_t line_no_;
    std::string_view rest_;
};

}  // namespace

RouteTraceData RouteTraceData::sized(int32_t n_experts, int32_t k, int32_t predict_ahead, int64_t n_tokens,
                                     std::vector<int32_t> layers, int32_t ranked) {
    RouteTraceData t;
    t.n_experts = n_experts;
    t.k = k;
    t.predict_ahead = predict_ahead;
    t.n_tokens = n_tokens;
    t.layers = std::move(layers);
    const size_t n = size_t(n_tokens) * t.layers.size() * size_t(k);
    t.ids.assign(n, -1);
    t.weights.assign(n, 0.0f);
    t.guesses.assign(n * size_t(predict_ahead), -1);
    t.guess_weights.assign(n * size_t(predict_ahead), 0.0f);
    t.ranked = ranked;
    t.ranked_ids.assign(size_t(n_tokens) * t.layers.size() * size_t(ranked), -1);
    t.ranked_weights.assign(t.ranked_ids.size(), 0.0f);
    return t;
}

void write_route_trace(const std::string &path, const RouteTraceData &t) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    if (!out) fail(MST_ERR_IO, "cannot write route trace {}: {}", path, std::strerror(errno));
    out << kMagic << ' ' << (t.ranked > 0 ? 2 : 1) << '\n'
        << "experts " << t.n_experts << " k " << t.k << " predict " << t.predict_ahead << " tokens " << t.n_tokens;
    if (t.ranked > 0) out << " ranked " << t.ranked;
    out << '\n' << "layers";
    for (int32_t l : t.layers) out << ' ' << l;
    out << '\n';
    std::string line;
    for (int64_t tok = 0; tok < t.n_tokens; ++tok) {
        for (size_t s = 0; s < t.n_slots(); ++s) {
            line = fmt::format("c {} {}", tok, s);
            for (int32_t j = 0; j < t.k; ++j)
                line += fmt::format(" {}:{:.5g}", t.ids[t.at(tok, s) + size_t(j)], t.weights[t.at(tok, s) + size_t(j)]);
            out << line << '\n';
            for (int32_t a = 1; a <= t.predict_ahead; ++a) {
                const size_t g = t.guess_at(a, tok, s);
                if (t.guesses[g] < 0) continue;
                line = fmt::format("p {} {} {}", tok, s, a);
                for (int32_t j = 0; j < t.k; ++j)
                    line += fmt::format(" {}:{:.5g}", t.guesses[g + size_t(j)], t.guess_weights[g + size_t(j)]);
                out << line << '\n';
            }
            if (t.ranked > 0 && t.ranked_ids[t.ranked_at(tok, s)] >= 0) {
                line = fmt::format("r {} {}", tok, s);
                for (int32_t j = 0; j < t.ranked; ++j)
                    line += fmt::format(" {}:{:.5g}", t.ranked_ids[t.ranked_at(tok, s) + size_t(j)],
                                        t.ranked_weights[t.ranked_at(tok, s) + size_t(j)]);
                out << line << '\n';
            }
        }
    }
    out.flush();
    if (!out) fail(MST_ERR_IO, "writing route trace {} failed: {}", path, std::strerror(errno));
}

RouteTraceData read_route_trace(const std::string &path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) fail(MST_ERR_IO, "cannot read route trace {}: {}", path, std::strerror(errno));
    std::string line;
    size_t line_no = 0;
    auto next_line = [&]() -> bool {
        while (std::getline(in, line)) {
            ++line_no;
            if (!line.empty() && line.back() == '\r') line.pop_back();
            if (line.empty() || line.front() == '#') continue;
            return true;
        }
        return false;
    };
    auto header = [&](const char *what) {
        if (!next_line()) fail(MST_ERR_BAD_FORMAT, "route trace {}: ends before its {} line", path, what);
        return LineReader(path, line_no, line);
    };
    int64_t version = 0;
    {
        LineReader r = header("first");
        if (r.word() != kMagic) r.error(fmt::format("not a route trace (no '{}')", kMagic));
        version = r.integer(1, kVersion, "version");
        r.done();
    }
    LineReader h = header("shape");
    h.expect("experts");
    const int64_t experts = h.integer(1, kMaxExperts, "experts");
    h.expect("k");
    const int64_t k = h.integer(1, std::min(kMaxK, experts), "k");
    h.expect("predict");
    const int64_t ahead = h.integer(0, kMaxAhead, "predict");
    h.expect("tokens");
    const int64_t tokens = h.integer(1, kMaxSlots, "tokens");
    int64_t ranked = 0;
    if (version >= 2 && !h.at_end()) {
        h.expect("ranked");
        ranked = h.integer(k + 1, std::min(kMaxK, experts), "ranked");
    }
    h.done();
    LineReader lr = header("layers");
    lr.expect("layers");
    std::vector<int32_t> layers;
    while (!lr.at_end())
        layers.push_back(int32_t(lr.integer(layers.empty() ? 0 : layers.back() + 1, kMaxLayers, "layer")));
    lr.done();
    if (layers.empty()) lr.error("no sparse layers");
    if (tokens * int64_t(layers.size()) * (k * (ahead + 1) + ranked) > kMaxSlots) lr.error("the trace is too large");

    RouteTraceData t =
        RouteTraceData::sized(int32_t(experts), int32_t(k), int32_t(ahead), tokens, layers, int32_t(ranked));
    std::vector<uint8_t> seen(size_t(tokens) * layers.size(), 0);
    while (next_line()) {
        LineReader r(path, line_no, line);
        const std::string_view kind = r.word();
        if (kind != "c" && kind != "p" && kind != "r") r.error(fmt::format("unknown record '{}' (c, p or r)", kind));
        const int64_t tok = r.integer(0, tokens - 1, "token");
        const size_t slot = size_t(r.integer(0, int64_t(layers.size()) - 1, "layer slot"));
        if (kind == "c") {
            if (seen[size_t(tok) * layers.size() + slot]++) r.error("a second c line for this token and slot");
            for (int64_t j = 0; j < k; ++j) {
                const std::string_view w = r.word();
                const size_t colon = w.find(':');
                if (colon == std::string_view::npos) r.error(fmt::format("'{}' is not expert:weight", w));
                t.ids[t.at(tok, slot) + size_t(j)] = int32_t(r.parse_int(w.substr(0, colon), -1, experts - 1, "expert"));
                t.weights[t.at(tok, slot) + size_t(j)] = r.real(w.substr(colon + 1), "weight");
            }
        } else if (kind == "r") {
            if (ranked == 0) r.error("an r line in a trace whose header has no 'ranked M'");
            if (t.ranked_ids[t.ranked_at(tok, slot)] >= 0) r.error("a second r line for this token and slot");
            for (int64_t j = 0; j < ranked; ++j) {
                const std::string_view w = r.word();
                const size_t colon = w.find(':');
                if (colon == std::string_view::npos) r.error(fmt::format("'{}' is not expert:weight", w));
                t.ranked_ids[t.ranked_at(tok, slot) + size_t(j)] =
                    int32_t(r.parse_int(w.substr(0, colon), 0, experts - 1, "expert"));
                t.ranked_weights[t.ranked_at(tok, slot) + size_t(j)] = r.real(w.substr(colon + 1), "weight");
            }
        } else {
            if (ahead == 0) r.error("a p line in a trace recorded with predict 0");
            const int32_t a = int32_t(r.integer(1, ahead, "layers ahead"));
            for (int64_t j = 0; j < k; ++j) {
                const std::string_view w = r.word();
                const size_t colon = w.find(':');
                const size_t g = t.guess_at(a, tok, slot) + size_t(j);
                t.guesses[g] = int32_t(r.parse_int(w.substr(0, colon), -1, experts - 1, "expert"));
                if (colon != std::string_view::npos) t.guess_weights[g] = r.real(w.substr(colon + 1), "weight");
            }
        }
        r.done();
    }
    if (in.bad()) fail(MST_ERR_IO, "reading route trace {} failed: {}", path, std::strerror(errno));
    for (size_t i = 0; i < seen.size(); ++i)
        if (!seen[i])
            fail(MST_ERR_BAD_FORMAT, "route trace {}: no c line for token {} slot {}", path, i / layers.size(),
                 i % layers.size());
    return t;
}

}  // namespace mst
