// Renders a parsed template: statements, expressions, scopes and the limits that keep
// a hostile template from running away (call depth, output size, steps).
#pragma once

#include <cstdint>
#include <ctime>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "chat/jinja_ast.h"
#include "chat/jinja_value.h"

namespace mst::jinja {

struct RenderOptions {
    int max_depth = 200;                    // nested macro calls, and tojson/repr nesting
    size_t max_output_bytes = 64u << 20;    // the rendered text, and any string built on the way
    uint64_t max_steps = 50'000'000;        // statements + expressions evaluated
    size_t max_items = 1'000'000;           // elements of one list built by range() or [..] * n
    std::time_t now = 0;                    // strftime_now's clock; 0 = the current time
};

struct CallArgs {
    std::vector<Value> positional;
    std::vector<std::pair<std::string, Value>> named;

    // The argument at `index` or named `name`; `fallback` if neither was given.
    Value get(size_t index, const char *name, Value fallback = Value::undefined()) const;
    bool has(size_t index, const char *name) const;
    // Fails naming `what` when more than `max_positional` positional arguments, or a
    // keyword not in `allowed`, were given.
    void check(const char *what, size_t max_positional, std::initializer_list<const char *> allowed) const;
};

class Scope {
public:
    explicit Scope(std::shared_ptr<Scope> parent) : parent_(std::move(parent)) {}
    const Value *lookup(const std::string &name) const;
    void set(const std::string &name, Value v) { vars_[name] = std::move(v); }

private:
    std::shared_ptr<Scope> parent_;
    std::unordered_map<std::string, Value> vars_;
};

class Evaluator {
public:
    Evaluator(const RenderOptions &options, std::shared_ptr<Scope> globals);
    ~Evaluator();
    Evaluator(const Evaluator &) = delete;
    Evaluator &operator=(const Evaluator &) = delete;

    // namespace(): a namespace the evaluator empties when it ends (see ~Evaluator).
    Value new_namespace(ValueDict items = {});

    // Throws Failure; Template::render turns it into mst::Error with the line.
    void run(const Body &body, std::string &out);
    int line() const { return line_; }
    const RenderOptions &options() const { return options_; }

    Value eval(const Expr &e);
    Value call(const Value &callee, CallArgs &args);
    Value get_attr(const Value &obj, const std::string &name);
    Value get_item(const Value &obj, const Value &key);
    std::vector<Value> iterate(const Value &v);
    void check_size(size_t bytes) const;
    void step();

private:
    enum class Flow { Normal, Break, Continue };
    Flow exec(const Body &body, std::string &out);
    Flow exec_stmt(const Stmt &s, std::string &out);
    void exec_for(const Stmt &s, std::string &out);
    void assign(const Target &target, Value v);
    Value make_macro(const Stmt &s);
    Value binary(const std::string &op, const Value &a, const Value &b);
    bool compare(const std::string &op, const Value &a, const Value &b);
    Value slice(const Value &obj, const Value &start, const Value &stop, const Value &stride);
    std::string render_body(const Body &body);

    RenderOptions options_;
    std::shared_ptr<Scope> scope_;
    int line_ = 0;
    int call_depth_ = 0;
    int nesting_ = 0;
    std::vector<std::weak_ptr<ValueDict>> namespaces_;
    size_t prune_at_ = 64;
    static constexpr int kMaxNesting = 1500;
    uint64_t steps_ = 0;
};

// Python's type name of a value, for error messages ("int", "str", "dict", ...).
std::string type_name(const Value &v);
// Python's a < b for the types templates compare (numbers, strings, sequences).
bool less_than(const Value &a, const Value &b);

// An argument as an integer (bool counts) or a string; Failure naming `what` otherwise.
int64_t int_arg(const Value &v, const char *what);
std::string str_arg(const Value &v, const char *what);

// jinja_filters.cpp, jinja_tests.cpp, jinja_methods.cpp, jinja_globals.cpp
Value apply_filter(Evaluator &ev, const std::string &name, const Value &subject, CallArgs &args);
bool has_filter(const std::string &name);
bool has_test(const std::string &name);
bool apply_test(Evaluator &ev, const std::string &name, const Value &subject, CallArgs &args);
Value bound_method(const Value &obj, const std::string &name);
void add_globals(Scope &scope, const RenderOptions &options);

}  // namespace mst::jinja
