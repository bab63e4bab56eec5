// jinja2's tests: "x is defined", "x is string", "n is divisibleby 3", ...
#include "chat/jinja_eval.h"
#include "chat/jinja_text.h"

namespace mst::jinja {
namespace {

const char *const kTests[] = {"defined", "undefined", "none", "boolean", "false", "true", "integer", "float", "number",
                              "string", "mapping", "iterable", "sequence", "callable", "sameas", "in", "eq", "equalto",
                              "==", "ne", "!=", "lt", "lessthan", "<", "le", "<=", "gt", "greaterthan", ">", "ge", ">=",
                              "odd", "even", "divisibleby", "lower", "upper", "filter", "test", "escaped"};

}  // namespace

bool has_test(const std::string &name) {
    for (const char *t : kTests)
        if (name == t) return true;
    return false;
}

bool apply_test(Evaluator &ev, const std::string &name, const Value &v, CallArgs &args) {
    const Value arg = args.get(0, nullptr);
    if (name == "defined") return !v.is_undefined();
    if (name == "undefined") return v.is_undefined();
    if (name == "none") return v.is_none();
    if (name == "boolean") return v.kind == Kind::Bool;
    if (name == "false") return v.kind == Kind::Bool && !v.boolean;
    if (name == "true") return v.kind == Kind::Bool && v.boolean;
    if (name == "integer") return v.kind == Kind::Int;
    if (name == "float") return v.kind == Kind::Float;
    if (name == "number") return v.is_number();
    if (name == "string") return v.is_string();
    if (name == "mapping") return v.kind == Kind::Dict;
    // jinja2's Undefined is iterable (as an empty sequence) and has a length.
    if (name == "iterable") return v.is_undefined() || v.is_string() || v.is_list() || v.kind == Kind::Dict;
    if (name == "sequence") return v.is_undefined() || v.is_string() || v.is_list() || v.kind == Kind::Dict;
    if (name == "callable") return v.kind == Kind::Function;
    if (name == "sameas") {
        if (v.kind != arg.kind) return false;
        if (v.is_list()) return v.list == arg.list;
        if (v.is_mapping()) return v.dict == arg.dict;
        return equals(v, arg) && (v.kind == Kind::None || v.kind == Kind::Bool || v.kind == Kind::Undefined);
    }
    if (name == "in") {
        CallArgs none;
        if (arg.is_string()) return v.is_string() && arg.text.find(v.text) != std::string::npos;
        for (const Value &item : ev.iterate(arg))
            if (equals(v, item)) return true;
        return false;
    }
    if (name == "eq" || name == "equalto" || name == "==") return equals(v, arg);
    if (name == "ne" || name == "!=") return !equals(v, arg);
    if (name == "lt" || name == "lessthan" || name == "<") return less_than(v, arg);
    if (name == "le" || name == "<=") return less_than(v, arg) || equals(v, arg);
    if (name == "gt" || name == "greaterthan" || name == ">") return less_than(arg, v);
    if (name == "ge" || name == ">=") return less_than(arg, v) || equals(v, arg);
    if (name == "odd" || name == "even" || name == "divisibleby") {
        if (v.is_undefined()) throw Failure(v.text.empty() ? "a value is undefined" : v.text);
        const int64_t x = int_arg(v, name.c_str());
        if (name == "odd") return x % 2 != 0;
        if (name == "even") return x % 2 == 0;
        const int64_t d = int_arg(arg, "divisibleby");
        if (d == 0) throw Failure("divisibleby: division by zero");
        return d == -1 || x % d == 0;
    }
    if (name == "lower") return v.is_string() && py_lower(v.text) == v.text;
    if (name == "upper") return v.is_string() && py_upper(v.text) == v.text;
    if (name == "filter") return v.is_string() && has_filter(v.text);
    if (name == "test") return v.is_string() && has_test(v.text);
    if (name == "escaped") return false;
    throw Failure("no test named '" + name + "'");
}

}  // namespace mst::jinja
