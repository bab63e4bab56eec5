// jinja2's tests ("x is defined"), the Python str/dict methods templates call, and the
// globals transformers provides (raise_exception, strftime_now) next to jinja2's own
// (range, namespace, dict).
#include <algorithm>
#include <ctime>

#include "chat/jinja_eval.h"
#include "chat/jinja_text.h"

namespace mst::jinja {
namespace {

const char *const kTests[] = {"defined", "undefined", "none", "boolean", "false", "true", "integer", "float", "number",
                              "string", "mapping", "iterable", "sequence", "callable", "sameas", "in", "eq", "equalto",
                              "==", "ne", "!=", "lt", "lessthan", "<", "le", "<=", "gt", "greaterthan", ">", "ge", ">=",
                              "odd", "even", "divisibleby", "lower", "upper", "filter", "test", "escaped"};

int64_t int_arg(const Value &v, const char *what) {
    if (v.kind == Kind::Int) return v.integer;
    if (v.kind == Kind::Bool) return v.boolean;
    throw Failure(std::string(what) + " needs an integer, not " + type_name(v));
}

std::string str_arg(const Value &v, const char *what) {
    if (!v.is_string()) throw Failure(std::string(what) + " needs a string, not " + type_name(v));
    return v.text;
}

// str.format with "{}", "{0}" and "{name}" fields (no format specs), "{{" and "}}".
std::string py_format(const std::string &fmt, const CallArgs &args) {
    std::string out;
    size_t auto_index = 0;
    for (size_t i = 0; i < fmt.size(); ++i) {
        const char c = fmt[i];
        if (c == '{' && i + 1 < fmt.size() && fmt[i + 1] == '{') {
            out.push_back('{');
            ++i;
        } else if (c == '}' && i + 1 < fmt.size() && fmt[i + 1] == '}') {
            out.push_back('}');
            ++i;
        } else if (c == '{') {
            const size_t close = fmt.find('}', i);
            if (close == std::string::npos) throw Failure("str.format: single '{' encountered in format string");
            const std::string field = fmt.substr(i + 1, close - i - 1);
            if (field.find_first_of(":!") != std::string::npos) throw Failure("str.format: format specs are not supported");
            Value v;
            if (field.empty()) {
                v = args.get(auto_index++, nullptr);
            } else if (std::all_of(field.begin(), field.end(), [](char d) { return d >= '0' && d <= '9'; })) {
                v = args.get(static_cast<size_t>(std::stoul(field)), nullptr);
            } else {
                v = args.get(SIZE_MAX, field.c_str());
            }
            if (v.is_undefined() && !args.has(SIZE_MAX, field.c_str()) && field.empty() == false && !args.has(0, nullptr))
                throw Failure("str.format: no argument for field '" + field + "'");
            out += to_str(v);
            i = close;
        } else if (c == '}') {
            throw Failure("str.format: single '}' encountered in format string");
        } else {
            out.push_back(c);
        }
    }
    return out;
}

Value string_method(const std::string &s, const std::string &name) {
    auto fn = [](auto body) { return Value::new_function(body); };
    if (name == "startswith" || name == "endswith") {
        const bool starts = name == "startswith";
        return fn([s, starts](Evaluator &, CallArgs &a) {
            const Value p = a.get(0, nullptr);
            std::vector<std::string> prefixes;
            if (p.is_list()) {
                for (const Value &x : *p.list) prefixes.push_back(str_arg(x, starts ? "startswith" : "endswith"));
            } else {
                prefixes.push_back(str_arg(p, starts ? "startswith" : "endswith"));
            }
            for (const std::string &x : prefixes) {
                if (x.size() > s.size()) continue;
                if (starts ? s.compare(0, x.size(), x) == 0 : s.compare(s.size() - x.size(), x.size(), x) == 0)
                    return Value::from_bool(true);
            }
            return Value::from_bool(false);
        });
    }
    if (name == "strip" || name == "lstrip" || name == "rstrip") {
        const bool left = name != "rstrip", right = name != "lstrip";
        return fn([s, left, right](Evaluator &, CallArgs &a) {
            const Value chars = a.get(0, "chars", Value::none());
            if (chars.is_none()) return Value::from_string(py_strip(s, left, right, nullptr));
            const std::string set = str_arg(chars, "strip");
            return Value::from_string(py_strip(s, left, right, &set));
        });
    }
    if (name == "split" || name == "rsplit") {
        const bool right = name == "rsplit";
        return fn([s, right](Evaluator &, CallArgs &a) {
            const Value sep = a.get(0, "sep", Value::none());
            const int64_t maxsplit = int_arg(a.get(1, "maxsplit", Value::from_int(-1)), "split");
            std::string sep_text;
            if (!sep.is_none()) sep_text = str_arg(sep, "split");
            ValueList parts;
            for (std::string &p : py_split(s, sep.is_none() ? nullptr : &sep_text, maxsplit, right))
                parts.push_back(Value::from_string(std::move(p)));
            return Value::new_list(std::move(parts));
        });
    }
    if (name == "splitlines") {
        return fn([s](Evaluator &, CallArgs &) {
            ValueList parts;
            size_t start = 0;
            while (start < s.size()) {
                const size_t nl = s.find('\n', start);
                parts.push_back(Value::from_string(s.substr(start, nl == std::string::npos ? std::string::npos : nl - start)));
                if (nl == std::string::npos) break;
                start = nl + 1;
            }
            return Value::new_list(std::move(parts));
        });
    }
    if (name == "replace") {
        return fn([s](Evaluator &ev, CallArgs &a) {
            const int64_t count = int_arg(a.get(2, "count", Value::from_int(-1)), "replace");
            std::string out = py_replace(s, str_arg(a.get(0, nullptr), "replace"), str_arg(a.get(1, nullptr), "replace"), count);
            ev.check_size(out.size());
            return Value::from_string(std::move(out));
        });
    }
    if (name == "upper") return fn([s](Evaluator &, CallArgs &) { return Value::from_string(py_upper(s)); });
    if (name == "lower") return fn([s](Evaluator &, CallArgs &) { return Value::from_string(py_lower(s)); });
    if (name == "title") return fn([s](Evaluator &, CallArgs &) { return Value::from_string(py_title(s)); });
    if (name == "capitalize") return fn([s](Evaluator &, CallArgs &) { return Value::from_string(py_capitalize(s)); });
    if (name == "find" || name == "count") {
        const bool find = name == "find";
        return fn([s, find](Evaluator &, CallArgs &a) {
            const std::string sub = str_arg(a.get(0, nullptr), find ? "find" : "count");
            if (find) {
                const size_t at = s.find(sub);
                return Value::from_int(at == std::string::npos ? -1 : static_cast<int64_t>(count_code_points(s.substr(0, at))));
            }
            if (sub.empty()) return Value::from_int(static_cast<int64_t>(count_code_points(s)) + 1);
            int64_t n = 0;
            for (size_t at = s.find(sub); at != std::string::npos; at = s.find(sub, at + sub.size())) ++n;
            return Value::from_int(n);
        });
    }
    if (name == "join") {
        return fn([s](Evaluator &ev, CallArgs &a) {
            std::string out;
            bool first = true;
            for (const Value &item : ev.iterate(a.get(0, nullptr))) {
                if (!first) out += s;
                first = false;
                out += str_arg(item, "str.join");
                ev.check_size(out.size());
            }
            return Value::from_string(std::move(out));
        });
    }
    if (name == "format") {
        return fn([s](Evaluator &ev, CallArgs &a) {
            std::string out = py_format(s, a);
            ev.check_size(out.size());
            return Value::from_string(std::move(out));
        });
    }
    if (name == "isdigit" || name == "isspace" || name == "isalpha" || name == "isalnum") {
        return fn([s, name](Evaluator &, CallArgs &) {
            if (s.empty()) return Value::from_bool(false);
            for (char32_t c : decode_utf8(s)) {
                bool ok = name == "isspace" ? is_py_space(c)
                        : name == "isdigit" ? (c >= '0' && c <= '9')
                        : name == "isalpha" ? ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') || c > 0x7F
                                            : ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') || (c >= '0' && c <= '9') || c > 0x7F;
                if (!ok) return Value::from_bool(false);
            }
            return Value::from_bool(true);
        });
    }
    return Value::undefined();
}

Value dict_method(const Value &d, const std::string &name) {
    if (name == "get") {
        return Value::new_function([d](Evaluator &, CallArgs &a) {
            const Value key = a.get(0, nullptr);
            if (key.is_string())
                if (const Value *v = d.find(key.text)) return *v;
            return a.get(1, nullptr, Value::none());
        });
    }
    if (name == "items" || name == "keys" || name == "values") {
        return Value::new_function([d, name](Evaluator &, CallArgs &) {
            ValueList out;
            for (const auto &[k, v] : *d.dict) {
                if (name == "items") out.push_back(Value::new_tuple({Value::from_string(k), v}));
                else out.push_back(name == "keys" ? Value::from_string(k) : v);
            }
            return Value::new_list(std::move(out));
        });
    }
    return Value::undefined();
}

}  // namespace

Value bound_method(const Value &obj, const std::string &name) {
    if (obj.is_string()) return string_method(obj.text, name);
    if (obj.kind == Kind::Dict) return dict_method(obj, name);
    return Value::undefined();
}

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

void add_globals(Scope &scope, const RenderOptions &options) {
    scope.set("range", Value::new_function([](Evaluator &ev, CallArgs &a) {
        a.check("range", 3, {});
        int64_t start = 0, stop = 0, step = 1;
        if (a.positional.size() == 1) {
            stop = int_arg(a.positional[0], "range");
        } else if (a.positional.size() >= 2) {
            start = int_arg(a.positional[0], "range");
            stop = int_arg(a.positional[1], "range");
            if (a.positional.size() == 3) step = int_arg(a.positional[2], "range");
        } else {
            throw Failure("range expected at least 1 argument, got 0");
        }
        if (step == 0) throw Failure("range() arg 3 must not be zero");
        ValueList out;
        for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step) {
            // Each element costs a step, so a range of 10^12 fails on the step limit.
            ev.step();
            if (out.size() >= ev.options().max_items)
                throw Failure("range() of more than " + std::to_string(ev.options().max_items) + " items");
            out.push_back(Value::from_int(i));
            if (__builtin_add_overflow(i, step, &i)) break;
            i -= step;
        }
        return Value::new_list(std::move(out));
    }));
    scope.set("namespace", Value::new_function([](Evaluator &, CallArgs &a) {
        Value ns = Value::new_namespace();
        for (const Value &p : a.positional) {
            if (p.kind != Kind::Dict) throw Failure("namespace() takes mappings or keyword arguments");
            for (const auto &[k, v] : *p.dict) ns.set(k, v);
        }
        for (const auto &[k, v] : a.named) ns.set(k, v);
        return ns;
    }));
    scope.set("dict", Value::new_function([](Evaluator &, CallArgs &a) {
        Value d = Value::new_dict();
        for (const Value &p : a.positional) {
            if (p.kind != Kind::Dict) throw Failure("dict() takes a mapping or keyword arguments");
            for (const auto &[k, v] : *p.dict) d.set(k, v);
        }
        for (const auto &[k, v] : a.named) d.set(k, v);
        return d;
    }));
    scope.set("raise_exception", Value::new_function([](Evaluator &, CallArgs &a) -> Value {
        throw Failure("the template raised an exception: " + to_str(a.get(0, "message")));
    }));
    const std::time_t now = options.now;
    scope.set("strftime_now", Value::new_function([now](Evaluator &, CallArgs &a) {
        const std::string fmt = str_arg(a.get(0, "format"), "strftime_now");
        const std::time_t t = now ? now : std::time(nullptr);
        std::tm tm{};
        localtime_r(&t, &tm);
        char buf[512];
        const size_t n = fmt.empty() ? 0 : std::strftime(buf, sizeof buf, fmt.c_str(), &tm);
        if (n == 0 && !fmt.empty()) throw Failure("strftime_now: the format is empty or its result too long");
        return Value::from_string(std::string(buf, n));
    }));
}

}  // namespace mst::jinja
