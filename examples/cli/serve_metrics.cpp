#include "serve_metrics.h"

#include <fmt/format.h>

namespace mst::cli {

void ServeMetrics::count_request(const std::string &endpoint, int status) {
    const std::lock_guard<std::mutex> lock(mutex_);
    ++requests_[{endpoint, status}];
}

void ServeMetrics::count_generation(uint64_t prompt_tokens, uint64_t reused_tokens, uint64_t completion_tokens,
                                    double seconds) {
    const std::lock_guard<std::mutex> lock(mutex_);
    prompt_tokens_ += prompt_tokens;
    reused_tokens_ += reused_tokens;
    completion_tokens_ += completion_tokens;
    generation_seconds_ += seconds;
}

std::string ServeMetrics::prometheus(const ModelHandle &model, int sessions, int busy, int waiting,
                                     const mst_batcher_stats &batches) const {
    std::string out;
    const auto header = [&](const char *name, const char *type, const char *help) {
        out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
    };
    const auto one = [&](const char *name, const char *type, const char *help, const auto &value) {
        header(name, type, help);
        out += fmt::format("{} {}\n", name, value);
    };
    const mst_cache_stats cache = model.cache_stats(-1);
    const std::lock_guard<std::mutex> lock(mutex_);
    header("moestream_requests_total", "counter", "HTTP requests answered, by endpoint and status");
    for (const auto &[key, n] : requests_)
        out += fmt::format("moestream_requests_total{{endpoint=\"{}\",status=\"{}\"}} {}\n", key.first, key.second, n);
    one("moestream_prompt_tokens_total", "counter", "prompt tokens of completed requests", prompt_tokens_);
    one("moestream_prompt_tokens_reused_total", "counter", "prompt tokens a session already held (not evaluated)",
        reused_tokens_);
    one("moestream_completion_tokens_total", "counter", "tokens generated", completion_tokens_);
    one("moestream_generation_seconds_total", "counter", "wall time of generations (prompt and decode)",
        fmt::format("{:.6f}", generation_seconds_));
    one("moestream_completion_tokens_per_second", "gauge", "tokens generated per second of generation",
        fmt::format("{:.3f}", generation_seconds_ > 0 ? double(completion_tokens_) / generation_seconds_ : 0.0));
    one("moestream_expert_bytes_read_total", "counter", "expert bytes read from storage", cache.bytes_read);
    one("moestream_expert_cache_hits_total", "counter", "expert lookups served from the expert cache", cache.hits);
    one("moestream_expert_cache_misses_total", "counter", "expert lookups that read storage", cache.misses);
    one("moestream_expert_cache_bytes", "gauge", "expert bytes held in the cache", cache.bytes_held);
    one("moestream_sessions", "gauge", "sessions (--parallel)", sessions);
    one("moestream_sessions_busy", "gauge", "sessions answering a request", busy);
    one("moestream_requests_waiting", "gauge", "requests waiting for a session", waiting);
    // Upper bounds of mst_batcher_stats.steps_by_size's buckets; the last is +Inf.
    static const char *const kBatchBounds[] = {"1", "2", "4", "8", "16", "32", "+Inf"};
    header("moestream_batch_sequences", "histogram", "sequences evaluated together per step (prompts and decode tokens)");
    uint64_t cumulative = 0;
    for (size_t i = 0; i < std::size(kBatchBounds); ++i) {
        cumulative += batches.steps_by_size[i];
        out += fmt::format("moestream_batch_sequences_bucket{{le=\"{}\"}} {}\n", kBatchBounds[i], cumulative);
    }
    out += fmt::format("moestream_batch_sequences_sum {}\nmoestream_batch_sequences_count {}\n", batches.sequences,
                       batches.steps);
    one("moestream_batch_sequences_max", "gauge", "the most sequences one step evaluated together",
        batches.max_sequences);
    one("moestream_batch_tokens_total", "counter", "tokens evaluated in batched steps", batches.tokens);
    return out;
}

}  // namespace mst::cli
