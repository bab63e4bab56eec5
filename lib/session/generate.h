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
#include "session/step_batcher.h"

namespace mst {

struct GenerateOptions {
    int32_t max_tokens = 256;
    SamplerOptions sampler;
    std::vector<std::string> stop;
    bool ignore_eos = false;
    // Not null: the prompt and every sampled token are evaluated in the batcher's steps,
    // together with the other generations' (the session must be of the batcher's model).
    StepBatcher *batcher = nullptr;
};

// Return true to stop.
using TokenSink = std::function<bool(int32_t token, std::string_view piece)>;

// Every sampled token is shown to the sink once and evaluated, so the context holds the
// whole exchange afterwards: the end-of-sequence token (shown with the text still held
// back, never its own), the tokens of a stop string (their text up to the stop string
// shown) and the token whose sink call asked to stop. Text held back when the sink asks to
// stop (a possible start of a stop string, part of a UTF-8 character) is not shown.
mst_stop_reason generate(Session &session, std::span<const int32_t> prompt, const GenerateOptions &options,
                         const TokenSink &sink);

}  // namespace mst
