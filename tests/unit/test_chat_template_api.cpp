// The chat template C calls: mst_chat_apply_template on a template's text, and the model
// calls that find the template (chat_template.jinja, or tokenizer_config.json's string or
// list of named templates) and pass the model's special tokens.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "moestream.h"
#include "moestream.hpp"
#include "test_paths.h"

namespace fs = std::filesystem;

namespace {

const char *kTemplate =
    "{{ bos_token }}{% for m in messages %}<{{ m.role }}>{{ m.content }}"
    "{% if m.tool_calls %}{% for c in m.tool_calls %}[{{ c.function.name }} {{ c.function.arguments|tojson }}]{% endfor %}{% endif %}"
    "{% if m.tool_call_id %}#{{ m.tool_call_id }}{% endif %}{% if m.reasoning_content %}({{ m.reasoning_content }}){% endif %}"
    "</{{ m.role }}>{% endfor %}{% if tools %}T{{ tools|length }}{% endif %}"
    "{% if enable_thinking is defined and not enable_thinking %}NT{% endif %}{% if add_generation_prompt %}<assistant>{% endif %}";

std::string apply(const char *tmpl, const std::vector<mst_chat_message> &messages, const mst_chat_template_params *params,
                  mst_status *status = nullptr) {
    size_t n = 0;
    char buf[4096];
    const mst_status s = mst_chat_apply_template(tmpl, messages.data(), messages.size(), params, buf, sizeof buf, &n);
    if (status) *status = s;
    if (s != MST_OK) return std::string("ERROR: ") + mst_last_error();
    EXPECT_EQ(buf[n], '\0');
    return std::string(buf, n);
}

TEST(ChatTemplateApi, AppliesTemplateWithMessagesToolsAndVariables) {
    const std::vector<mst_chat_message> messages = {
        {"system", "Be brief.", nullptr, nullptr, nullptr, nullptr},
        {"user", "Weather?", nullptr, nullptr, nullptr, nullptr},
        {"assistant", nullptr, R"([{"id": "c1", "type": "function", "function": {"name": "w", "arguments": {"city": "Zürich"}}}])",
         nullptr, nullptr, R"({"reasoning_content": "look it up"})"},
        {"tool", "3 °C", nullptr, "c1", "w", nullptr},
    };
    mst_chat_template_params p;
    mst_chat_template_default_params(&p);
    EXPECT_EQ(p.add_generation_prompt, 1);
    p.tools_json = R"([{"type": "function", "function": {"name": "w"}}])";
    p.variables_json = R"({"enable_thinking": false, "bos_token": "<s>"})";
    EXPECT_EQ(apply(kTemplate, messages, &p),
              "<s><system>Be brief.</system><user>Weather?</user><assistant>None[w {\"city\": \"Zürich\"}](look it up)"
              "</assistant><tool>3 °C#c1</tool>T1NT<assistant>");
    p.add_generation_prompt = 0;
    p.tools_json = nullptr;
    p.variables_json = nullptr;
    EXPECT_EQ(apply(kTemplate, {messages[1]}, &p), "<user>Weather?</user>");
    EXPECT_EQ(apply(kTemplate, {}, nullptr), "<assistant>");  // NULL params: the defaults
}

TEST(ChatTemplateApi, ReportsTheNeededSize) {
    const std::vector<mst_chat_message> messages = {{"user", "hello", nullptr, nullptr, nullptr, nullptr}};
    size_t n = 0;
    EXPECT_EQ(mst_chat_apply_template(kTemplate, messages.data(), 1, nullptr, nullptr, 0, &n), MST_ERR_BUFFER_TOO_SMALL);
    EXPECT_EQ(n, std::string("<user>hello</user><assistant>").size());
    char small[8];
    EXPECT_EQ(mst_chat_apply_template(kTemplate, messages.data(), 1, nullptr, small, sizeof small, &n), MST_ERR_BUFFER_TOO_SMALL);
    EXPECT_NE(std::string(mst_last_error()).find("buffer holds 8"), std::string::npos) << mst_last_error();
    std::string exact(n, '\0');  // exactly the size: no room for the NUL, still OK
    EXPECT_EQ(mst_chat_apply_template(kTemplate, messages.data(), 1, nullptr, exact.data(), exact.size(), &n), MST_OK);
    EXPECT_EQ(exact, "<user>hello</user><assistant>");
}

TEST(ChatTemplateApi, NullBufferWithACountIsNamed) {
    size_t n = 0;
    EXPECT_EQ(mst_chat_apply_template(kTemplate, nullptr, 0, nullptr, nullptr, 4, &n), MST_ERR_INVALID_ARGUMENT);
    EXPECT_NE(std::string(mst_last_error()).find("out is NULL but capacity is 4"), std::string::npos) << mst_last_error();
    char out[64];
    EXPECT_EQ(mst_chat_apply_template(kTemplate, nullptr, 2, nullptr, out, sizeof out, &n), MST_ERR_INVALID_ARGUMENT);
    EXPECT_NE(std::string(mst_last_error()).find("messages is NULL but n_messages is 2"), std::string::npos)
        << mst_last_error();
}

TEST(ChatTemplateApi, BadArgumentsAndTemplatesGiveStatusesAndMessages) {
    const std::vector<mst_chat_message> ok = {{"user", "x", nullptr, nullptr, nullptr, nullptr}};
    mst_status s = MST_OK;
    size_t n = 0;
    EXPECT_EQ(mst_chat_apply_template(nullptr, ok.data(), 1, nullptr, nullptr, 0, &n), MST_ERR_INVALID_ARGUMENT);
    EXPECT_EQ(mst_chat_apply_template(kTemplate, nullptr, 2, nullptr, nullptr, 0, &n), MST_ERR_INVALID_ARGUMENT);
    EXPECT_EQ(mst_chat_apply_template(kTemplate, ok.data(), 1, nullptr, nullptr, 0, nullptr), MST_ERR_INVALID_ARGUMENT);

    EXPECT_NE(apply(kTemplate, {{nullptr, "x", nullptr, nullptr, nullptr, nullptr}}, nullptr, &s).find("messages[0].role is NULL"),
              std::string::npos);
    EXPECT_EQ(s, MST_ERR_INVALID_ARGUMENT);
    EXPECT_NE(apply(kTemplate, {{"assistant", "x", "[oops", nullptr, nullptr, nullptr}}, nullptr, &s)
                  .find("messages[0].tool_calls_json is not valid JSON"),
              std::string::npos);
    EXPECT_NE(apply(kTemplate, {{"assistant", "x", "{}", nullptr, nullptr, nullptr}}, nullptr, &s).find("must be a JSON array"),
              std::string::npos);
    EXPECT_NE(apply(kTemplate, {{"user", "x", nullptr, nullptr, nullptr, "[1]"}}, nullptr, &s).find("must be a JSON object"),
              std::string::npos);
    mst_chat_template_params p;
    mst_chat_template_default_params(&p);
    p.variables_json = "[]";
    EXPECT_NE(apply(kTemplate, ok, &p, &s).find("variables_json must be a JSON object"), std::string::npos);
    p.struct_size = 1;
    EXPECT_NE(apply(kTemplate, ok, &p, &s).find("struct_size"), std::string::npos);

    EXPECT_NE(apply("a\n{% if x %}", ok, nullptr, &s).find("line 2: 'if' is never closed"), std::string::npos);
    EXPECT_EQ(s, MST_ERR_BAD_FORMAT);
    EXPECT_NE(apply("{{ raise_exception('roles must alternate') }}", ok, nullptr, &s).find("roles must alternate"),
              std::string::npos);
    EXPECT_EQ(s, MST_ERR_INVALID_ARGUMENT);
    EXPECT_NE(apply("{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}", ok, nullptr, &s).find("deeper than"), std::string::npos);
    EXPECT_EQ(s, MST_ERR_INVALID_ARGUMENT);
}

TEST(ChatTemplateApi, CppWrapper) {
    mst::ChatMessage user{"user", "hi", false, "", "", "", ""};
    mst::ChatMessage call{"assistant", "", true, R"([{"function": {"name": "f", "arguments": {}}}])", "", "", ""};
    EXPECT_EQ(mst::apply_chat_template(kTemplate, {user, call}), "<user>hi</user><assistant>None[f {}]</assistant><assistant>");
    try {
        mst::apply_chat_template("{{ x.y }}", {user});
        ADD_FAILURE() << "no exception";
    } catch (const mst::Exception &e) {
        EXPECT_EQ(e.status(), MST_ERR_INVALID_ARGUMENT);
        EXPECT_NE(std::string(e.what()).find("'x' is undefined"), std::string::npos) << e.what();
    }
}

// A private copy of the tiny checkpoint whose chat template files a test rewrites.
class ModelChatTemplate : public ::testing::Test {
protected:
    void SetUp() override {
        dir_ = mst::test::make_temp_dir("mst_chat_template_");
        ASSERT_FALSE(dir_.empty());
        fs::copy(mst::test::data_path("qwen3_moe_tiny"), dir_, fs::copy_options::recursive);
        std::ifstream in(fs::path(dir_) / "tokenizer_config.json");
        config_ = nlohmann::json::parse(in);
        config_["bos_token"] = "<|endoftext|>";
        config_["eos_token"] = {{"content", "<|im_end|>"}, {"lstrip", false}};
    }
    void TearDown() override {
        if (!dir_.empty()) fs::remove_all(dir_);
    }
    void write(const std::string &name, const std::string &text) {
        std::ofstream out(fs::path(dir_) / name, std::ios::binary | std::ios::trunc);
        out << text;
    }
    void write_config() { write("tokenizer_config.json", config_.dump(2)); }
    mst::ModelHandle load() { return mst::ModelHandle(dir_); }
    std::string template_of(const mst::ModelHandle &m, const char *name, mst_status *status) {
        size_t n = 0;
        char buf[1024];
        *status = mst_model_chat_template(m.get(), name, buf, sizeof buf, &n);
        return *status == MST_OK ? std::string(buf, n) : std::string(mst_last_error());
    }

