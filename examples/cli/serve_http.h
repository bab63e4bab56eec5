// The HTTP endpoints of `moestream serve` (cpp-httplib): /v1/chat/completions,
// /v1/completions, /v1/models, /health, /metrics; errors in OpenAI's shape.
#pragma once

#include <httplib.h>

#include <atomic>

#include "serve_generation.h"

namespace mst::cli {

// `draining`: shutdown has begun; new completion requests get 503.
void install_routes(httplib::Server &server, ServeContext &ctx, const std::atomic<bool> &draining);

}  // namespace mst::cli
