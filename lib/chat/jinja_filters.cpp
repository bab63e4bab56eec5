// The filters chat templates use, with jinja2's semantics (and transformers' tojson,
// which is json.dumps with ensure_ascii=False and its indent/separators/sort_keys).
#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>

#include "chat/jinja_eval.h"
#include "chat/jinja_text.h"

namespace mst::jinja {
namespace {

std::string as_text(const Value &v) { return to_str(v); }

int64_t length_of(const Value &v) {
    switch (v.kind) {
    case Kind::Undefined: return 0;
    case Kind::String: return static_cast<int64_t>(count_code_points(v.text));
    case Kind::List: return static_cast<int64_t>(v.list->size());
    case Kind::Dict: return static_cast<int64_t>(v.dict->size());
    default: throw Failure("object of type '" + type_name(v) + "' has no len()");
    }
}

Value tojson(Evaluator &ev, const Value &v, CallArgs &args) {
    args.check("tojson", 4, {"ensure_ascii", "indent", "separators", "sort_keys"});
    JsonOptions o;
    o.ensure_ascii = args.get(0, "ensure_ascii", Value::from_bool(false)).truthy();
    const Value indent = args.get(1, "indent", Value::none());
    if (indent.kind == Kind::Int || indent.kind == Kind::Bool) {
        o.has_indent = true;
        const int64_t n = indent.kind == Kind::Bool ? indent.boolean : indent.integer;
        o.indent = std::string(static_cast<size_t>(std::clamp<int64_t>(n, 0, 64)), ' ');
    } else if (indent.is_string()) {
        o.has_indent = true;
        o.indent = indent.text;
    } else if (!indent.is_none() && !indent.is_undefined()) {
        throw Failure("tojson: indent must be an integer, a string or None, not " + type_name(indent));
    }
    if (o.has_indent) o.item_separator = ",";
    const Value separators = args.get(2, "separators", Value::none());
    if (separators.is_list()) {
        if (separators.list->size() != 2 || !(*separators.list)[0].is_string() || !(*separators.list)[1].is_string())
            throw Failure("tojson: separators must be two strings");
        o.item_separator = (*separators.list)[0].text;
        o.key_separator = (*separators.list)[1].text;
    } else if (!separators.is_none() && !separators.is_undefined()) {
        throw Failure("tojson: separators must be a pair of strings, not " + type_name(separators));
    }
    o.sort_keys = args.get(3, "sort_keys", Value::from_bool(false)).truthy();
    std::string text = to_json(v, o, ev.options().max_depth);
    ev.check_size(text.size());
    return Value::from_string(std::move(text));
}

// Python's int(str): optional sign, digits with single underscores, surrounding space.
bool parse_int(const std::string &s, int64_t base, int64_t &out) {
    const std::string t = py_strip(s, true, true, nullptr);
    if (t.empty()) return false;
    errno = 0;
    std::string digits;
    for (char c : t)
        if (c != '_') digits.push_back(c);
    char *end = nullptr;
    const long long v = std::strtoll(digits.c_str(), &end, static_cast<int>(base));
    if (errno || end != digits.c_str() + digits.size() || digits.empty()) return false;
    out = v;
    return true;
}

bool parse_float(const std::string &s, double &out) {
    const std::string t = py_strip(s, true, true, nullptr);
    if (t.empty()) return false;
    char *end = nullptr;
    out = std::strtod(t.c_str(), &end);
    return end == t.c_str() + t.size();
}

Value attribute_of(Evaluator &ev, const Value &item, const Value &attribute) {
    // "a.b" walks nested attributes; an integer picks an index, as jinja2's make_attrgetter.
    if (attribute.kind == Kind::Int) return ev.get_item(item, attribute);
    Value v = item;
    const std::string path = as_text(attribute);
    size_t start = 0;
    while (true) {
        const size_t dot = path.find('.', start);
        const std::string part = path.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
        v = ev.get_item(v, Value::from_string(part));
        if (dot == std::string::npos) return v;
        start = dot + 1;
    }
}

// select/reject/selectattr/rejectattr share jinja2's select_or_reject.
Value select_or_reject(Evaluator &ev, const Value &seq, CallArgs &args, bool with_attr, bool select) {
    size_t next = 0;
    Value attr;
    if (with_attr) {
        if (args.positional.empty()) throw Failure("selectattr/rejectattr need an attribute name");
        attr = args.positional[next++];
    }
    std::string test;
    if (next < args.positional.size()) test = as_text(args.positional[next++]);
    CallArgs test_args;
    test_args.positional.assign(args.positional.begin() + static_cast<long>(std::min(next, args.positional.size())),
                                args.positional.end());
    test_args.named = args.named;
    ValueList out;
    for (const Value &item : ev.iterate(seq)) {
        const Value subject = with_attr ? attribute_of(ev, item, attr) : item;
        const bool pass = test.empty() ? subject.truthy() : apply_test(ev, test, subject, test_args);
        if (pass == select) out.push_back(item);
    }
    return Value::new_list(std::move(out));
}

Value sort_values(Evaluator &ev, const Value &v, CallArgs &args) {
    args.check("sort", 3, {"reverse", "case_sensitive", "attribute"});
    const bool reverse = args.get(0, "reverse", Value::from_bool(false)).truthy();
    const bool case_sensitive = args.get(1, "case_sensitive", Value::from_bool(false)).truthy();
    const Value attribute = args.get(2, "attribute", Value::none());
    ValueList items = ev.iterate(v);
    std::vector<std::pair<Value, Value>> keyed;
    for (const Value &item : items) {
        Value key = attribute.is_none() ? item : attribute_of(ev, item, attribute);
        if (!case_sensitive && key.is_string()) key = Value::from_string(py_lower(key.text));
        keyed.emplace_back(std::move(key), item);
    }
    std::stable_sort(keyed.begin(), keyed.end(), [&](const auto &a, const auto &b) {
        return reverse ? less_than(b.first, a.first) : less_than(a.first, b.first);
    });
    ValueList out;
    for (auto &[k, item] : keyed) out.push_back(std::move(item));
    return Value::new_list(std::move(out));
}

double round_half_even(double x) { return std::nearbyint(x); }

// The format filter: Python's printf-style "%s" % args for %s, %r, %d, %i and %%.
std::string percent_format(const std::string &fmt, const CallArgs &args) {
    std::string out;
    size_t next = 0;
    for (size_t i = 0; i < fmt.size(); ++i) {
        if (fmt[i] != '%') {
            out.push_back(fmt[i]);
            continue;
        }
        if (i + 1 >= fmt.size()) throw Failure("format filter: incomplete format");
        const char spec = fmt[++i];
        if (spec == '%') {
            out.push_back('%');
            continue;
        }
        if (next >= args.positional.size()) throw Failure("format filter: not enough arguments for format string");
        const Value &v = args.positional[next++];
        if (spec == 's') {
            out += to_str(v);
        } else if (spec == 'r') {
            out += to_repr(v);
        } else if (spec == 'd' || spec == 'i') {
            if (!v.is_number()) throw Failure("format filter: %" + std::string(1, spec) + " format: a real number is required, not " + type_name(v));
            out += std::to_string(v.kind == Kind::Float ? static_cast<int64_t>(v.number) : v.kind == Kind::Bool ? v.boolean : v.integer);
        } else {
            throw Failure(std::string("format filter: unsupported format character '") + spec + "'");
        }
    }
    if (next < args.positional.size()) throw Failure("format filter: not all arguments converted during string formatting");
    return out;
}

}  // namespace

bool has_filter(const std::string &name) {
    static const char *const names[] = {"tojson", "trim", "length", "count", "items", "list", "join", "upper", "lower",
                                        "capitalize", "title", "replace", "string", "int", "float", "default", "d",
                                        "first", "last", "selectattr", "rejectattr", "select", "reject", "map", "abs",
                                        "round", "sum", "min", "max", "unique", "reverse", "sort", "dictsort", "indent",
                                        "safe", "wordcount", "batch", "e", "escape", "format"};
    for (const char *n : names)
        if (name == n) return true;
    return false;
}

Value apply_filter(Evaluator &ev, const std::string &name, const Value &v, CallArgs &args) {
    if (name == "tojson") return tojson(ev, v, args);
    if (name == "safe") return v;
    if (name == "length" || name == "count") return Value::from_int(length_of(v));
    if (name == "string") return Value::from_string(as_text(v));
    if (name == "trim") {
        args.check("trim", 1, {"chars"});
        const Value chars = args.get(0, "chars", Value::none());
        const std::string set = chars.is_string() ? chars.text : std::string();
        return Value::from_string(py_strip(as_text(v), true, true, chars.is_string() ? &set : nullptr));
    }
    if (name == "upper") return Value::from_string(py_upper(as_text(v)));
    if (name == "lower") return Value::from_string(py_lower(as_text(v)));
    if (name == "capitalize") return Value::from_string(py_capitalize(as_text(v)));
    if (name == "title") return Value::from_string(py_title(as_text(v)));
    if (name == "replace") {
        args.check("replace", 3, {"old", "new", "count"});
        const Value count = args.get(2, "count", Value::none());
        std::string out = py_replace(as_text(v), as_text(args.get(0, "old")), as_text(args.get(1, "new")),
                                     count.kind == Kind::Int ? count.integer : -1);
        ev.check_size(out.size());
        return Value::from_string(std::move(out));
    }
    if (name == "items") {
        if (v.is_undefined()) return Value::new_list();
        if (!v.is_mapping()) throw Failure("items filter: can only get item pairs from a mapping, not " + type_name(v));
        ValueList out;
        for (const auto &[k, x] : *v.dict) out.push_back(Value::new_tuple({Value::from_string(k), x}));
        return Value::new_list(std::move(out));
    }
    if (name == "dictsort") {
        if (!v.is_mapping()) throw Failure("dictsort filter needs a mapping, not " + type_name(v));
        const bool case_sensitive = args.get(0, "case_sensitive", Value::from_bool(false)).truthy();
        const bool by_value = as_text(args.get(1, "by", Value::from_string("key"))) == "value";
        const bool reverse = args.get(2, "reverse", Value::from_bool(false)).truthy();
        ValueList out;
        for (const auto &[k, x] : *v.dict) out.push_back(Value::new_tuple({Value::from_string(k), x}));
        std::stable_sort(out.begin(), out.end(), [&](const Value &a, const Value &b) {
            Value ka = (*a.list)[by_value ? 1 : 0], kb = (*b.list)[by_value ? 1 : 0];
            if (!case_sensitive && ka.is_string()) ka = Value::from_string(py_lower(ka.text));
            if (!case_sensitive && kb.is_string()) kb = Value::from_string(py_lower(kb.text));
            return reverse ? less_than(kb, ka) : less_than(ka, kb);
        });
        return Value::new_list(std::move(out));
    }
    if (name == "list") return Value::new_list(ev.iterate(v));
    if (name == "join") {
        args.check("join", 2, {"d", "attribute"});
        const std::string sep = as_text(args.get(0, "d", Value::from_string("")));
        const Value attribute = args.get(1, "attribute", Value::none());
        std::string out;
        bool first = true;
        for (const Value &item : ev.iterate(v)) {
            if (!first) out += sep;
            first = false;
            out += as_text(attribute.is_none() ? item : attribute_of(ev, item, attribute));
            ev.check_size(out.size());
        }
        return Value::from_string(std::move(out));
    }
    if (name == "int") {
        args.check("int", 2, {"default", "base"});
        const Value fallback = args.get(0, "default", Value::from_int(0));
        const int64_t base = args.get(1, "base", Value::from_int(10)).integer;
        if (v.kind == Kind::Int) return v;
        if (v.kind == Kind::Bool) return Value::from_int(v.boolean);
        if (v.kind == Kind::Float) {
            if (!std::isfinite(v.number) || std::fabs(v.number) >= 9.2e18) return fallback;
            return Value::from_int(static_cast<int64_t>(v.number));
        }
        if (v.is_string()) {
            int64_t i = 0;
            double d = 0;
            if (parse_int(v.text, base, i)) return Value::from_int(i);
            if (base == 10 && parse_float(v.text, d) && std::isfinite(d) && std::fabs(d) < 9.2e18)
                return Value::from_int(static_cast<int64_t>(d));
        }
        return fallback;
    }
    if (name == "float") {
        args.check("float", 1, {"default"});
        const Value fallback = args.get(0, "default", Value::from_float(0.0));
        if (v.is_number()) return Value::from_float(v.as_double());
        double d = 0;
        if (v.is_string() && parse_float(v.text, d)) return Value::from_float(d);
        return fallback;
    }
    if (name == "default" || name == "d") {
        args.check("default", 2, {"default_value", "boolean"});
        const bool boolean = args.get(1, "boolean", Value::from_bool(false)).truthy();
        if (v.is_undefined() || (boolean && !v.truthy())) return args.get(0, "default_value", Value::from_string(""));
        return v;
    }
    if (name == "first" || name == "last") {
        const ValueList items = ev.iterate(v);
        if (items.empty()) return Value::undefined("No " + name + " item, sequence was empty.");
        return name == "first" ? items.front() : items.back();
    }
    if (name == "reverse") {
        if (v.is_string()) {
            std::vector<char32_t> cps = decode_utf8(v.text);
            std::reverse(cps.begin(), cps.end());
            return Value::from_string(encode_utf8(cps, 0, cps.size()));
        }
        ValueList items = ev.iterate(v);
        std::reverse(items.begin(), items.end());
        return Value::new_list(std::move(items));
    }
    if (name == "selectattr") return select_or_reject(ev, v, args, true, true);
    if (name == "rejectattr") return select_or_reject(ev, v, args, true, false);
    if (name == "select") return select_or_reject(ev, v, args, false, true);
    if (name == "reject") return select_or_reject(ev, v, args, false, false);
    if (name == "map") {
        ValueList out;
        const Value attribute = args.get(SIZE_MAX, "attribute");
        if (!attribute.is_undefined()) {
            const Value fallback = args.get(SIZE_MAX, "default");
            for (const Value &item : ev.iterate(v)) {
                Value x = attribute_of(ev, item, attribute);
                out.push_back(x.is_undefined() && args.has(SIZE_MAX, "default") ? fallback : x);
            }
            return Value::new_list(std::move(out));
        }
        if (args.positional.empty()) throw Failure("map filter needs a filter name or attribute=");
        const std::string filter = as_text(args.positional[0]);
        if (!has_filter(filter)) throw Failure("no filter named '" + filter + "'");
        CallArgs rest;
        rest.positional.assign(args.positional.begin() + 1, args.positional.end());
        rest.named = args.named;
        for (const Value &item : ev.iterate(v)) out.push_back(apply_filter(ev, filter, item, rest));
        return Value::new_list(std::move(out));
    }
    if (name == "abs") {
        if (v.kind == Kind::Float) return Value::from_float(std::fabs(v.number));
        if (v.kind == Kind::Int || v.kind == Kind::Bool) {
            const int64_t i = v.kind == Kind::Bool ? v.boolean : v.integer;
            if (i == INT64_MIN) throw Failure("integer overflow in abs");
            return Value::from_int(i < 0 ? -i : i);
        }
        throw Failure("bad operand type for abs(): '" + type_name(v) + "'");
    }
    if (name == "round") {
        args.check("round", 2, {"precision", "method"});
        const int64_t precision = args.get(0, "precision", Value::from_int(0)).integer;
        const std::string method = as_text(args.get(1, "method", Value::from_string("common")));
        if (!v.is_number()) throw Failure("round filter needs a number, not " + type_name(v));
        const double scale = std::pow(10.0, static_cast<double>(std::clamp<int64_t>(precision, -300, 300)));
        const double x = v.as_double() * scale;
        double r = method == "common" ? round_half_even(x) : method == "ceil" ? std::ceil(x) : method == "floor" ? std::floor(x) : NAN;
        if (std::isnan(r)) throw Failure("round filter: method must be 'common', 'ceil' or 'floor'");
        return Value::from_float(r / scale);
    }
    if (name == "sum") {
        args.check("sum", 2, {"attribute", "start"});
        const Value attribute = args.get(0, "attribute", Value::none());
        Value total = args.get(1, "start", Value::from_int(0));
        for (const Value &item : ev.iterate(v)) {
            CallArgs none;
            const Value x = attribute.is_none() ? item : attribute_of(ev, item, attribute);
            if (!x.is_number() || !total.is_number()) throw Failure("sum filter: unsupported operand types");
            if (x.kind == Kind::Float || total.kind == Kind::Float) total = Value::from_float(total.as_double() + x.as_double());
            else total = Value::from_int((total.kind == Kind::Bool ? total.boolean : total.integer) + (x.kind == Kind::Bool ? x.boolean : x.integer));
        }
        return total;
    }
    if (name == "min" || name == "max") {
        const ValueList items = ev.iterate(v);
        if (items.empty()) return Value::undefined("No aggregated item, sequence was empty.");
        Value best = items[0];
        for (const Value &item : items)
            if (name == "min" ? less_than(item, best) : less_than(best, item)) best = item;
        return best;
    }
    if (name == "unique") {
        ValueList out;
        for (const Value &item : ev.iterate(v)) {
            bool seen = false;
            for (const Value &o : out) seen = seen || equals(o, item);
            if (!seen) out.push_back(item);
        }
        return Value::new_list(std::move(out));
    }
    if (name == "sort") return sort_values(ev, v, args);
    if (name == "indent") {
        args.check("indent", 3, {"width", "first", "blank"});
        const Value width = args.get(0, "width", Value::from_int(4));
        const std::string pad = width.is_string() ? width.text : std::string(static_cast<size_t>(std::clamp<int64_t>(width.integer, 0, 256)), ' ');
        const bool first = args.get(1, "first", Value::from_bool(false)).truthy();
        const bool blank = args.get(2, "blank", Value::from_bool(false)).truthy();
        const std::string text = as_text(v);
        std::vector<std::string> lines = py_split(text, nullptr, -1, false);
        // Split on "\n" keeping empty lines (jinja2 uses splitlines; newlines are "\n" here).
        lines.clear();
        size_t start = 0;
        while (true) {
            const size_t nl = text.find('\n', start);
            lines.push_back(text.substr(start, nl == std::string::npos ? std::string::npos : nl - start));
            if (nl == std::string::npos) break;
            start = nl + 1;
        }
        const bool trailing = !text.empty() && text.back() == '\n';
        if (trailing) lines.pop_back();
        std::string out;
        for (size_t i = 0; i < lines.size(); ++i) {
            if (i) out += "\n";
            const bool pad_it = (i > 0 || first) && (blank || !lines[i].empty());
            if (pad_it) out += pad;
            out += lines[i];
            ev.check_size(out.size());
        }
        if (trailing) out += "\n";
        return Value::from_string(std::move(out));
    }
    if (name == "format") {
        std::string out = percent_format(as_text(v), args);
        ev.check_size(out.size());
        return Value::from_string(std::move(out));
    }
    if (name == "wordcount") return Value::from_int(static_cast<int64_t>(py_split(as_text(v), nullptr, -1, false).size()));
    if (name == "e" || name == "escape") {
        std::string out;
        for (char c : as_text(v)) {
            switch (c) {
            case '&': out += "&amp;"; break;
            case '<': out += "&lt;"; break;
            case '>': out += "&gt;"; break;
            case '"': out += "&#34;"; break;
            case '\'': out += "&#39;"; break;
            default: out.push_back(c);
            }
        }
        return Value::from_string(std::move(out));
    }
    if (name == "batch") {
        const int64_t size = args.get(0, "linecount", Value::from_int(1)).integer;
        if (size <= 0) throw Failure("batch filter: the size must be positive");
        ValueList out, cur;
        for (const Value &item : ev.iterate(v)) {
            cur.push_back(item);
            if (static_cast<int64_t>(cur.size()) == size) {
                out.push_back(Value::new_list(std::move(cur)));
                cur.clear();
            }
        }
        if (!cur.empty()) {
            if (args.has(1, "fill_with"))
                while (static_cast<int64_t>(cur.size()) < size) cur.push_back(args.get(1, "fill_with"));
            out.push_back(Value::new_list(std::move(cur)));
        }
        return Value::new_list(std::move(out));
    }
    throw Failure("no filter named '" + name + "'");
}

}  // namespace mst::jinja
