// The Jinja interpreter on its own: error messages that name the line and the problem,
// jinja2's Undefined semantics, and the limits that stop a hostile template (unbounded
// recursion, huge output, runaway loops, deep nesting) with an error instead of a crash.
#include <gtest/gtest.h>

#include <string>

#include "chat/jinja.h"
#include "core/error.h"

namespace {

using mst::jinja::RenderOptions;
using mst::jinja::Template;
using mst::jinja::Value;

std::string render(const std::string &source, const nlohmann::ordered_json &context = nlohmann::ordered_json::object(),
                   const RenderOptions &options = {}) {
    return Template::parse(source).render(mst::jinja::from_json(context), options);
}

// The error of parsing + rendering `source`, or "" if it succeeded.
std::string error_of(const std::string &source, mst_status *code = nullptr, const RenderOptions &options = {},
                     const nlohmann::ordered_json &context = nlohmann::ordered_json::object()) {
    try {
        render(source, context, options);
    } catch (const mst::Error &e) {
        if (code) *code = e.code();
        return e.what();
    }
    return "";
}

void expect_error(const std::string &source, mst_status code, const std::string &fragment, const RenderOptions &options = {}) {
    mst_status got = MST_OK;
    const std::string message = error_of(source, &got, options);
    ASSERT_FALSE(message.empty()) << "no error for: " << source;
    EXPECT_EQ(got, code) << message;
    EXPECT_NE(message.find(fragment), std::string::npos) << "message: " << message << "\nexpected to contain: " << fragment;
}

TEST(Jinja, SyntaxErrorsNameTheLineAndTheProblem) {
    expect_error("line one\n{{ x | nosuchfilter }}", MST_ERR_BAD_FORMAT, "line 2: no filter named 'nosuchfilter'");
    expect_error("a\nb\n{{ x is nosuchtest }}", MST_ERR_BAD_FORMAT, "line 3: no test named 'nosuchtest'");
    expect_error("x\n{% if true %}\nnever closed\n", MST_ERR_BAD_FORMAT, "line 2: 'if' is never closed");
    expect_error("{% for x in y %}\n{% endif %}", MST_ERR_BAD_FORMAT, "line 2: 'endif' found where 'for' (opened on line 1) expects 'endfor'");
    expect_error("{% endfor %}", MST_ERR_BAD_FORMAT, "line 1: 'endfor' has no open block to close");
    expect_error("\n\n{% frobnicate %}", MST_ERR_BAD_FORMAT, "line 3: unknown tag 'frobnicate'");
    expect_error("ok\n{{ 'a' ", MST_ERR_BAD_FORMAT, "line 2: the expression opened here is never closed with '}}'");
    expect_error("{# never closed", MST_ERR_BAD_FORMAT, "line 1: the comment opened here is never closed");
    expect_error("{{ 'abc }}", MST_ERR_BAD_FORMAT, "unterminated string literal");
    expect_error("{{ 1 + }}", MST_ERR_BAD_FORMAT, "unexpected '}}'");
    expect_error("{{ a b }}", MST_ERR_BAD_FORMAT, "expected '}}', found 'b'");
    expect_error("{{ x @ y }}", MST_ERR_BAD_FORMAT, "unexpected character '@'");
    expect_error("{% for x in %}{% endfor %}", MST_ERR_BAD_FORMAT, "unexpected '%}' in an expression");
    expect_error("{{ 99999999999999999999 }}", MST_ERR_BAD_FORMAT, "out of range");
}

TEST(Jinja, RenderErrorsNameTheLine) {
    expect_error("a\nb\n{{ nope.attr }}", MST_ERR_INVALID_ARGUMENT, "line 3: 'nope' is undefined");
    expect_error("{% set d = {} %}{{ d.a.b }}", MST_ERR_INVALID_ARGUMENT, "'dict object' has no attribute 'a'");
    expect_error("{{ 'a' + 1 }}", MST_ERR_INVALID_ARGUMENT, "unsupported operand type(s) for +: 'str' and 'int'");
    expect_error("{{ 1 // 0 }}", MST_ERR_INVALID_ARGUMENT, "division by zero");
    expect_error("{% for i in 5 %}{% endfor %}", MST_ERR_INVALID_ARGUMENT, "'int' object is not iterable");
    expect_error("x\n{{ raise_exception('Only user and assistant roles') }}", MST_ERR_INVALID_ARGUMENT,
                 "line 2: the template raised an exception: Only user and assistant roles");
    expect_error("{% set x = 1 %}{% set x.a = 2 %}", MST_ERR_INVALID_ARGUMENT, "cannot assign attribute on non-namespace object");
    expect_error("{{ nope|tojson }}", MST_ERR_INVALID_ARGUMENT, "not JSON serializable");
    expect_error("{% break %}", MST_ERR_INVALID_ARGUMENT, "outside a for loop");
    expect_error("{{ 9223372036854775807 + 1 }}", MST_ERR_INVALID_ARGUMENT, "integer overflow");
    expect_error("{% macro m(a) %}{% endmacro %}{{ m(1, 2) }}", MST_ERR_INVALID_ARGUMENT, "takes 1 arguments, 2 given");
    expect_error("{{ 'x'.nope() }}", MST_ERR_INVALID_ARGUMENT, "'str object' has no attribute 'nope'");
}

TEST(Jinja, UndefinedBehavesAsJinja2DefaultUndefined) {
    // Printing, iterating, testing and defaulting an undefined name are fine...
    EXPECT_EQ(render("[{{ nope }}][{% for x in nope %}x{% endfor %}][{{ nope is defined }}][{{ nope|default('d') }}]"),
              "[][][False][d]");
    EXPECT_EQ(render("{{ nope|length }}{{ nope ~ 'c' }}{{ not nope }}{{ 'x' in nope }}"), "0cTrueFalse");
    EXPECT_EQ(render("{{ d.missing is defined }}|{{ d.missing }}|{{ l[5] is defined }}", {{"d", {{"a", 1}}}, {"l", {1}}}),
              "False||False");
    // ...using one in arithmetic, comparison, attribute access or a call is an error.
    for (const char *bad : {"{{ nope + 1 }}", "{{ nope < 1 }}", "{{ nope.x }}", "{{ nope() }}", "{{ nope['k'] }}", "{{ -nope }}"})
        EXPECT_FALSE(error_of(bad).empty()) << bad;
}

TEST(Jinja, MacroRecursionIsBounded) {
    RenderOptions options;
    options.max_depth = 50;
    expect_error("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}", MST_ERR_INVALID_ARGUMENT,
                 "macro calls nested deeper than 50", options);
    // With the default limits, recursion ends with an error too (no stack overflow).
    expect_error("{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}", MST_ERR_INVALID_ARGUMENT, "deeper than");
    // Recursion within the limit works.
    EXPECT_EQ(render("{% macro f(n) %}{% if n %}{{ n }}{{ f(n - 1) }}{% endif %}{% endmacro %}{{ f(30) }}").size(), 51u);
}

TEST(Jinja, OutputSizeIsBounded) {
    RenderOptions options;
    options.max_output_bytes = 10000;
    expect_error("{% for i in range(100000) %}0123456789{% endfor %}", MST_ERR_INVALID_ARGUMENT,
                 "the output would pass the limit of 10000 bytes", options);
    expect_error("{{ 'x' * 1000000 }}", MST_ERR_INVALID_ARGUMENT, "limit of 10000 bytes", options);
    // Doubling a string in a namespace would grow without bound without the limit.
    expect_error("{% set ns = namespace(s='ab') %}{% for i in range(64) %}{% set ns.s = ns.s + ns.s %}{% endfor %}",
                 MST_ERR_INVALID_ARGUMENT, "limit");
    EXPECT_EQ(render("{{ 'ab' * 3 }}", nlohmann::ordered_json::object(), options), "ababab");
}

TEST(Jinja, RunawayLoopsAreBounded) {
    RenderOptions options;
    options.max_steps = 100000;
    expect_error("{% for i in range(1000) %}{% for j in range(1000) %}{{ j }}{% endfor %}{% endfor %}",
                 MST_ERR_INVALID_ARGUMENT, "more than 100000 steps", options);
    expect_error("{{ range(1000000000000)|length }}", MST_ERR_INVALID_ARGUMENT, "", options);
    expect_error("{{ range(2000000)|length }}", MST_ERR_INVALID_ARGUMENT, "range() of more than 1000000 items");
    expect_error("{{ ([1, 2] * 1000000000)|length }}", MST_ERR_INVALID_ARGUMENT, "limit of 1000000 items");
}

TEST(Jinja, DeepNestingIsAnErrorNotACrash) {
    const std::string parens = std::string(5000, '(') + "1" + std::string(5000, ')');
    expect_error("{{ " + parens + " }}", MST_ERR_BAD_FORMAT, "nesting deeper than");
    std::string ifs;
    for (int i = 0; i < 3000; ++i) ifs += "{% if true %}";
    expect_error(ifs, MST_ERR_BAD_FORMAT, "nesting deeper than");
    std::string nots = "{{ " + std::string(3000 * 4, ' ') + " }}";
    for (int i = 0; i < 3000; ++i) nots.replace(3 + i * 4, 4, "not ");
    expect_error(nots.substr(0, nots.size() - 3) + "1 }}", MST_ERR_BAD_FORMAT, "nesting deeper than");
    // Deeply nested JSON input stops at the input limit.
    nlohmann::ordered_json deep = 1;
    for (int i = 0; i < 2000; ++i) deep = nlohmann::ordered_json::array({deep});
    try {
        (void)Template::parse("{{ x }}").render(mst::jinja::from_json(deep), {});
        ADD_FAILURE() << "nested JSON accepted";
    } catch (const std::exception &e) {
        EXPECT_NE(std::string(e.what()).find("nested too deeply"), std::string::npos) << e.what();
    }
}

TEST(Jinja, NamespacesAreSharedAndLoopScopesAreNot) {
    EXPECT_EQ(render("{% set ns = namespace(n=0) %}{% set alias = ns %}{% for i in range(3) %}{% set alias.n = alias.n + 1 %}"
                     "{% endfor %}{{ ns.n }}"),
              "3");
    EXPECT_EQ(render("{% set x = 'outer' %}{% for i in [1] %}{% set x = 'inner' %}{% endfor %}{{ x }}"), "outer");
    // A namespace holding itself (a reference cycle, emptied when rendering ends; fuzz_jinja
    // checks for leaks under LeakSanitizer) and a recursive macro render as jinja2 does.
    EXPECT_EQ(render("{% set ns = namespace(n=1) %}{% set ns.self = ns %}{{ ns.self.self.n }}{{ ns.self is sameas ns }}"),
              "1True");
    EXPECT_EQ(render("{% macro m() %}{% set x = 'in macro' %}{% endmacro %}{% set x = 'top' %}{{ m() }}{{ x }}"), "top");
}

TEST(Jinja, CallerVariablesShadowGlobals) {
    // A context variable named like a global wins, as render(**kwargs) does in jinja2.
    EXPECT_EQ(render("{{ range }}", {{"range", "mine"}}), "mine");
    EXPECT_EQ(render("{{ strftime_now('%Y') }}", nlohmann::ordered_json::object(), [] {
                  RenderOptions o;
                  o.now = 86400 * 366;  // 1971-01-02
                  return o;
              }()),
              "1971");
}

}  // namespace
