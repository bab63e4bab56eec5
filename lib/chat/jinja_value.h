// The values a chat template computes with. They mirror the Python objects jinja2 sees
// when transformers renders a template (str, int, float, bool, None, list, dict, plus
// jinja2's Undefined), because the output must match jinja2's byte for byte: str() of a
// list is Python's repr, 1/2 is a float, an undefined name prints as "" but fails when
// used in arithmetic.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace mst::jinja {

struct Value;
struct CallArgs;
class Evaluator;

using ValueList = std::vector<Value>;
// Python dicts keep insertion order, and JSON objects must keep the order they came in.
using ValueDict = std::vector<std::pair<std::string, Value>>;
using NativeFunction = std::function<Value(Evaluator &, CallArgs &)>;

enum class Kind { Undefined, None, Bool, Int, Float, String, List, Dict, Function, Namespace };

struct Value {
    Kind kind = Kind::Undefined;
    bool boolean = false;
    bool is_tuple = false;  // a list written (a, b): only its repr differs
    int64_t integer = 0;
    double number = 0;
    // The string, or for an Undefined the description jinja2 puts in its error
    // ("'x' is undefined").
    std::string text;
    // Lists, dicts and namespaces are shared, as Python objects are: `set ns.x = 1`
    // must be seen through every name bound to `ns`.
    std::shared_ptr<ValueList> list;
    std::shared_ptr<ValueDict> dict;
    std::shared_ptr<NativeFunction> function;

    static Value undefined(std::string why = {});
    static Value none();
    static Value from_bool(bool b);
    static Value from_int(int64_t i);
    static Value from_float(double d);
    static Value from_string(std::string s);
    static Value new_list(ValueList items = {});
    static Value new_tuple(ValueList items);
    static Value new_dict(ValueDict items = {});
    static Value new_namespace(ValueDict items = {});
    static Value new_function(NativeFunction f);

    bool is_undefined() const { return kind == Kind::Undefined; }
    bool is_none() const { return kind == Kind::None; }
    bool is_string() const { return kind == Kind::String; }
    bool is_number() const { return kind == Kind::Int || kind == Kind::Float || kind == Kind::Bool; }
    bool is_list() const { return kind == Kind::List; }
    bool is_mapping() const { return kind == Kind::Dict || kind == Kind::Namespace; }

    // Python's bool(x).
    bool truthy() const;
    // Python's float(x) for numbers (bool is an int there).
    double as_double() const;
    // Lookup of a dict key or namespace attribute; nullptr if absent.
    const Value *find(const std::string &key) const;
    Value *find(const std::string &key);
    void set(const std::string &key, Value v);
};

// Python's == between two values (1 == 1.0 and True == 1 hold; Undefined equals only
// Undefined, as jinja2's Undefined.__eq__ does).
bool equals(const Value &a, const Value &b);

// Python's str(x) and repr(x). Undefined is "" in str(); NativeFunction and Namespace print
// as jinja2's objects would not be byte-identical anyway, so they get a fixed text.
std::string to_str(const Value &v);
std::string to_repr(const Value &v);

// A Python float as repr() writes it: shortest round-trip digits, "1.0", "1e+16".
std::string format_float(double d);

// JSON in, with object key order kept. Throws Failure past `depth_limit` levels of
// nesting rather than recursing without bound.
Value from_json(const nlohmann::ordered_json &j, int depth_limit = 512);

// json.dumps(v, ensure_ascii, indent, separators, sort_keys) as transformers' tojson
// filter calls it. indent < 0 means None; an empty indent_text with indent >= 0 means
// newlines without indentation, as json.dumps(indent=0) does. Throws Error for values
// JSON cannot hold (Undefined, functions), as Python raises TypeError.
struct JsonOptions {
    bool ensure_ascii = false;
    bool has_indent = false;
    std::string indent;         // the text of one level of indent
    std::string item_separator = ", ";
    std::string key_separator = ": ";
    bool sort_keys = false;
};
std::string to_json(const Value &v, const JsonOptions &options, int depth_limit);

}  // namespace mst::jinja
