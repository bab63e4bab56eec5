#include "session/text_stream.h"

#include <algorithm>
#include <utility>

namespace mst {

size_t complete_utf8_prefix(std::string_view s) {
    // Look back at most 3 bytes for the lead byte of a character that is not finished.
    const size_t n = s.size();
    for (size_t back = 1; back <= std::min<size_t>(3, n); ++back) {
        const unsigned char c = static_cast<unsigned char>(s[n - back]);
        if ((c & 0xC0) == 0x80) continue;  // continuation byte: keep looking for the lead
        const size_t need = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
        return need > back ? n - back : n;
    }
    return n;  // only continuation bytes (invalid UTF-8): emit as is
}

std::string TextStream::push(std::string_view bytes) {
    if (stopped_) return {};
    pending_.append(bytes);
    size_t stop_at = std::string::npos;
    for (const std::string &stop : stops_) {
        if (stop.empty()) continue;
        const size_t at = pending_.find(stop);
        if (at != std::string::npos) stop_at = std::min(stop_at, at);
    }
    if (stop_at != std::string::npos) {
        stopped_ = true;
        std::string out = pending_.substr(0, stop_at);
        pending_.clear();
        return out;
    }
    // Hold back the longest tail that is a proper prefix of some stop string.
    size_t hold = 0;
    for (const std::string &stop : stops_)
        for (size_t len = std::min(stop.size() - (stop.empty() ? 0 : 1), pending_.size()); len > hold; --len)
            if (pending_.compare(pending_.size() - len, len, stop, 0, len) == 0) {
                hold = len;
                break;
            }
    size_t emit = complete_utf8_prefix(std::string_view(pending_).substr(0, pending_.size() - hold));
    std::string out = pending_.substr(0, emit);
    pending_.erase(0, emit);
    return out;
}

std::string TextStream::flush() {
    if (stopped_) return {};
    return std::exchange(pending_, {});
}

}  // namespace mst
