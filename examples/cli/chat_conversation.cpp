#include "chat_conversation.h"

#include <algorithm>
#include <utility>

namespace mst::cli {
namespace {

ChatMessage message(std::string role, std::string content) {
    ChatMessage m;
    m.role = std::move(role);
    m.content = std::move(content);
    return m;
}

}  // namespace

Conversation::Conversation(const ModelHandle &model, const mst_chat_template_params &params, std::string system)
    : model_(model), params_(params), added_(model.tokenize("")) {
    params_.add_generation_prompt = 1;
    if (!system.empty()) messages_.push_back(message("system", std::move(system)));
}

std::string Conversation::render(const std::vector<ChatMessage> &messages) const {
    return apply_chat_template(model_, messages, params_);
}

std::vector<int32_t> Conversation::encode(std::string_view text) const {
    // As transformers' apply_chat_template(tokenize=True): the template writes the special
    // tokens it wants (bos_token), so those the tokenizer's post-processor adds to any text
    // (what it makes of "") would double them, or put a BOS in the middle of a conversation.
    std::vector<int32_t> ids = model_.tokenize(text);
    if (!added_.empty() && ids.size() >= added_.size() && std::equal(added_.begin(), added_.end(), ids.begin()))
        ids.erase(ids.begin(), ids.begin() + ptrdiff_t(added_.size()));
    return ids;
}

size_t Conversation::turns() const {
    return size_t(std::count_if(messages_.begin(), messages_.end(), [](const ChatMessage &m) { return m.role == "user"; }));
}

TurnPlan Conversation::plan(const std::string &user_text) {
    std::vector<ChatMessage> next = messages_;
    next.push_back(message("user", user_text));
    pending_render_ = render(next);
    TurnPlan plan;
    if (pending_render_.starts_with(text_)) {
        // Tokenizing only the new text keeps the session's tokens (the answers as sampled,
        // which need not be the tokenizer's own split of their text) as they are.
        plan.tokens = encode(std::string_view(pending_render_).substr(text_.size()));
        return plan;
    }
    plan.restart = true;
    plan.tokens = encode(pending_render_);
    const auto mismatch = std::mismatch(tokens_.begin(), tokens_.end(), plan.tokens.begin(), plan.tokens.end());
    plan.common_tokens = size_t(mismatch.first - tokens_.begin());
    return plan;
}

void Conversation::commit(const std::string &user_text, const TurnPlan &plan, const std::vector<int32_t> &answer,
                          int32_t end_of_turn) {
    messages_.push_back(message("user", user_text));
    if (plan.restart) {
        tokens_.clear();
        text_.clear();
    }
    tokens_.insert(tokens_.end(), plan.tokens.begin(), plan.tokens.end());
    text_ = pending_render_;
    // A model's vocabulary may be larger than its tokenizer's (padding rows); such ids have
    // no text, and a template can only be given text.
    std::vector<int32_t> with_text;
    for (int32_t id : answer)
        if (mst_token_text(model_.get(), id)) with_text.push_back(id);
    const std::string answer_text = model_.detokenize(with_text);
    tokens_.insert(tokens_.end(), answer.begin(), answer.end());
    text_ += answer_text;
    if (end_of_turn >= 0) {
        tokens_.push_back(end_of_turn);
        text_ += model_.detokenize({end_of_turn});
    }
    messages_.push_back(message("assistant", answer_text));
}

void Conversation::session_cleared(bool keep_messages) {
    tokens_.clear();
    text_.clear();
    if (!keep_messages) {
        const bool has_system = !messages_.empty() && messages_.front().role == "system";
        messages_.erase(messages_.begin() + (has_system ? 1 : 0), messages_.end());
    }
}

}  // namespace mst::cli
