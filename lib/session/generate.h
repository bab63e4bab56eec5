// The generation loop: prompt, then sample / emit / evaluate until EOS, a stop string,
// the token limit, a full context or the callback says stop.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "moestream.h"
#include "session/sampler.h"
#include "session/session.h"

namespace mst {

struct GenerateOptions {
    int32_t max_tokens = 256;
    SamplerOptions sampler;
    std::vector<std::string> stop;
    bool ignore_eos = false;
};

// Return true to stop.
using TokenSink = std::function<bool(int32_t token, std::string_view piece)>;

// Every emitted token is evaluated, so the context holds the whole exchange afterwards;
// EOS and the token that completes a stop string are not added.
mst_stop_reason generate(Session &session, std::span<const int32_t> prompt, const GenerateOptions &options,
                         const TokenSink &sink);

}  // namespace mst
