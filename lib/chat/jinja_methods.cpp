// The Python str and dict methods chat templates call on values: "x".startswith(...),
// "a,b".split(","), d.get("k", default), d.items() and the like.
#include <algorithm>

#include "chat/jinja_eval.h"
#include "chat/jinja_text.h"

namespace mst::jinja {
namespace {

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

}  // namespace mst::jinja