    std::string dir_;
    nlohmann::json config_;
};

TEST_F(ModelChatTemplate, FromTokenizerConfigStringWithSpecialTokens) {
    config_["chat_template"] = "{{ bos_token }}{% for m in messages %}{{ m.content }}{{ eos_token }}{% endfor %}";
    write_config();
    const mst::ModelHandle m = load();
    mst_status s = MST_OK;
    EXPECT_EQ(template_of(m, nullptr, &s), config_["chat_template"].get<std::string>());
    EXPECT_EQ(s, MST_OK);
    EXPECT_EQ(mst::apply_chat_template(m, {{"user", "hi", false, "", "", "", ""}}), "<|endoftext|>hi<|im_end|>");
    // The caller's variables override the model's tokens.
    mst_chat_template_params p = mst::chat_template_params();
    p.variables_json = R"({"bos_token": "[bos]"})";
    EXPECT_EQ(mst::apply_chat_template(m, {{"user", "hi", false, "", "", "", ""}}, p), "[bos]hi<|im_end|>");
}

TEST_F(ModelChatTemplate, JinjaFileWinsOverTokenizerConfig) {
    config_["chat_template"] = "from config";
    write_config();
    write("chat_template.jinja", "from file {{ messages|length }}\n");
    const mst::ModelHandle m = load();
    EXPECT_EQ(mst::apply_chat_template(m, {{"user", "x", false, "", "", "", ""}}), "from file 1");
}

TEST_F(ModelChatTemplate, NamedTemplateList) {
    config_["chat_template"] = {{{"name", "default"}, {"template", "D{{ messages|length }}"}},
                                {{"name", "tool_use"}, {"template", "T{{ tools|length }}"}},
                                {{"name", "rag"}, {"template", "R"}}};
    write_config();
    const mst::ModelHandle m = load();
    mst_status s = MST_OK;
    EXPECT_EQ(template_of(m, nullptr, &s), "D{{ messages|length }}");
    EXPECT_EQ(template_of(m, "rag", &s), "R");
    EXPECT_NE(template_of(m, "nope", &s).find("no chat template named 'nope' (the model has 'default', 'tool_use', 'rag')"),
              std::string::npos);
    EXPECT_EQ(s, MST_ERR_INVALID_ARGUMENT);
    const std::vector<mst::ChatMessage> one = {{"user", "x", false, "", "", "", ""}};
    EXPECT_EQ(mst::apply_chat_template(m, one), "D1");
    mst_chat_template_params p = mst::chat_template_params();
    p.tools_json = R"([{"type": "function", "function": {"name": "f"}}, {"type": "function", "function": {"name": "g"}}])";
    EXPECT_EQ(mst::apply_chat_template(m, one, p), "T2");  // tools pick "tool_use", as transformers does
    p.template_name = "rag";
    EXPECT_EQ(mst::apply_chat_template(m, one, p), "R");
}

TEST_F(ModelChatTemplate, MissingTemplateIsUnsupported) {
    config_.erase("chat_template");
    write_config();
    const mst::ModelHandle m = load();
    mst_status s = MST_OK;
    EXPECT_NE(template_of(m, nullptr, &s).find("has no chat template"), std::string::npos);
    EXPECT_EQ(s, MST_ERR_UNSUPPORTED);
}

}  // namespace
