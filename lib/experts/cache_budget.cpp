#include "experts/cache_budget.h"

#include <algorithm>

#include <fmt/format.h>

namespace mst {

namespace {
constexpr uint64_t kMiB = uint64_t(1) << 20;
constexpr uint64_t kFallbackBytes = uint64_t(1) << 30;
}  // namespace

uint64_t cache_budget_margin(uint64_t headroom) { return std::max<uint64_t>(256 * kMiB, headroom / 8); }

CacheBudget default_cache_budget(const CacheBudgetInputs &in) {
    CacheBudget b;
    uint64_t base = kFallbackBytes;
    if (in.headroom == 0) {
        b.why = fmt::format("the memory this process may use is unknown: {} MiB", kFallbackBytes / kMiB);
    } else {
        const uint64_t margin = cache_budget_margin(in.headroom);
        const uint64_t taken = in.resident_bytes + margin;
        base = in.headroom > taken ? in.headroom - taken : 0;
        b.why = fmt::format("{} MiB the process may use - {} MiB resident weights - {} MiB margin", in.headroom / kMiB,
                            in.resident_bytes / kMiB, margin / kMiB);
    }
    b.bytes = base;
    if (b.bytes < in.one_token_bytes) {
        b.bytes = in.one_token_bytes;
        b.why += fmt::format(", raised to one token's experts ({} MiB)", in.one_token_bytes / kMiB);
    }
    if (in.expert_bytes_total && b.bytes > in.expert_bytes_total) {
        b.bytes = in.expert_bytes_total;
        b.why += fmt::format(", capped at all the experts ({} MiB)", in.expert_bytes_total / kMiB);
    }
    return b;
}

}  // namespace mst
