// Byte-for-byte agreement with Python's jinja2: the real chat templates of the supported
// families, rendered on every conversation of cases.json, and the small feature templates
// of edge_cases.json, against the outputs tests/reference/gen_chat_templates.py wrote
// with jinja2 set up as transformers sets it up. A render jinja2 failed must fail here.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>

#include <nlohmann/json.hpp>

#include "chat/chat_template.h"
#include "chat/jinja.h"
#include "core/error.h"

namespace {

using ojson = nlohmann::ordered_json;
const std::string kDir = std::string(MST_TEST_DATA_DIR) + "/chat_templates/";

std::string read_file(const std::string &path) {
    std::ifstream in(path, std::ios::binary);
    EXPECT_TRUE(in.good()) << path;
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

ojson read_json(const std::string &name) { return ojson::parse(read_file(kDir + name)); }

// Where two texts first differ, for a readable failure.
std::string first_difference(const std::string &want, const std::string &got) {
    size_t i = 0;
    while (i < want.size() && i < got.size() && want[i] == got[i]) ++i;
    const size_t from = i > 40 ? i - 40 : 0;
    return "first difference at byte " + std::to_string(i) + "\n  jinja2: ..." + want.substr(from, 120) +
           "\n  ours:   ..." + got.substr(from, 120);
}

TEST(ChatTemplate, RealTemplatesMatchJinja2ByteForByte) {
    const ojson templates = read_json("templates.json");
    const ojson cases = read_json("cases.json");
    const ojson expected = read_json("expected.json");
    ASSERT_GE(templates.size(), 2u);
    size_t compared = 0, failures_checked = 0;
    for (const ojson &t : templates) {
        const std::string name = t["name"];
        const std::string source = read_file(kDir + t["file"].get<std::string>());
        ASSERT_TRUE(expected["templates"].contains(name)) << name << ": run tests/reference/gen_chat_templates.py";
        for (const ojson &c : cases["cases"]) {
            const std::string case_name = c["name"];
            SCOPED_TRACE(name + " / " + case_name);
            mst::chat::ChatInputs in;
            in.messages = c["messages"];
            if (c.value("with_tools", false)) in.tools = cases["tools"];
            in.add_generation_prompt = c.value("add_generation_prompt", true);
            if (t.contains("variables")) in.variables = t["variables"];
            if (c.contains("variables"))
                for (const auto &[k, v] : c["variables"].items()) in.variables[k] = v;
            in.now = expected["now"].get<std::time_t>();
            const ojson &want = expected["templates"][name][case_name];
            if (want.contains("output")) {
                std::string got;
                try {
                    got = mst::chat::apply_chat_template(source, in);
                } catch (const mst::Error &e) {
                    ADD_FAILURE() << "failed where jinja2 rendered: " << e.what();
                    continue;
                }
                const std::string text = want["output"];
                EXPECT_EQ(got, text) << first_difference(text, got);
                ++compared;
            } else {
                // A template's own raise_exception must reach the caller with its message.
                const std::string error = want["error"];
                const std::string raised = error.rfind("TemplateError: ", 0) == 0 ? error.substr(15) : "";
                try {
                    const std::string got = mst::chat::apply_chat_template(source, in);
                    ADD_FAILURE() << "rendered where jinja2 failed (" << error << "): " << got;
                } catch (const mst::Error &e) {
                    EXPECT_EQ(e.code(), MST_ERR_INVALID_ARGUMENT) << e.what();
                    EXPECT_NE(std::string(e.what()).find(raised), std::string::npos) << e.what() << "\njinja2: " << error;
                }
                ++failures_checked;
            }
        }
    }
    std::cout << "compared " << compared << " renders byte for byte, " << failures_checked << " failing as in jinja2\n";
    EXPECT_GE(compared, 100u);
}

TEST(ChatTemplate, EdgeCasesMatchJinja2) {
    const ojson edge = read_json("edge_cases.json");
    const ojson expected = read_json("expected.json");
    for (const ojson &c : edge) {
        const std::string name = c["name"];
        SCOPED_TRACE(name);
        const ojson &want = expected["edge_cases"][name];
        ASSERT_FALSE(want.is_null()) << "run tests/reference/gen_chat_templates.py";
        mst::jinja::RenderOptions options;
        options.now = expected["now"].get<std::time_t>();
        std::string got;
        try {
            const mst::jinja::Template t = mst::jinja::Template::parse(c["template"].get<std::string>());
            got = t.render(mst::jinja::from_json(c.contains("context") ? c["context"] : ojson::object()), options);
        } catch (const mst::Error &e) {
            if (want.contains("output")) ADD_FAILURE() << "failed where jinja2 rendered: " << e.what();
            else EXPECT_NE(std::string(e.what()).find("chat template line"), std::string::npos) << e.what();
            continue;
        }
        if (want.contains("error")) {
            ADD_FAILURE() << "rendered where jinja2 failed (" << want["error"] << "): " << got;
            continue;
        }
        const std::string text = want["output"];
        EXPECT_EQ(got, text) << first_difference(text, got);
    }
}

}  // namespace
