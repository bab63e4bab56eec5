#include "chat/jinja_eval.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <optional>

#include "chat/jinja_text.h"

namespace mst::jinja {

Value CallArgs::get(size_t index, const char *name, Value fallback) const {
    if (index < positional.size()) return positional[index];
    for (const auto &[k, v] : named)
        if (name && k == name) return v;
    return fallback;
}

bool CallArgs::has(size_t index, const char *name) const {
    if (index < positional.size()) return true;
    for (const auto &[k, v] : named)
        if (name && k == name) return true;
    return false;
}

void CallArgs::check(const char *what, size_t max_positional, std::initializer_list<const char *> allowed) const {
    if (positional.size() > max_positional)
        throw Failure(std::string(what) + " takes at most " + std::to_string(max_positional) + " positional arguments, " +
                      std::to_string(positional.size()) + " given");
    for (const auto &[k, v] : named) {
        bool ok = false;
        for (const char *a : allowed) ok = ok || k == a;
        if (!ok) throw Failure(std::string(what) + " got an unexpected keyword argument '" + k + "'");
    }
}

int64_t int_arg(const Value &v, const char *what) {
    if (v.kind == Kind::Int) return v.integer;
    if (v.kind == Kind::Bool) return v.boolean;
    throw Failure(std::string(what) + " needs an integer, not " + type_name(v));
}

std::string str_arg(const Value &v, const char *what) {
    if (!v.is_string()) throw Failure(std::string(what) + " needs a string, not " + type_name(v));
    return v.text;
}

const Value *Scope::lookup(const std::string &name) const {
    for (const Scope *s = this; s; s = s->parent_.get()) {
        const auto it = s->vars_.find(name);
        if (it != s->vars_.end()) return &it->second;
    }
    return nullptr;
}

std::string type_name(const Value &v) {
    switch (v.kind) {
    case Kind::Undefined: return "Undefined";
    case Kind::None: return "NoneType";
    case Kind::Bool: return "bool";
    case Kind::Int: return "int";
    case Kind::Float: return "float";
    case Kind::String: return "str";
    case Kind::List: return v.is_tuple ? "tuple" : "list";
    case Kind::Dict: return "dict";
    case Kind::Function: return "function";
    case Kind::Namespace: return "Namespace";
    }
    return "object";
}

namespace {
[[noreturn]] void fail_undefined(const Value &v) {
    throw Failure(v.text.empty() ? std::string("a value is undefined") : v.text);
}
}  // namespace

bool less_than(const Value &a, const Value &b) {
    if (a.is_undefined()) fail_undefined(a);
    if (b.is_undefined()) fail_undefined(b);
    if (a.is_number() && b.is_number()) {
        if (a.kind != Kind::Float && b.kind != Kind::Float) {
            const int64_t x = a.kind == Kind::Bool ? a.boolean : a.integer;
            const int64_t y = b.kind == Kind::Bool ? b.boolean : b.integer;
            return x < y;
        }
        return a.as_double() < b.as_double();
    }
    if (a.is_string() && b.is_string()) return a.text < b.text;  // UTF-8 byte order is code point order
    if (a.is_list() && b.is_list()) {
        const size_t n = std::min(a.list->size(), b.list->size());
        for (size_t i = 0; i < n; ++i) {
            if (!equals((*a.list)[i], (*b.list)[i])) return less_than((*a.list)[i], (*b.list)[i]);
        }
        return a.list->size() < b.list->size();
    }
    throw Failure("'<' not supported between instances of '" + type_name(a) + "' and '" + type_name(b) + "'");
}

namespace {
// Bounds the C++ recursion of eval/exec, whatever mix of nested expressions, blocks and
// macro calls causes it, so that no template can overflow the stack.
struct NestingGuard {
    int &depth;
    NestingGuard(int &d, int limit) : depth(d) {
        if (++depth > limit) {
            --depth;
            throw Failure("the template nests expressions, blocks and macro calls deeper than " + std::to_string(limit));
        }
    }
    ~NestingGuard() { --depth; }
};
}  // namespace

Evaluator::Evaluator(const RenderOptions &options, std::shared_ptr<Scope> globals)
    : options_(options), scope_(std::move(globals)) {}

Evaluator::~Evaluator() {
    // `set ns.self = ns` makes a namespace own itself; emptying every namespace still
    // alive breaks such cycles once nothing else can reach them.
    for (const auto &weak : namespaces_)
        if (auto dict = weak.lock()) {
            ValueDict doomed;
            doomed.swap(*dict);
        }
}

Value Evaluator::new_namespace(ValueDict items) {
    Value ns = Value::new_namespace(std::move(items));
    // Most namespaces (every loop's `loop`) die young: drop their entries as the list grows.
    if (namespaces_.size() >= prune_at_) {
        std::erase_if(namespaces_, [](const std::weak_ptr<ValueDict> &w) { return w.expired(); });
        prune_at_ = std::max<size_t>(64, 2 * namespaces_.size());
    }
    namespaces_.push_back(ns.dict);
    return ns;
}

void Evaluator::step() {
    if (++steps_ > options_.max_steps)
        throw Failure("the template ran more than " + std::to_string(options_.max_steps) + " steps (a runaway loop?)");
}

void Evaluator::check_size(size_t bytes) const {
    if (bytes > options_.max_output_bytes)
        throw Failure("the output would pass the limit of " + std::to_string(options_.max_output_bytes) + " bytes");
}

void Evaluator::run(const Body &body, std::string &out) {
    if (exec(body, out) != Flow::Normal) throw Failure("'break' or 'continue' outside a for loop");
}

Evaluator::Flow Evaluator::exec(const Body &body, std::string &out) {
    for (const StmtPtr &s : body) {
        const Flow flow = exec_stmt(*s, out);
        if (flow != Flow::Normal) return flow;
    }
    return Flow::Normal;
}

std::string Evaluator::render_body(const Body &body) {
    std::string out;
    if (exec(body, out) != Flow::Normal) throw Failure("'break' or 'continue' outside a for loop");
    return out;
}

Evaluator::Flow Evaluator::exec_stmt(const Stmt &s, std::string &out) {
    step();
    NestingGuard nesting(nesting_, kMaxNesting);
    line_ = s.line;
    switch (s.kind) {
    case StmtKind::Text:
        check_size(out.size() + s.text.size());
        out += s.text;
        break;
    case StmtKind::Output: {
        const std::string text = to_str(eval(*s.expr));
        line_ = s.line;
        check_size(out.size() + text.size());
        out += text;
        break;
    }
    case StmtKind::If:
        for (const auto &[cond, body] : s.branches) {
            if (eval(*cond).truthy()) return exec(body, out);
        }
        return exec(s.else_body, out);
    case StmtKind::For: exec_for(s, out); break;
    case StmtKind::Set: assign(s.target, eval(*s.expr)); break;
    case StmtKind::SetBlock: assign(s.target, Value::from_string(render_body(s.body))); break;
    case StmtKind::Macro: scope_->set(s.text, make_macro(s)); break;
    case StmtKind::CallBlock: {
        // The body becomes `caller()` inside the macro being called.
        const Expr &call_expr = *s.expr;
        Value callee = eval(*call_expr.a);
        CallArgs args;
        for (const auto &arg : call_expr.items) args.positional.push_back(eval(*arg));
        for (const auto &[k, v] : call_expr.kwargs) args.named.emplace_back(k, eval(*v));
        std::weak_ptr<Scope> defined_in = scope_;
        const Stmt *block = &s;
        args.named.emplace_back("caller", Value::new_function([defined_in, block](Evaluator &ev, CallArgs &a) {
            auto parent = defined_in.lock();
            if (!parent) throw Failure("caller() used after the block that defined it ended");
            auto saved = ev.scope_;
            ev.scope_ = std::make_shared<Scope>(parent);
            for (size_t i = 0; i < block->params.size(); ++i) {
                const MacroParam &p = block->params[i];
                Value v = a.get(i, p.name.c_str());
                if (v.is_undefined() && p.default_value) v = ev.eval(*p.default_value);
                ev.scope_->set(p.name, v);
            }
            std::string text;
            try {
                text = ev.render_body(block->body);
            } catch (...) {
                ev.scope_ = saved;
                throw;
            }
            ev.scope_ = saved;
            return Value::from_string(std::move(text));
        }));
        const std::string text = to_str(call(callee, args));
        check_size(out.size() + text.size());
        out += text;
        break;
    }
    case StmtKind::FilterBlock: {
        // Apply the chain innermost first; the innermost filter's subject is the body.
        std::vector<const Expr *> chain;
        for (const Expr *f = s.expr.get(); f; f = f->a.get()) chain.push_back(f);
        Value v = Value::from_string(render_body(s.body));
        for (auto it = chain.rbegin(); it != chain.rend(); ++it) {
            CallArgs args;
            for (const auto &arg : (*it)->items) args.positional.push_back(eval(*arg));
            for (const auto &[k, x] : (*it)->kwargs) args.named.emplace_back(k, eval(*x));
            v = apply_filter(*this, (*it)->name, v, args);
        }
        const std::string text = to_str(v);
        check_size(out.size() + text.size());
        out += text;
        break;
    }
    case StmtKind::Break: return Flow::Break;
    case StmtKind::Continue: return Flow::Continue;
    case StmtKind::Block: return exec(s.body, out);
    }
    return Flow::Normal;
}

void Evaluator::assign(const Target &target, Value v) {
    if (!target.attr.empty()) {
        const Value *ns = scope_->lookup(target.names[0]);
        if (!ns || ns->kind != Kind::Namespace)
            throw Failure("cannot assign attribute on non-namespace object ('" + target.names[0] + "')");
        Value holder = *ns;  // shares the namespace's dict
        holder.set(target.attr, std::move(v));
        return;
    }
    if (target.names.size() == 1) {
        scope_->set(target.names[0], std::move(v));
        return;
    }
    const std::vector<Value> items = iterate(v);
    if (items.size() != target.names.size())
        throw Failure("cannot unpack " + std::to_string(items.size()) + " values into " +
                      std::to_string(target.names.size()) + " names");
    for (size_t i = 0; i < items.size(); ++i) scope_->set(target.names[i], items[i]);
}

void Evaluator::exec_for(const Stmt &s, std::string &out) {
    const std::vector<Value> all = iterate(eval(*s.expr));
    auto outer = scope_;
    // Each iteration gets a fresh scope, as in jinja2: a `set` in one iteration is gone
    // in the next and after the loop (hence namespace()).
    std::vector<Value> items;
    if (s.condition) {
        for (const Value &item : all) {
            scope_ = std::make_shared<Scope>(outer);
            try {
                assign(s.target, item);
                if (eval(*s.condition).truthy()) items.push_back(item);
            } catch (...) {
                scope_ = outer;
                throw;
            }
        }
        scope_ = outer;
    } else {
        items = all;
    }
    if (items.empty()) {
        if (exec(s.else_body, out) != Flow::Normal) throw Failure("'break' or 'continue' outside a for loop");
        return;
    }
    const int64_t n = static_cast<int64_t>(items.size());
    try {
        for (int64_t i = 0; i < n; ++i) {
            scope_ = std::make_shared<Scope>(outer);
            Value loop = new_namespace();
            loop.set("index0", Value::from_int(i));
            loop.set("index", Value::from_int(i + 1));
            loop.set("revindex0", Value::from_int(n - i - 1));
            loop.set("revindex", Value::from_int(n - i));
            loop.set("first", Value::from_bool(i == 0));
            loop.set("last", Value::from_bool(i == n - 1));
            loop.set("length", Value::from_int(n));
            loop.set("depth", Value::from_int(1));
            loop.set("depth0", Value::from_int(0));
            loop.set("previtem", i > 0 ? items[static_cast<size_t>(i - 1)] : Value::undefined("there is no previous item"));
            loop.set("nextitem", i + 1 < n ? items[static_cast<size_t>(i + 1)] : Value::undefined("there is no next item"));
            loop.set("cycle", Value::new_function([i](Evaluator &, CallArgs &a) {
                if (a.positional.empty()) throw Failure("loop.cycle() needs at least one value");
                return a.positional[static_cast<size_t>(i) % a.positional.size()];
            }));
            scope_->set("loop", loop);
            assign(s.target, items[static_cast<size_t>(i)]);
            if (exec(s.body, out) == Flow::Break) break;
        }
    } catch (...) {
        scope_ = outer;
        throw;
    }
    scope_ = outer;
}

Value Evaluator::make_macro(const Stmt &s) {
    // The macro is stored in the scope it closes over; holding that scope weakly keeps
    // the two from owning each other (a reference cycle would leak both).
    std::weak_ptr<Scope> defined_in = scope_;
    const Stmt *macro = &s;
    return Value::new_function([defined_in, macro](Evaluator &ev, CallArgs &args) {
        auto parent = defined_in.lock();
        if (!parent) throw Failure("macro '" + macro->text + "' called after the block that defined it ended");
        if (args.positional.size() > macro->params.size())
            throw Failure("macro '" + macro->text + "' takes " + std::to_string(macro->params.size()) + " arguments, " +
                          std::to_string(args.positional.size()) + " given");
        if (++ev.call_depth_ > ev.options_.max_depth) {
            --ev.call_depth_;
            throw Failure("macro calls nested deeper than " + std::to_string(ev.options_.max_depth) +
                          " (unbounded recursion in '" + macro->text + "'?)");
        }
        auto saved_scope = ev.scope_;
        const int saved_line = ev.line_;
        std::string text;
        try {
            ev.scope_ = std::make_shared<Scope>(parent);
            for (size_t i = 0; i < macro->params.size(); ++i) {
                const MacroParam &p = macro->params[i];
                Value v = args.get(i, p.name.c_str());
                if (!args.has(i, p.name.c_str()))
                    v = p.default_value ? ev.eval(*p.default_value)
                                        : Value::undefined("parameter '" + p.name + "' was not provided");
                ev.scope_->set(p.name, v);
            }
            for (const auto &[k, v] : args.named) {
                bool known = k == "caller";
                for (const auto &p : macro->params) known = known || p.name == k;
                if (!known) throw Failure("macro '" + macro->text + "' takes no keyword argument '" + k + "'");
                if (k == "caller") ev.scope_->set("caller", v);
            }
            text = ev.render_body(macro->body);
        } catch (...) {
            ev.scope_ = saved_scope;
            --ev.call_depth_;
            throw;
        }
        ev.scope_ = saved_scope;
        ev.line_ = saved_line;
        --ev.call_depth_;
        return Value::from_string(std::move(text));
    });
}

Value Evaluator::call(const Value &callee, CallArgs &args) {
    if (callee.is_undefined()) fail_undefined(callee);
    if (callee.kind != Kind::Function) throw Failure("'" + type_name(callee) + "' object is not callable");
    return (*callee.function)(*this, args);
}

std::vector<Value> Evaluator::iterate(const Value &v) {
    switch (v.kind) {
    case Kind::Undefined: return {};
    case Kind::List: return *v.list;
    case Kind::Dict: {
        std::vector<Value> keys;
        for (const auto &[k, x] : *v.dict) keys.push_back(Value::from_string(k));
        return keys;
    }
    case Kind::String: {
        std::vector<Value> chars;
        std::string one;
        for (char32_t c : decode_utf8(v.text)) {
            one.clear();
            append_utf8(one, c);
            chars.push_back(Value::from_string(one));
        }
        return chars;
    }
    default: throw Failure("'" + type_name(v) + "' object is not iterable");
    }
}

Value Evaluator::get_attr(const Value &obj, const std::string &name) {
    switch (obj.kind) {
    case Kind::Undefined: fail_undefined(obj);
    case Kind::Dict: {
        // jinja2 tries getattr first: d.items is the method even when "items" is a key.
        if (name == "items" || name == "keys" || name == "values" || name == "get") return bound_method(obj, name);
        if (const Value *v = obj.find(name)) return *v;
        return Value::undefined("'dict object' has no attribute '" + name + "'");
    }
    case Kind::Namespace:
        if (const Value *v = obj.find(name)) return *v;
        return Value::undefined("'" + type_name(obj) + " object' has no attribute '" + name + "'");
    case Kind::String: case Kind::List: {
        Value m = bound_method(obj, name);
        if (!m.is_undefined()) return m;
        return Value::undefined("'" + type_name(obj) + " object' has no attribute '" + name + "'");
    }
    case Kind::None: return Value::undefined("'None' has no attribute '" + name + "'");
    default: return Value::undefined("'" + type_name(obj) + " object' has no attribute '" + name + "'");
    }
}

Value Evaluator::get_item(const Value &obj, const Value &key) {
    if (obj.is_undefined()) fail_undefined(obj);
    if (obj.is_mapping() && key.is_string()) {
        if (const Value *v = obj.find(key.text)) return *v;
        // ...and subscripts fall back to attributes: d['items'] is the method if no key.
        if (obj.kind == Kind::Dict) return get_attr(obj, key.text).is_undefined()
                                               ? Value::undefined("'dict object' has no attribute '" + key.text + "'")
                                               : get_attr(obj, key.text);
    }
    if ((obj.is_list() || obj.is_string()) && (key.kind == Kind::Int || key.kind == Kind::Bool)) {
        int64_t i = key.kind == Kind::Bool ? key.boolean : key.integer;
        if (obj.is_list()) {
            const int64_t n = static_cast<int64_t>(obj.list->size());
            if (i < 0) i += n;
            if (i < 0 || i >= n) return Value::undefined(type_name(obj) + " object has no element " + std::to_string(key.integer));
            return (*obj.list)[static_cast<size_t>(i)];
        }
        const std::vector<char32_t> cps = decode_utf8(obj.text);
        const int64_t n = static_cast<int64_t>(cps.size());
        if (i < 0) i += n;
        if (i < 0 || i >= n) return Value::undefined("str object has no element " + std::to_string(key.integer));
        return Value::from_string(encode_utf8(cps, static_cast<size_t>(i), static_cast<size_t>(i + 1)));
    }
    if (key.is_string()) return get_attr(obj, key.text);
    return Value::undefined("'" + type_name(obj) + " object' has no element " + to_repr(key));
}

Value Evaluator::slice(const Value &obj, const Value &start_v, const Value &stop_v, const Value &stride_v) {
    if (obj.is_undefined()) fail_undefined(obj);
    auto as_index = [](const Value &v, const char *what) -> std::optional<int64_t> {
        if (v.is_undefined() || v.is_none()) return std::nullopt;
        if (v.kind == Kind::Int) return v.integer;
        if (v.kind == Kind::Bool) return static_cast<int64_t>(v.boolean);
        throw Failure(std::string("slice ") + what + " must be an integer or None, not " + type_name(v));
    };
    const std::optional<int64_t> start = as_index(start_v, "start"), stop = as_index(stop_v, "stop");
    const int64_t step = as_index(stride_v, "step").value_or(1);
    if (step == 0) throw Failure("slice step cannot be zero");
    std::vector<char32_t> cps;
    int64_t n = 0;
    if (obj.is_list()) n = static_cast<int64_t>(obj.list->size());
    else if (obj.is_string()) n = static_cast<int64_t>((cps = decode_utf8(obj.text)).size());
    else throw Failure("'" + type_name(obj) + "' object is not subscriptable");
    // Python's slice.indices().
    auto clamp = [&](std::optional<int64_t> v, int64_t dflt) {
        if (!v) return dflt;
        int64_t x = *v;
        if (x < 0) x += n;
        if (step > 0) return std::clamp<int64_t>(x, 0, n);
        return std::clamp<int64_t>(x, -1, n - 1);
    };
    const int64_t b = clamp(start, step > 0 ? 0 : n - 1);
    const int64_t e = clamp(stop, step > 0 ? n : -1);
    ValueList items;
    std::string text;
    for (int64_t i = b; step > 0 ? i < e : i > e; i += step) {
        if (obj.is_list()) items.push_back((*obj.list)[static_cast<size_t>(i)]);
        else append_utf8(text, cps[static_cast<size_t>(i)]);
    }
    if (obj.is_list()) {
        Value v = Value::new_list(std::move(items));
        v.is_tuple = obj.is_tuple;
        return v;
    }
    return Value::from_string(std::move(text));
}

namespace {
int64_t int_of(const Value &v) { return v.kind == Kind::Bool ? v.boolean : v.integer; }
bool is_intlike(const Value &v) { return v.kind == Kind::Int || v.kind == Kind::Bool; }

[[noreturn]] void bad_operands(const std::string &op, const Value &a, const Value &b) {
    if (a.is_undefined()) fail_undefined(a);
    if (b.is_undefined()) fail_undefined(b);
    throw Failure("unsupported operand type(s) for " + op + ": '" + type_name(a) + "' and '" + type_name(b) + "'");
}
}  // namespace

Value Evaluator::binary(const std::string &op, const Value &a, const Value &b) {
    if (op == "~") {
        std::string s = to_str(a);
        const std::string t = to_str(b);
        check_size(s.size() + t.size());
        return Value::from_string(s + t);
    }
    const bool ints = is_intlike(a) && is_intlike(b);
    const bool nums = a.is_number() && b.is_number();
    int64_t r = 0;
    if (op == "+") {
        if (ints) {
            if (__builtin_add_overflow(int_of(a), int_of(b), &r)) throw Failure("integer overflow in +");
            return Value::from_int(r);
        }
        if (nums) return Value::from_float(a.as_double() + b.as_double());
        if (a.is_string() && b.is_string()) {
            check_size(a.text.size() + b.text.size());
            return Value::from_string(a.text + b.text);
        }
        if (a.is_list() && b.is_list() && a.is_tuple == b.is_tuple) {
            check_size(a.list->size() + b.list->size());
            ValueList items = *a.list;
            items.insert(items.end(), b.list->begin(), b.list->end());
            Value v = Value::new_list(std::move(items));
            v.is_tuple = a.is_tuple;
            return v;
        }
        bad_operands(op, a, b);
    }
    if (op == "-") {
        if (ints) {
            if (__builtin_sub_overflow(int_of(a), int_of(b), &r)) throw Failure("integer overflow in -");
            return Value::from_int(r);
        }
        if (nums) return Value::from_float(a.as_double() - b.as_double());
        bad_operands(op, a, b);
    }
    if (op == "*") {
        if (ints) {
            if (__builtin_mul_overflow(int_of(a), int_of(b), &r)) throw Failure("integer overflow in *");
            return Value::from_int(r);
        }
        if (nums) return Value::from_float(a.as_double() * b.as_double());
        const Value *seq = a.is_string() || a.is_list() ? &a : &b;
        const Value *count = seq == &a ? &b : &a;
        if ((seq->is_string() || seq->is_list()) && is_intlike(*count)) {
            const int64_t times = std::max<int64_t>(0, int_of(*count));
            const size_t unit = seq->is_string() ? seq->text.size() : seq->list->size();
            const size_t limit = seq->is_string() ? options_.max_output_bytes : options_.max_items;
            if (unit && static_cast<uint64_t>(times) > limit / unit)
                throw Failure(seq->is_string() ? "the repeated string would pass the limit of " + std::to_string(limit) + " bytes"
                                               : "the repeated list would pass the limit of " + std::to_string(limit) + " items");
            if (seq->is_string()) {
                std::string s;
                for (int64_t i = 0; i < times; ++i) s += seq->text;
                return Value::from_string(std::move(s));
            }
            ValueList items;
            for (int64_t i = 0; i < times; ++i) items.insert(items.end(), seq->list->begin(), seq->list->end());
            return Value::new_list(std::move(items));
        }
        bad_operands(op, a, b);
    }
    if (op == "/" || op == "//" || op == "%") {
        if (!nums) bad_operands(op, a, b);
        if (b.as_double() == 0.0) throw Failure(op == "%" ? "modulo by zero" : "division by zero");
        if (op == "/") return Value::from_float(a.as_double() / b.as_double());
        if (ints) {
            const int64_t x = int_of(a), y = int_of(b);
            if (x == std::numeric_limits<int64_t>::min() && y == -1) throw Failure("integer overflow in " + op);
            int64_t q = x / y, m = x % y;
            if (m != 0 && ((m < 0) != (y < 0))) {  // Python floors toward negative infinity
                --q;
                m += y;
            }
            return Value::from_int(op == "//" ? q : m);
        }
        const double x = a.as_double(), y = b.as_double();
        if (op == "//") return Value::from_float(std::floor(x / y));
        double m = std::fmod(x, y);
        if (m != 0 && ((m < 0) != (y < 0))) m += y;
        return Value::from_float(m);
    }
    if (op == "**") {
        if (ints && int_of(b) >= 0) {
            int64_t result = 1, base = int_of(a);
            for (int64_t e = int_of(b); e > 0; --e) {
                if (__builtin_mul_overflow(result, base, &result)) throw Failure("integer overflow in **");
                if (result == 0 || result == 1) break;
            }
            return Value::from_int(result);
        }
        if (nums) return Value::from_float(std::pow(a.as_double(), b.as_double()));
        bad_operands(op, a, b);
    }
    throw Failure("unknown operator " + op);
}

bool Evaluator::compare(const std::string &op, const Value &a, const Value &b) {
    if (op == "==") return equals(a, b);
    if (op == "!=") return !equals(a, b);
    if (op == "<") return less_than(a, b);
    if (op == ">") return less_than(b, a);
    if (op == "<=") return less_than(a, b) || equals(a, b);
    if (op == ">=") return less_than(b, a) || equals(a, b);
    if (op == "in" || op == "notin") {
        bool found = false;
        if (b.is_string()) {
            if (!a.is_string())
                throw Failure("'in <string>' requires string as left operand, not " + type_name(a));
            found = b.text.find(a.text) != std::string::npos;
        } else if (b.is_list()) {
            for (const Value &item : *b.list) found = found || equals(a, item);
        } else if (b.is_mapping()) {
            found = a.is_string() && b.find(a.text) != nullptr;
        } else if (!b.is_undefined()) {
            throw Failure("argument of type '" + type_name(b) + "' is not iterable");
        }
        return op == "in" ? found : !found;
    }
    throw Failure("unknown comparison " + op);
}

Value Evaluator::eval(const Expr &e) {
    step();
    NestingGuard nesting(nesting_, kMaxNesting);
    line_ = e.line;
    switch (e.kind) {
    case ExprKind::Literal: return e.value;
    case ExprKind::Name: {
        if (const Value *v = scope_->lookup(e.name)) return *v;
        return Value::undefined("'" + e.name + "' is undefined");
    }
    case ExprKind::List: case ExprKind::Tuple: {
        ValueList items;
        for (const auto &item : e.items) items.push_back(eval(*item));
        return e.kind == ExprKind::List ? Value::new_list(std::move(items)) : Value::new_tuple(std::move(items));
    }
    case ExprKind::Dict: {
        Value d = Value::new_dict();
        for (size_t i = 0; i + 1 < e.items.size(); i += 2) {
            const Value key = eval(*e.items[i]);
            if (!key.is_string()) throw Failure("dict keys must be strings here, not " + type_name(key));
            d.set(key.text, eval(*e.items[i + 1]));
        }
        return d;
    }
    case ExprKind::Attr: return get_attr(eval(*e.a), e.name);
    case ExprKind::Item: {
        const Value obj = eval(*e.a);
        return get_item(obj, eval(*e.items[0]));
    }
    case ExprKind::Slice: {
        const Value obj = eval(*e.a);
        Value parts[3];
        for (size_t i = 0; i < 3; ++i)
            if (e.items[i]) parts[i] = eval(*e.items[i]);
        return slice(obj, parts[0], parts[1], parts[2]);
    }
    case ExprKind::Call: {
        const Value callee = eval(*e.a);
        CallArgs args;
        for (const auto &arg : e.items) args.positional.push_back(eval(*arg));
        for (const auto &[k, v] : e.kwargs) args.named.emplace_back(k, eval(*v));
        line_ = e.line;
        return call(callee, args);
    }
    case ExprKind::Filter: {
        const Value subject = eval(*e.a);
        CallArgs args;
        for (const auto &arg : e.items) args.positional.push_back(eval(*arg));
        for (const auto &[k, v] : e.kwargs) args.named.emplace_back(k, eval(*v));
        line_ = e.line;
        return apply_filter(*this, e.name, subject, args);
    }
    case ExprKind::Test: {
        const Value subject = eval(*e.a);
        CallArgs args;
        for (const auto &arg : e.items) args.positional.push_back(eval(*arg));
        for (const auto &[k, v] : e.kwargs) args.named.emplace_back(k, eval(*v));
        line_ = e.line;
        return Value::from_bool(apply_test(*this, e.name, subject, args) != e.negated);
    }
    case ExprKind::Unary: {
        const Value v = eval(*e.a);
        if (e.name == "not") return Value::from_bool(!v.truthy());
        if (v.is_undefined()) fail_undefined(v);
        if (!v.is_number()) throw Failure("bad operand type for unary " + e.name + ": '" + type_name(v) + "'");
        if (e.name == "+") return v.kind == Kind::Bool ? Value::from_int(v.boolean) : v;
        if (v.kind == Kind::Float) return Value::from_float(-v.number);
        if (int_of(v) == std::numeric_limits<int64_t>::min()) throw Failure("integer overflow in unary -");
        return Value::from_int(-int_of(v));
    }
    case ExprKind::Binary: {
        Value a = eval(*e.a);
        if (e.name == "and") return a.truthy() ? eval(*e.items[0]) : a;
        if (e.name == "or") return a.truthy() ? a : eval(*e.items[0]);
        const Value b = eval(*e.items[0]);
        line_ = e.line;
        return binary(e.name, a, b);
    }
    case ExprKind::Compare: {
        Value left = eval(*e.a);
        for (size_t i = 0; i < e.ops.size(); ++i) {
            Value right = eval(*e.items[i]);
            line_ = e.line;
            if (!compare(e.ops[i], left, right)) return Value::from_bool(false);
            left = std::move(right);
        }
        return Value::from_bool(true);
    }
    case ExprKind::Cond:
        if (eval(*e.a).truthy()) return eval(*e.items[0]);
        if (e.items[1]) return eval(*e.items[1]);
        return Value::undefined("the conditional expression has no else branch");
    }
    return Value::undefined();
}

}  // namespace mst::jinja
