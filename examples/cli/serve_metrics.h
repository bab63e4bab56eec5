// What `moestream serve` counts, and its /metrics page in Prometheus' text format.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>

#include "moestream.hpp"

namespace mst::cli {

class ServeMetrics {
public:
    void count_request(const std::string &endpoint, int status);
    void count_generation(uint64_t prompt_tokens, uint64_t reused_tokens, uint64_t completion_tokens, double seconds);

    std::atomic<int> in_flight{0};  // completion requests being answered (waiting or running)

    // The page: requests by endpoint and status, tokens, decode speed, the model's expert
    // bytes and cache hits, sessions busy, requests waiting and the sizes of batched steps.
    std::string prometheus(const ModelHandle &model, int sessions, int busy, int waiting,
                           const mst_batcher_stats &batches) const;

private:
    mutable std::mutex mutex_;
    std::map<std::pair<std::string, int>, uint64_t> requests_;
    uint64_t prompt_tokens_ = 0, reused_tokens_ = 0, completion_tokens_ = 0;
    double generation_seconds_ = 0.0;
};

}  // namespace mst::cli
