#include "chat/jinja_value.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>

#include "chat/jinja_text.h"

namespace mst::jinja {

Value Value::undefined(std::string why) {
    Value v;
    v.text = std::move(why);
    return v;
}
Value Value::none() {
    Value v;
    v.kind = Kind::None;
    return v;
}
Value Value::from_bool(bool b) {
    Value v;
    v.kind = Kind::Bool;
    v.boolean = b;
    return v;
}
Value Value::from_int(int64_t i) {
    Value v;
    v.kind = Kind::Int;
    v.integer = i;
    return v;
}
Value Value::from_float(double d) {
    Value v;
    v.kind = Kind::Float;
    v.number = d;
    return v;
}
Value Value::from_string(std::string s) {
    Value v;
    v.kind = Kind::String;
    v.text = std::move(s);
    return v;
}
Value Value::new_list(ValueList items) {
    Value v;
    v.kind = Kind::List;
    v.list = std::make_shared<ValueList>(std::move(items));
    return v;
}
Value Value::new_tuple(ValueList items) {
    Value v = new_list(std::move(items));
    v.is_tuple = true;
    return v;
}
Value Value::new_dict(ValueDict items) {
    Value v;
    v.kind = Kind::Dict;
    v.dict = std::make_shared<ValueDict>(std::move(items));
    return v;
}
Value Value::new_namespace(ValueDict items) {
    Value v = new_dict(std::move(items));
    v.kind = Kind::Namespace;
    return v;
}
Value Value::new_function(NativeFunction f) {
    Value v;
    v.kind = Kind::Function;
    v.function = std::make_shared<NativeFunction>(std::move(f));
    return v;
}

bool Value::truthy() const {
    switch (kind) {
    case Kind::Undefined: case Kind::None: return false;
    case Kind::Bool: return boolean;
    case Kind::Int: return integer != 0;
    case Kind::Float: return number != 0.0;
    case Kind::String: return !text.empty();
    case Kind::List: return !list->empty();
    case Kind::Dict: return !dict->empty();
    case Kind::Function: case Kind::Namespace: return true;
    }
    return false;
}

double Value::as_double() const {
    switch (kind) {
    case Kind::Bool: return boolean ? 1.0 : 0.0;
    case Kind::Int: return static_cast<double>(integer);
    case Kind::Float: return number;
    default: return 0.0;
    }
}

const Value *Value::find(const std::string &key) const {
    if (!dict) return nullptr;
    for (const auto &[k, v] : *dict)
        if (k == key) return &v;
    return nullptr;
}

Value *Value::find(const std::string &key) {
    return const_cast<Value *>(std::as_const(*this).find(key));  // the dict is this value's own
}

void Value::set(const std::string &key, Value v) {
    if (Value *slot = find(key)) {
        *slot = std::move(v);
        return;
    }
    dict->emplace_back(key, std::move(v));
}

bool equals(const Value &a, const Value &b) {
    if (a.is_number() && b.is_number()) {
        if (a.kind != Kind::Float && b.kind != Kind::Float) {
            const int64_t x = a.kind == Kind::Bool ? a.boolean : a.integer;
            const int64_t y = b.kind == Kind::Bool ? b.boolean : b.integer;
            return x == y;
        }
        return a.as_double() == b.as_double();
    }
    if (a.kind != b.kind) return false;
    switch (a.kind) {
    case Kind::Undefined: case Kind::None: return true;
    case Kind::String: return a.text == b.text;
    case Kind::List:
        if (a.is_tuple != b.is_tuple || a.list->size() != b.list->size()) return false;
        for (size_t i = 0; i < a.list->size(); ++i)
            if (!equals((*a.list)[i], (*b.list)[i])) return false;
        return true;
    case Kind::Dict: {
        if (a.dict->size() != b.dict->size()) return false;
        for (const auto &[k, v] : *a.dict) {
            const Value *other = b.find(k);
            if (!other || !equals(v, *other)) return false;
        }
        return true;
    }
    case Kind::Function: return a.function == b.function;
    case Kind::Namespace: return a.dict == b.dict;
    default: return false;
    }
}

std::string format_float(double d) {
    if (std::isnan(d)) return "nan";
    if (std::isinf(d)) return d > 0 ? "inf" : "-inf";
    // Shortest round-trip digits in scientific form, then laid out as Python's repr:
    // positional for exponents -4..15, scientific (e-05, e+16) otherwise.
    char buf[64];
    const auto result = std::to_chars(buf, buf + sizeof buf, d, std::chars_format::scientific);
    std::string sci(buf, result.ptr);
    const size_t e_at = sci.find('e');
    std::string mantissa = sci.substr(0, e_at);
    const int exponent = std::stoi(sci.substr(e_at + 1));
    const bool negative = mantissa[0] == '-';
    if (negative) mantissa.erase(0, 1);
    std::string digits;
    for (char c : mantissa)
        if (c != '.') digits.push_back(c);
    std::string out = negative ? "-" : "";
    if (exponent >= -4 && exponent < 16) {
        if (exponent < 0) {
            out += "0.";
            out.append(static_cast<size_t>(-exponent - 1), '0');
            out += digits;
        } else if (static_cast<int>(digits.size()) <= exponent + 1) {
            out += digits + std::string(static_cast<size_t>(exponent + 1 - static_cast<int>(digits.size())), '0') + ".0";
        } else {
            out.append(digits, 0, static_cast<size_t>(exponent + 1));
            out.push_back('.');
            out.append(digits, static_cast<size_t>(exponent + 1), std::string::npos);
        }
        return out;
    }
    out += digits.substr(0, 1);
    if (digits.size() > 1) {
        out.push_back('.');
        out.append(digits, 1, std::string::npos);
    }
    char exp[16];
    std::snprintf(exp, sizeof exp, "e%c%02d", exponent < 0 ? '-' : '+', std::abs(exponent));
    return out + exp;
}

namespace {

std::string repr_string(const std::string &s) {
    const bool use_double = s.find('\'') != std::string::npos && s.find('"') == std::string::npos;
    const char quote = use_double ? '"' : '\'';
    std::string out(1, quote);
    for (char32_t c : decode_utf8(s)) {
        if (c == static_cast<char32_t>(quote) || c == '\\') {
            out.push_back('\\');
            out.push_back(static_cast<char>(c));
        } else if (c == '\n') {
            out += "\\n";
        } else if (c == '\r') {
            out += "\\r";
        } else if (c == '\t') {
            out += "\\t";
        } else if (c < 0x20 || c == 0x7F || (c >= 0xDC80 && c <= 0xDCFF)) {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\x%02x", static_cast<unsigned>(c >= 0xDC80 ? c - 0xDC00 : c));
            out += buf;
        } else {
            append_utf8(out, c);
        }
    }
    out.push_back(quote);
    return out;
}

}  // namespace

std::string to_repr(const Value &v) {
    switch (v.kind) {
    case Kind::String: return repr_string(v.text);
    case Kind::List: {
        std::string out = v.is_tuple ? "(" : "[";
        for (size_t i = 0; i < v.list->size(); ++i) {
            if (i) out += ", ";
            out += to_repr((*v.list)[i]);
        }
        if (v.is_tuple && v.list->size() == 1) out += ",";
        return out + (v.is_tuple ? ")" : "]");
    }
    case Kind::Dict: {
        std::string out = "{";
        bool first = true;
        for (const auto &[k, item] : *v.dict) {
            if (!first) out += ", ";
            first = false;
            out += repr_string(k) + ": " + to_repr(item);
        }
        return out + "}";
    }
    default: return to_str(v);
    }
}

std::string to_str(const Value &v) {
    switch (v.kind) {
    case Kind::Undefined: return "";
    case Kind::None: return "None";
    case Kind::Bool: return v.boolean ? "True" : "False";
    case Kind::Int: return std::to_string(v.integer);
    case Kind::Float: return format_float(v.number);
    case Kind::String: return v.text;
    case Kind::List: case Kind::Dict: return to_repr(v);
    case Kind::Function: return "<function>";
    case Kind::Namespace: return "<Namespace>";
    }
    return "";
}

Value from_json(const nlohmann::ordered_json &j, int depth_limit) {
    if (depth_limit < 0) throw Failure("the JSON input is nested too deeply");
    switch (j.type()) {
    case nlohmann::ordered_json::value_t::null: return Value::none();
    case nlohmann::ordered_json::value_t::boolean: return Value::from_bool(j.get<bool>());
    case nlohmann::ordered_json::value_t::number_integer: return Value::from_int(j.get<int64_t>());
    case nlohmann::ordered_json::value_t::number_unsigned: {
        const uint64_t u = j.get<uint64_t>();
        if (u > static_cast<uint64_t>(INT64_MAX)) return Value::from_float(static_cast<double>(u));
        return Value::from_int(static_cast<int64_t>(u));
    }
    case nlohmann::ordered_json::value_t::number_float: return Value::from_float(j.get<double>());
    case nlohmann::ordered_json::value_t::string: return Value::from_string(j.get<std::string>());
    case nlohmann::ordered_json::value_t::array: {
        ValueList items;
        items.reserve(j.size());
        for (const auto &item : j) items.push_back(from_json(item, depth_limit - 1));
        return Value::new_list(std::move(items));
    }
    case nlohmann::ordered_json::value_t::object: {
        ValueDict items;
        items.reserve(j.size());
        for (const auto &[k, item] : j.items()) {
            // A repeated key keeps its first place and its last value, as json.loads does.
            bool replaced = false;
            for (auto &existing : items)
                if (existing.first == k) {
                    existing.second = from_json(item, depth_limit - 1);
                    replaced = true;
                }
            if (!replaced) items.emplace_back(k, from_json(item, depth_limit - 1));
        }
        return Value::new_dict(std::move(items));
    }
    default: return Value::none();
    }
}

namespace {

void json_string(std::string &out, const std::string &s, bool ensure_ascii) {
    out.push_back('"');
    for (char32_t c : decode_utf8(s)) {
        switch (c) {
        case '"': out += "\\\""; continue;
        case '\\': out += "\\\\"; continue;
        case '\n': out += "\\n"; continue;
        case '\r': out += "\\r"; continue;
        case '\t': out += "\\t"; continue;
        case '\b': out += "\\b"; continue;
        case '\f': out += "\\f"; continue;
        default: break;
        }
        char buf[16];
        if (c < 0x20 || (ensure_ascii && c >= 0x7F)) {
            if (c >= 0x10000) {
                const char32_t v = c - 0x10000;
                std::snprintf(buf, sizeof buf, "\\u%04x\\u%04x", static_cast<unsigned>(0xD800 + (v >> 10)),
                              static_cast<unsigned>(0xDC00 + (v & 0x3FF)));
            } else {
                std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(c));
            }
            out += buf;
        } else {
            append_utf8(out, c);
        }
    }
    out.push_back('"');
}

void json_value(std::string &out, const Value &v, const JsonOptions &o, int level, int depth_limit) {
    if (level > depth_limit) throw Failure("tojson: the value is nested too deeply");
    auto newline = [&](int at) {
        if (!o.has_indent) return;
        out.push_back('\n');
        for (int i = 0; i < at; ++i) out += o.indent;
    };
    switch (v.kind) {
    case Kind::None: out += "null"; return;
    case Kind::Bool: out += v.boolean ? "true" : "false"; return;
    case Kind::Int: out += std::to_string(v.integer); return;
    case Kind::Float:
        if (std::isnan(v.number)) out += "NaN";
        else if (std::isinf(v.number)) out += v.number > 0 ? "Infinity" : "-Infinity";
        else out += format_float(v.number);
        return;
    case Kind::String: json_string(out, v.text, o.ensure_ascii); return;
    case Kind::List:
        if (v.list->empty()) {
            out += "[]";
            return;
        }
        out.push_back('[');
        for (size_t i = 0; i < v.list->size(); ++i) {
            if (i) out += o.item_separator;
            newline(level + 1);
            json_value(out, (*v.list)[i], o, level + 1, depth_limit);
        }
        newline(level);
        out.push_back(']');
        return;
    case Kind::Dict: {
        if (v.dict->empty()) {
            out += "{}";
            return;
        }
        std::vector<const std::pair<std::string, Value> *> items;
        for (const auto &item : *v.dict) items.push_back(&item);
        if (o.sort_keys)
            std::stable_sort(items.begin(), items.end(), [](auto *a, auto *b) { return a->first < b->first; });
        out.push_back('{');
        for (size_t i = 0; i < items.size(); ++i) {
            if (i) out += o.item_separator;
            newline(level + 1);
            json_string(out, items[i]->first, o.ensure_ascii);
            out += o.key_separator;
            json_value(out, items[i]->second, o, level + 1, depth_limit);
        }
        newline(level);
        out.push_back('}');
        return;
    }
    case Kind::Undefined: throw Failure("tojson: Object of type Undefined is not JSON serializable");
    case Kind::Function: throw Failure("tojson: a function is not JSON serializable");
    case Kind::Namespace: throw Failure("tojson: Object of type Namespace is not JSON serializable");
    }
}

}  // namespace

std::string to_json(const Value &v, const JsonOptions &options, int depth_limit) {
    std::string out;
    json_value(out, v, options, 0, depth_limit);
    return out;
}

}  // namespace mst::jinja
