// moestream C++ API: header-only RAII wrappers over the C ABI in moestream.h.
// Failures throw mst::Exception carrying the status and mst_last_error()'s message.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "moestream.h"

namespace mst {

class Exception : public std::runtime_error {
public:
    Exception(mst_status status, const std::string &message)
        : std::runtime_error(std::string(mst_status_string(status)) + ": " + message), status_(status) {}
    mst_status status() const noexcept { return status_; }

private:
    mst_status status_;
};

inline void check(mst_status status) {
    if (status != MST_OK) throw Exception(status, mst_last_error());
}

inline mst_model_params model_params() {
    mst_model_params p;
    mst_model_default_params(&p);
    return p;
}
inline mst_session_params session_params() {
    mst_session_params p;
    mst_session_default_params(&p);
    return p;
}
inline mst_sampler_params sampler_params() {
    mst_sampler_params p;
    mst_sampler_default_params(&p);
    return p;
}
inline mst_generate_params generate_params() {
    mst_generate_params p;
    mst_generate_default_params(&p);
    return p;
}

class ModelHandle {
public:
    explicit ModelHandle(const std::string &path, const mst_model_params &params = model_params()) {
        mst_model *raw = nullptr;
        check(mst_model_load(path.c_str(), &params, &raw));
        model_.reset(raw);
    }

    mst_model *get() const { return model_.get(); }

    mst_model_info info() const {
        mst_model_info i{};
        i.struct_size = sizeof i;
        check(mst_model_get_info(model_.get(), &i));
        return i;
    }

    // The types the weights are stored in (mst_model_get_weight_type), non-expert first.
    std::vector<mst_weight_type> weight_types() const {
        std::vector<mst_weight_type> types(size_t(info().n_weight_types));
        for (size_t i = 0; i < types.size(); ++i) {
            types[i].struct_size = sizeof types[i];
            check(mst_model_get_weight_type(model_.get(), int32_t(i), &types[i]));
        }
        return types;
    }

    mst_memory_stats memory() const {
        mst_memory_stats m{};
        m.struct_size = sizeof m;
        check(mst_model_get_memory_stats(model_.get(), &m));
        return m;
    }
    mst_backend_stats backend_stats() const {
        mst_backend_stats m{};
        m.struct_size = sizeof m;
        check(mst_model_get_backend_stats(model_.get(), &m));
        return m;
    }

    // The expert cache's counters for one layer, or for the whole model (layer -1).
    mst_cache_stats cache_stats(int32_t layer = -1) const {
        mst_cache_stats c{};
        c.struct_size = sizeof c;
        check(mst_model_get_cache_stats(model_.get(), layer, &c));
        return c;
    }

    std::vector<int32_t> tokenize(std::string_view text) const {
        size_t n = 0;
        mst_status s = mst_tokenize(model_.get(), text.data(), text.size(), nullptr, 0, &n);
        if (s != MST_OK && s != MST_ERR_BUFFER_TOO_SMALL) check(s);
        std::vector<int32_t> ids(n);
        check(mst_tokenize(model_.get(), text.data(), text.size(), ids.data(), ids.size(), &n));
        return ids;
    }

    std::string detokenize(const std::vector<int32_t> &ids) const {
        size_t n = 0;
        mst_status s = mst_detokenize(model_.get(), ids.data(), ids.size(), nullptr, 0, &n);
        if (s != MST_OK && s != MST_ERR_BUFFER_TOO_SMALL) check(s);
        std::string text(n, '\0');
        check(mst_detokenize(model_.get(), ids.data(), ids.size(), text.data(), text.size(), &n));
        return text;
    }

private:
    struct Free {
        void operator()(mst_model *m) const { mst_model_free(m); }
    };
    std::unique_ptr<mst_model, Free> model_;
};

// A session keeps its model alive, so a ModelHandle may be destroyed first. One session
// serves one call at a time: a call while another thread is inside it throws with
// MST_ERR_BUSY.
class SessionHandle {
public:
    explicit SessionHandle(const ModelHandle &model, const mst_session_params &params = session_params()) {
        mst_session *raw = nullptr;
        check(mst_session_create(model.get(), &params, &raw));
        session_.reset(raw);
    }

    mst_session *get() const { return session_.get(); }

    void eval(const std::vector<int32_t> &tokens) { check(mst_session_eval(session_.get(), tokens.data(), tokens.size())); }

    std::vector<float> logits() const {
        const float *data = nullptr;
        size_t n = 0;
        check(mst_session_logits(session_.get(), &data, &n));
        return std::vector<float>(data, data + n);
    }

    int32_t sample(const mst_sampler_params &params = sampler_params()) {
        int32_t token = -1;
        check(mst_session_sample(session_.get(), &params, &token));
        return token;
    }

    // on_token(token, piece) returns true to stop.
    using OnToken = std::function<bool(int32_t, std::string_view)>;
    mst_stop_reason generate(const std::vector<int32_t> &prompt, const mst_generate_params &params,
                             const OnToken &on_token) {
        mst_stop_reason reason = MST_STOP_NONE;
        auto trampoline = [](int32_t token, const char *piece, size_t len, void *user) -> int {
            return (*static_cast<const OnToken *>(user))(token, std::string_view(piece, len)) ? 1 : 0;
        };
        check(mst_generate(session_.get(), prompt.data(), prompt.size(), &params,
                           on_token ? +trampoline : nullptr, const_cast<OnToken *>(&on_token), &reason));
        return reason;
    }

    mst_session_stats stats() const {
        mst_session_stats s{};
        s.struct_size = sizeof s;
        check(mst_session_get_stats(session_.get(), &s));
        return s;
    }

