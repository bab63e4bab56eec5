#include "backends/vulkan/matvec_tuning.h"

#include <algorithm>
#include <charconv>
#include <utility>

namespace mst {

namespace {

// A whole number filling all of `text`.
bool whole_number(std::string_view text, uint32_t &out) {
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
    return !text.empty() && ec == std::errc() && end == text.data() + text.size();
}

const char *const kGrammar =
    "expected `default` or family=LANESxROWS[xPER_LANE] entries separated by commas, the families dense, swiglu and "
    "combine (e.g. dense=32x4x2,swiglu=64x2,combine=32x4)";

}  // namespace

std::string MatvecShape::name() const {
    // One row per lane (every shape before PER_LANE) keeps its two-number name.
    return std::to_string(lanes) + "x" + std::to_string(rows) + (per_lane != 1 ? "x" + std::to_string(per_lane) : "");
}

std::string MatvecTuning::name() const {
    return "dense=" + dense.name() + ",swiglu=" + swiglu.name() + ",combine=" + combine.name();
}

bool check_matvec_shape(const MatvecShape &s, std::string &why) {
    if (s.lanes < 4 || s.lanes > 256 || (s.lanes & (s.lanes - 1)) != 0) {
        why = "LANES must be a power of two from 4 to 256 (the lanes' sums meet in a halving tree), not " +
              std::to_string(s.lanes);
        return false;
    }
    if (s.rows < 1 || s.rows > 64) {
        why = "ROWS must be 1 to 64, not " + std::to_string(s.rows);
        return false;
    }
    if (s.threads() > 1024) {
        why = s.name() + " is " + std::to_string(s.threads()) + " invocations, more than 1024 a workgroup";
        return false;
    }
    if (s.per_lane < 1 || s.per_lane > 8) {
        why = "PER_LANE must be 1 to 8, not " + std::to_string(s.per_lane);
        return false;
    }
    return true;
}

bool check_matvec_tuning(const MatvecTuning &t, std::string &why) {
    const std::pair<const char *, const MatvecShape *> families[] = {
        {"dense", &t.dense}, {"swiglu", &t.swiglu}, {"combine", &t.combine}};
    for (const auto &[family, s] : families) {
        std::string rule;
        if (!check_matvec_shape(*s, rule)) {
            why = std::string(family) + ": " + rule;
            return false;
        }
    }
    return true;
}

bool parse_matvec_tuning(std::string_view text, const MatvecTuning &defaults, MatvecTuning &out, std::string &why) {
    const std::string quoted = "'" + std::string(text) + "': ";
    if (text == "default") {
        out = defaults;
        return true;
    }
    MatvecTuning t = defaults;
    bool seen[3] = {false, false, false};
    for (size_t at = 0; at <= text.size();) {
        const size_t comma = std::min(text.find(',', at), text.size());
        const std::string_view entry = text.substr(at, comma - at);
        at = comma + 1;
        const size_t eq = entry.find('=');
        if (eq == std::string_view::npos) {
            why = quoted + kGrammar;
            return false;
        }
        const std::string_view family = entry.substr(0, eq), shape = entry.substr(eq + 1);
        int f = family == "dense" ? 0 : family == "swiglu" ? 1 : family == "combine" ? 2 : -1;
        if (f < 0) {
            why = quoted + "unknown family '" + std::string(family) + "' (dense, swiglu or combine)";
            return false;
        }
        if (seen[f]) {
            why = quoted + "family '" + std::string(family) + "' given twice";
            return false;
        }
        seen[f] = true;
        const size_t x = shape.find('x'), x2 = x == std::string_view::npos ? x : shape.find('x', x + 1);
        MatvecShape s;
        const bool three = x2 != std::string_view::npos;
        if (x == std::string_view::npos || !whole_number(shape.substr(0, x), s.lanes) ||
            !whole_number(shape.substr(x + 1, three ? x2 - x - 1 : std::string_view::npos), s.rows) ||
            (three && !whole_number(shape.substr(x2 + 1), s.per_lane))) {
            why = quoted + std::string(family) + "'s shape '" + std::string(shape) +
                  "' is not LANESxROWS or LANESxROWSxPER_LANE (whole numbers, e.g. 32x4 or 32x4x2)";
            return false;
        }
        std::string rule;
        if (!check_matvec_shape(s, rule)) {
            why = quoted + std::string(family) + ": " + rule;
            return false;
        }
        (f == 0 ? t.dense : f == 1 ? t.swiglu : t.combine) = s;
    }
    std::string rule;
    if (!check_matvec_tuning(t, rule)) {
        why = quoted + rule;
        return false;
    }
    out = t;
    return true;
}

}  // namespace mst
