// The conversation of `moestream chat` and what its session already holds. Each turn the
// whole conversation is rendered through the model's chat template; when the text the
// session holds is a prefix of the new rendering, only the rest is tokenized and
// evaluated, so a long conversation costs only its new tokens. A template that rewrites
// history (Qwen3 drops the thinking of earlier answers) breaks the prefix: then the
// session starts over from the new rendering, and the plan says how many tokens the two
// had in common.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "moestream.hpp"

namespace mst::cli {

struct TurnPlan {
    std::vector<int32_t> tokens;  // to evaluate before the answer
    bool restart = false;         // the session must be reset first (history was rewritten)
    size_t common_tokens = 0;     // with restart: the tokens the old and new context shared
};

class Conversation {
public:
    Conversation(const ModelHandle &model, const mst_chat_template_params &params, std::string system);

    // Renders the conversation with `user_text` as the next user message and plans its
    // evaluation. Nothing changes until commit(); a template error throws mst::Exception.
    TurnPlan plan(const std::string &user_text);
    // The plan was evaluated (after a reset when it said so) and `answer` generated and
    // evaluated after it; `end_of_turn` is the end-of-sequence token evaluated after the
    // answer, -1 when the answer ended otherwise.
    void commit(const std::string &user_text, const TurnPlan &plan, const std::vector<int32_t> &answer,
                int32_t end_of_turn);
    // The session was reset (/reset, or a failure that left it unknown): forget what it
    // held; with `keep_messages` false forget the conversation too.
    void session_cleared(bool keep_messages);

    size_t context_tokens() const { return tokens_.size(); }
    size_t turns() const;

private:
    std::string render(const std::vector<ChatMessage> &messages) const;
    std::vector<int32_t> encode(std::string_view text) const;

    const ModelHandle &model_;
    mst_chat_template_params params_;
    std::vector<int32_t> added_;  // what the tokenizer's post-processor adds to every text
    std::vector<ChatMessage> messages_;
    std::vector<int32_t> tokens_;  // what the session holds
    std::string text_;             // the text of tokens_, as the template and the answers gave it
    std::string pending_render_;   // plan()'s rendering, for commit()
};

}  // namespace mst::cli