    size_t n_past() const { return mst_session_n_past(session_.get()); }
    void reset() { mst_session_reset(session_.get()); }
    void set_seed(uint64_t seed) { check(mst_session_set_seed(session_.get(), seed)); }
    void trim(size_t n_keep) { check(mst_session_trim(session_.get(), n_keep)); }

    std::vector<uint8_t> save_state() const {
        size_t n = 0;
        const mst_status size_query = mst_session_state_save(session_.get(), nullptr, 0, &n);
        if (size_query != MST_ERR_BUFFER_TOO_SMALL) check(size_query);
        std::vector<uint8_t> bytes(n);
        check(mst_session_state_save(session_.get(), bytes.data(), bytes.size(), &n));
        return bytes;
    }
    void load_state(const std::vector<uint8_t> &bytes) {
        check(mst_session_state_load(session_.get(), bytes.data(), bytes.size()));
    }
    void save_state_file(const std::string &path) const { check(mst_session_state_save_file(session_.get(), path.c_str())); }
    void load_state_file(const std::string &path) { check(mst_session_state_load_file(session_.get(), path.c_str())); }

private:
    struct Free {
        void operator()(mst_session *s) const { mst_session_free(s); }
    };
    std::unique_ptr<mst_session, Free> session_;
};

// mst_sessions_eval_batch: tokens[i] appended to *sessions[i], the sessions of one model
// evaluated together (one read of an expert serves every session routed to it).
inline void eval_batch(const std::vector<SessionHandle *> &sessions, const std::vector<std::vector<int32_t>> &tokens) {
    if (sessions.size() != tokens.size())
        throw Exception(MST_ERR_INVALID_ARGUMENT, "eval_batch: " + std::to_string(sessions.size()) + " sessions but " +
                                                      std::to_string(tokens.size()) + " token lists");
    std::vector<mst_session *> raw;
    std::vector<const int32_t *> lists;
    std::vector<size_t> counts;
    for (size_t i = 0; i < sessions.size(); ++i) {
        raw.push_back(sessions[i] ? sessions[i]->get() : nullptr);
        lists.push_back(tokens[i].data());
        counts.push_back(tokens[i].size());
    }
    check(mst_sessions_eval_batch(raw.data(), lists.data(), counts.data(), raw.size()));
}

// mst_batcher: set generate_params().batcher = batcher.get() in the generations (one per
// thread and session) that should decode as one batch.
class BatcherHandle {
public:
    explicit BatcherHandle(const ModelHandle &model, uint32_t gather_wait_us = 2000) {
        mst_batcher_params p;
        mst_batcher_default_params(&p);
        p.gather_wait_us = gather_wait_us;
        mst_batcher *raw = nullptr;
        check(mst_batcher_create(model.get(), &p, &raw));
        batcher_.reset(raw);
    }
    mst_batcher *get() const { return batcher_.get(); }
    mst_batcher_stats stats() const {
        mst_batcher_stats s{};
        s.struct_size = sizeof s;
        check(mst_batcher_get_stats(batcher_.get(), &s));
        return s;
    }

private:
    struct Free {
        void operator()(mst_batcher *b) const { mst_batcher_free(b); }
    };
    std::unique_ptr<mst_batcher, Free> batcher_;
};


// ---- chat templates ----------------------------------------------------------------
// A message for apply_chat_template; empty optional strings are left out (NULL).
struct ChatMessage {
    std::string role;
    std::string content;
    bool content_is_null = false;  // None content (an assistant turn with only tool calls)
    std::string tool_calls_json;
    std::string tool_call_id;
    std::string name;
    std::string extra_json;
};

inline mst_chat_template_params chat_template_params() {
    mst_chat_template_params p;
    mst_chat_template_default_params(&p);
    return p;
}

namespace detail {
inline std::vector<mst_chat_message> chat_messages(const std::vector<ChatMessage> &messages) {
    auto opt = [](const std::string &s) { return s.empty() ? nullptr : s.c_str(); };
    std::vector<mst_chat_message> out;
    for (const ChatMessage &m : messages)
        out.push_back({m.role.c_str(), m.content_is_null ? nullptr : m.content.c_str(), opt(m.tool_calls_json),
                       opt(m.tool_call_id), opt(m.name), opt(m.extra_json)});
    return out;
}

template <typename Call>
std::string text_from(Call call) {
    size_t n = 0;
    const mst_status s = call(nullptr, 0, &n);
    if (s != MST_OK && s != MST_ERR_BUFFER_TOO_SMALL) check(s);
    std::string text(n + 1, '\0');
    check(call(text.data(), text.size(), &n));
    text.resize(n);
    return text;
}
}  // namespace detail

// Render a chat template's text (mst_chat_apply_template).
inline std::string apply_chat_template(const std::string &template_text, const std::vector<ChatMessage> &messages,
                                       const mst_chat_template_params &params = chat_template_params()) {
    const std::vector<mst_chat_message> m = detail::chat_messages(messages);
    return detail::text_from([&](char *out, size_t capacity, size_t *n) {
        return mst_chat_apply_template(template_text.c_str(), m.data(), m.size(), &params, out, capacity, n);
    });
}

// Render the model's own chat template (mst_model_apply_chat_template).
inline std::string apply_chat_template(const ModelHandle &model, const std::vector<ChatMessage> &messages,
                                       const mst_chat_template_params &params = chat_template_params()) {
    const std::vector<mst_chat_message> m = detail::chat_messages(messages);
    return detail::text_from([&](char *out, size_t capacity, size_t *n) {
        return mst_model_apply_chat_template(model.get(), m.data(), m.size(), &params, out, capacity, n);
    });
}

}  // namespace mst
