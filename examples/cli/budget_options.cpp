#include "budget_options.h"

#include <fmt/format.h>

namespace mst::cli {

const char *const kBudgetOptionsHelp =
    "expert budget rules (weights normalised over the token's top-k; the top expert is always kept):\n"
    "  --min-weight W            drop experts whose weight is below W (0..1; default 0 = off)\n"
    "  --mass P                  keep the fewest experts whose weights reach P (0..1; default 1 = off)\n"
    "  --cache-skip W            skip experts not in memory whose weight is below W (0..1; default 0 = off)\n"
    "  --cache-substitute R      cache-aware routing: run a cached expert among the router's next k ranks in\n"
    "                            place of a chosen one that is not in memory, when its router weight is at\n"
    "                            least R times the chosen one's (0..1; default 0 = off; the top expert is\n"
    "                            never replaced; the substitute takes the chosen one's weight)\n";

std::vector<std::string> budget_option_names() { return {"min-weight", "mass", "cache-skip", "cache-substitute"}; }

mst_expert_budget budget_from(const Args &args, int32_t experts_per_token) {
    mst_expert_budget b;
    mst_expert_budget_default(&b);
    b.experts_per_token = experts_per_token;
    b.min_weight = float(args.float_in("min-weight", b.min_weight, 0.0, 1.0));
    b.mass = float(args.float_in("mass", b.mass, 0.0, 1.0));
    b.cache_skip_below = float(args.float_in("cache-skip", b.cache_skip_below, 0.0, 1.0));
    b.cache_substitute = float(args.float_in("cache-substitute", b.cache_substitute, 0.0, 1.0));
    return b;
}

std::string budget_rules_str(const mst_expert_budget &b) {
    std::string out;
    if (b.min_weight > 0) out += fmt::format(" min-w={}", b.min_weight);
    if (b.mass < 1) out += fmt::format(" mass={}", b.mass);
    if (b.cache_skip_below > 0) out += fmt::format(" cache-skip={}", b.cache_skip_below);
    if (b.cache_substitute > 0) out += fmt::format(" subst={}", b.cache_substitute);
    return out;
}

}  // namespace mst::cli
