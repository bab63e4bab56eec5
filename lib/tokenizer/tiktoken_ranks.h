// A tiktoken rank file ("tiktoken.model", "cl100k_base.tiktoken"): one line per token,
// "<base64 of the token's bytes> <rank>", where the rank is both the token's id and its
// merge priority (lower merges first).
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace mst {

// The token bytes indexed by rank. Empty lines are skipped and "\r\n" line ends are
// accepted, as tiktoken's own loader does. Everything else that is wrong fails with
// MST_ERR_BAD_FORMAT naming origin, the line and the problem: a line without a rank (the
// last line of a truncated file), bad base64, a rank that is not a number, a rank given
// twice or a rank missing from 0..n-1 (the special tokens are numbered from n on, so a gap
// would shift them), and two ranks for the same bytes.
std::vector<std::string> parse_tiktoken_ranks(std::string_view text, const std::string &origin);

}  // namespace mst
