#include "session/session_state.h"

#include <xxhash.h>

#include <algorithm>
#include <cstring>
#include <sstream>

#include "core/error.h"
#include "session/session.h"

namespace mst {
namespace {

struct StateHeader {
    char magic[8];
    uint32_t version;
    uint32_t n_past;
    uint64_t fingerprint;
    uint32_t n_vocab;
    uint32_t has_logits;
    uint32_t rng_bytes;
    uint32_t reserved;
    uint64_t state_floats;
};
static_assert(sizeof(StateHeader) == 48);

size_t total_floats(const std::vector<std::span<float>> &spans) {
    size_t n = 0;
    for (const auto &s : spans) n += s.size();
    return n;
}

// memcpy that takes an empty range from a null pointer (an empty vector's data()).
void copy_bytes(void *dst, const uint8_t *src, size_t n) {
    if (n) std::memcpy(dst, src, n);
}

class ByteWriter {
public:
    explicit ByteWriter(size_t capacity) { bytes_.reserve(capacity); }
    void put(const void *data, size_t n) {
        const auto *p = static_cast<const uint8_t *>(data);
        bytes_.insert(bytes_.end(), p, p + n);
    }
    std::vector<uint8_t> &bytes() { return bytes_; }

private:
    std::vector<uint8_t> bytes_;
};

}  // namespace

uint64_t model_fingerprint(const LoadedModel &model) {
    XXH64_state_t *h = XXH64_createState();
    if (!h) throw std::bad_alloc();
    XXH64_reset(h, 0);
    const std::string config = model.config.model_type + "\n" + model.config.raw.dump();
    XXH64_update(h, config.data(), config.size());
    const ModelSizes sizes = model.model->sizes();
    const uint64_t numbers[] = {uint64_t(model.tokenizer->vocab_size()), sizes.n_params_total, sizes.resident_bytes,
                                sizes.expert_bytes_total, sizes.expert_bytes_each};
    XXH64_update(h, numbers, sizeof numbers);
    const auto &tensors = model.checkpoint->tensors();
    if (!tensors.empty()) {
        const TensorInfo &first = tensors.front();
        std::vector<uint8_t> head(size_t(std::min<uint64_t>(first.nbytes, 4096)));
        model.checkpoint->file(first.file_index).pread_exact(head.data(), head.size(), first.offset);
        XXH64_update(h, head.data(), head.size());
    }
    const uint64_t digest = XXH64_digest(h);
    XXH64_freeState(h);
    return digest;
}

std::vector<uint8_t> Session::save_state() {
    const int32_t n = n_past();
    const std::vector<std::span<float>> spans = state_->contents(n);
    std::ostringstream rng_text;
    rng_text << rng_;
    const std::string rng = rng_text.str();
    const bool has_logits = n_logit_rows_ > 0;
    const std::span<const float> logits = has_logits ? last_logits() : std::span<const float>();

    StateHeader h{};
    std::memcpy(h.magic, kSessionStateMagic, sizeof h.magic);
    h.version = kSessionStateVersion;
    h.n_past = uint32_t(n);
    h.fingerprint = model_fingerprint(model_);
    h.n_vocab = uint32_t(n_vocab());
    h.has_logits = has_logits ? 1 : 0;
    h.rng_bytes = uint32_t(rng.size());
    h.state_floats = total_floats(spans);
    ByteWriter w(sizeof h + size_t(n) * 4 + rng.size() + logits.size_bytes() + h.state_floats * 4 + 8);
    w.put(&h, sizeof h);
    w.put(history_.data(), history_.size() * sizeof(int32_t));
    w.put(rng.data(), rng.size());
    w.put(logits.data(), logits.size_bytes());
    for (const auto &s : spans) w.put(s.data(), s.size_bytes());
    const uint64_t sum = XXH64(w.bytes().data(), w.bytes().size(), 0);
    w.put(&sum, sizeof sum);
    return std::move(w.bytes());
}

void Session::restore_state(std::span<const uint8_t> bytes) {
    StateHeader h{};
    if (bytes.size() < sizeof h + 8)
        fail(MST_ERR_BAD_FORMAT, "session state of {} bytes is truncated: the header alone takes {}", bytes.size(),
             sizeof h + 8);
    std::memcpy(&h, bytes.data(), sizeof h);
    if (std::memcmp(h.magic, kSessionStateMagic, sizeof h.magic) != 0)
        fail(MST_ERR_BAD_FORMAT, "not a moestream session state (the magic MSTSESS is missing)");
    if (h.version != kSessionStateVersion)
        fail(MST_ERR_UNSUPPORTED, "session state format version {} is not supported (this library reads {})",
             h.version, kSessionStateVersion);
    const uint64_t expected = uint64_t(sizeof h) + uint64_t(h.n_past) * 4 + h.rng_bytes +
                              (h.has_logits ? uint64_t(h.n_vocab) * 4 : 0) + h.state_floats * 4 + 8;
    if (h.state_floats > bytes.size() || expected != bytes.size())
        fail(MST_ERR_BAD_FORMAT, "session state is {} bytes but its header describes {}: truncated or corrupted",
             bytes.size(), expected);
    uint64_t sum = 0;
    std::memcpy(&sum, bytes.data() + bytes.size() - 8, 8);
    if (XXH64(bytes.data(), bytes.size() - 8, 0) != sum)
        fail(MST_ERR_CHECKSUM, "session state checksum does not match its contents: the state is corrupted");
    if (h.fingerprint != model_fingerprint(model_) || h.n_vocab != uint32_t(n_vocab()))
        fail(MST_ERR_INVALID_ARGUMENT, "session state was saved from another model than '{}' ({})", model_.path,
             model_.config.model_type);
    if (h.n_past > uint32_t(n_ctx_))
        fail(MST_ERR_CONTEXT_FULL, "session state holds {} tokens; this session's n_ctx is {}", h.n_past, n_ctx_);
    const std::vector<std::span<float>> spans = state_->contents(int32_t(h.n_past));
    if (total_floats(spans) != h.state_floats)
        fail(MST_ERR_BAD_FORMAT, "session state holds {} state values; this model keeps {} for {} tokens",
             h.state_floats, total_floats(spans), h.n_past);

    const uint8_t *p = bytes.data() + sizeof h;
    std::vector<int32_t> tokens(h.n_past);
    copy_bytes(tokens.data(), p, tokens.size() * 4);
    p += tokens.size() * 4;
    for (const int32_t t : tokens)
        if (t < 0 || t >= n_vocab()) fail(MST_ERR_BAD_FORMAT, "session state holds token id {} outside the vocabulary", t);
    std::mt19937_64 rng;
    std::istringstream rng_text(std::string(reinterpret_cast<const char *>(p), h.rng_bytes));
    if (!(rng_text >> rng)) fail(MST_ERR_BAD_FORMAT, "session state's random generator does not parse");
    p += h.rng_bytes;
    std::vector<float> logits(h.has_logits ? size_t(h.n_vocab) : 0);
    copy_bytes(logits.data(), p, logits.size() * 4);
    p += logits.size() * 4;

    // Every check passed: only now does the session change.
    for (const auto &s : spans) {
        copy_bytes(s.data(), p, s.size_bytes());
        p += s.size_bytes();
    }
    state_->restored(int32_t(h.n_past));
    history_ = std::move(tokens);
    n_past_.store(int32_t(h.n_past), std::memory_order_relaxed);
    rng_ = rng;
    logits_ = std::move(logits);
    n_logit_rows_ = h.has_logits ? 1 : 0;
}

}  // namespace mst
