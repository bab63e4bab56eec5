#include "backends/vulkan/gemm_tuning.h"

#include <algorithm>
#include <charconv>
#include <vector>

namespace mst {

namespace {

constexpr const char *kGrammar =
    "expected main or MIxNJxSPLITKxBK[xTN[xSTAGES]] (four to six whole numbers, e.g. 2x2x2x32 or 2x2x1x32x32)";

bool power_of_two_up_to(uint32_t v, uint32_t most) { return v >= 1 && v <= most && (v & (v - 1)) == 0; }

}  // namespace

uint32_t GemmTuning::shared_bytes(bool swiglu, CoopPrecision precision) const {
    uint32_t most = 0;
    for (DType t : {DType::F32, DType::F16, DType::BF16, DType::Q8, DType::Q4})
        most = std::max(most, shared_bytes(swiglu, precision, t));
    return most;
}

uint32_t GemmTuning::shared_bytes(bool swiglu, CoopPrecision precision, DType type) const {
    if (!tuned()) return 0;
    // gemm_tuned.comp's SPLIT_W and SPLIT_X for the type: hi and lo halves, or one f16.
    const bool split = precision != CoopPrecision::f16, exact = precision == CoopPrecision::exact;
    const bool q4 = type == DType::Q4, wide = type == DType::F32 || type == DType::Q8;
    const uint32_t w_halves = (q4 ? exact : wide && split) ? 2 : 1;
    const uint32_t x_halves = (q4 ? exact : split) ? 2 : 1;
    const uint32_t pitch = (bk / 8 + 1) * 16;  // bytes a staged row, KP4 uvec4
    const uint32_t staged = stages * pitch * (w_halves * tile_rows() * (swiglu ? 2 : 1) + x_halves * tn);
    const uint32_t sums = 4 * tn * (tile_rows() + 4);  // cs, over the staged tiles once the columns are done
    return std::max(staged, sums);
}

std::string GemmTuning::name() const {
    if (!tuned()) return "main";
    return std::to_string(mi) + "x" + std::to_string(nj) + "x" + std::to_string(splitk) + "x" + std::to_string(bk) +
           (tn == 64 && stages == 1 ? "" : "x" + std::to_string(tn)) +
           (stages == 1 ? "" : "x" + std::to_string(stages));
}

bool check_gemm_tuning(const GemmTuning &t, std::string &why) {
    if (!t.tuned()) return true;
    if (t.mi < 1 || t.mi > 8) {
        why = "MI (16x16 sums along the rows) must be 1 to 8, not " + std::to_string(t.mi);
        return false;
    }
    if (t.nj != 1 && t.nj != 2 && t.nj != 4) {
        why = "NJ (16x16 sums along the tokens) must be 1, 2 or 4, not " + std::to_string(t.nj);
        return false;
    }
    if ((t.tn != 32 && t.tn != 64) || 16 * t.nj > t.tn) {
        why = "TN (tokens a pass) must be 32 or 64 and hold NJ 16-token blocks, not " + std::to_string(t.tn) +
              " with NJ " + std::to_string(t.nj);
        return false;
    }
    if (t.stages != 1 && t.stages != 2) {
        why = "STAGES (staged copies of the tiles) must be 1 or 2, not " + std::to_string(t.stages);
        return false;
    }
    if (!power_of_two_up_to(t.splitk, 8)) {
        why = "SPLITK must be 1, 2, 4 or 8, not " + std::to_string(t.splitk);
        return false;
    }
    if (t.bk % 32 != 0 || t.bk == 0 || t.bk > 256) {
        why = "BK (columns a step) must be a multiple of 32 up to 256, not " + std::to_string(t.bk);
        return false;
    }
    // Every thread stages whole 8-element pieces of the weight and the activation tiles,
    // and the SPLITK groups take the step's 16-column slices in turn, none left idle.
    const uint32_t pieces_per_row = t.bk / 8;
    if ((t.tile_rows() * pieces_per_row) % t.threads() != 0 || (t.tn * pieces_per_row) % t.threads() != 0 ||
        t.bk / 16 < t.splitk) {
        why = "BK " + std::to_string(t.bk) + " is too narrow for " + std::to_string(t.threads()) +
              " threads (SPLITK " + std::to_string(t.splitk) + ") at " + std::to_string(t.tile_rows()) +
              " rows: each thread stages whole 8-column pieces of both tiles";
        return false;
    }
    return true;
}

bool parse_gemm_tunings(std::string_view text, GemmTuning &dense, GemmTuning &grouped, std::string &why) {
    const size_t slash = text.find('/');
    GemmTuning d, g;
    if (!parse_gemm_tuning(text.substr(0, slash), d, why)) return false;
    if (slash == std::string_view::npos) g = d;
    else if (!parse_gemm_tuning(text.substr(slash + 1), g, why)) return false;
    dense = d;
    grouped = g;
    return true;
}

std::string gemm_tunings_name(const GemmTuning &dense, const GemmTuning &grouped) {
    return dense == grouped ? dense.name() : dense.name() + "/" + grouped.name();
}

bool parse_gemm_tuning(std::string_view text, GemmTuning &out, std::string &why) {
    if (text == "main") {
        out = GemmTuning{};
        return true;
    }
    std::vector<uint32_t> v;
    size_t at = 0;
    while (true) {
        const size_t x = text.find('x', at);
        const std::string_view part = text.substr(at, x == std::string_view::npos ? std::string_view::npos : x - at);
        uint32_t n = 0;
        const auto [end, ec] = std::from_chars(part.data(), part.data() + part.size(), n);
        if (part.empty() || ec != std::errc() || end != part.data() + part.size()) {
            why = "'" + std::string(text) + "': " + kGrammar;
            return false;
        }
        v.push_back(n);
        if (x == std::string_view::npos) break;
        at = x + 1;
    }
    if (v.size() < 4 || v.size() > 6) {
        why = "'" + std::string(text) + "': " + kGrammar;
        return false;
    }
    GemmTuning t{v[0], v[1], v[2], v[3], v.size() >= 5 ? v[4] : 64u, v.size() == 6 ? v[5] : 1u};
    if (t.mi == 0) {
        why = "'" + std::string(text) + "': MI must be 1 to 8, not 0";
        return false;
    }
    std::string rule;
    if (!check_gemm_tuning(t, rule)) {
        why = "'" + std::string(text) + "': " + rule;
        return false;
    }
    out = t;
    return true;
}

}  // namespace mst
