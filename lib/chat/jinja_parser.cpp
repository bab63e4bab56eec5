#include "chat/jinja_parser.h"

#include <charconv>
#include <cstdlib>

#include "chat/jinja_eval.h"
#include "core/error.h"

namespace mst::jinja {
namespace {

class Parser {
public:
    Parser(std::vector<Token> tokens, int max_depth) : t_(std::move(tokens)), max_depth_(max_depth) {}

    Program run() {
        Program program;
        program.body = parse_body({});
        return program;
    }

private:
    // ---- token helpers ----
    const Token &peek(size_t ahead = 0) const { return t_[std::min(i_ + ahead, t_.size() - 1)]; }
    const Token &next() {
        const Token &tok = t_[i_];
        if (i_ + 1 < t_.size()) ++i_;
        return tok;
    }
    bool is_op(const char *op, size_t ahead = 0) const { return peek(ahead).type == Tok::Op && peek(ahead).text == op; }
    bool is_name(const char *name, size_t ahead = 0) const {
        return peek(ahead).type == Tok::Name && peek(ahead).text == name;
    }
    static std::string describe(const Token &tok) {
        switch (tok.type) {
        case Tok::Text: return "text";
        case Tok::VarBegin: return "'{{'";
        case Tok::VarEnd: return "'}}'";
        case Tok::BlockBegin: return "'{%'";
        case Tok::BlockEnd: return "'%}'";
        case Tok::Eof: return "the end of the template";
        case Tok::String: return "a string";
        default: return "'" + tok.text + "'";
        }
    }
    template <typename... Args>
    [[noreturn]] void error(int line, fmt::format_string<Args...> format, Args &&...args) const {
        throw Error(MST_ERR_BAD_FORMAT, fmt::format("chat template line {}: ", line) +
                                            fmt::format(format, std::forward<Args>(args)...));
    }
    void expect_op(const char *op) {
        if (!is_op(op)) error(peek().line, "expected '{}', found {}", op, describe(peek()));
        next();
    }
    std::string expect_name() {
        if (peek().type != Tok::Name) error(peek().line, "expected a name, found {}", describe(peek()));
        return next().text;
    }
    void expect_block_end() {
        if (peek().type != Tok::BlockEnd) error(peek().line, "expected '%}}', found {}", describe(peek()));
        next();
    }

    struct DepthGuard {
        Parser &p;
        DepthGuard(Parser &parser, int line) : p(parser) {
            if (++p.depth_ > p.max_depth_) p.error(line, "nesting deeper than {} levels", p.max_depth_);
        }
        ~DepthGuard() { --p.depth_; }
    };

    // ---- statements ----
    // Parses until a block tag whose name is in `ends` (left unconsumed: the caller reads
    // it), or the end of the template when `ends` is empty.
    Body parse_body(const std::vector<std::string> &ends, const char *opened = nullptr, int opened_line = 0) {
        Body body;
        while (true) {
            const Token &tok = peek();
            if (tok.type == Tok::Eof) {
                if (!ends.empty())
                    error(opened_line, "'{}' is never closed (expected '{{% {} %}}' before the end of the template)",
                          opened, ends.back());
                return body;
            }
            if (tok.type == Tok::Text) {
                auto s = std::make_unique<Stmt>();
                s->kind = StmtKind::Text;
                s->line = tok.line;
                s->text = next().text;
                body.push_back(std::move(s));
            } else if (tok.type == Tok::VarBegin) {
                next();
                auto s = std::make_unique<Stmt>();
                s->kind = StmtKind::Output;
                s->line = tok.line;
                s->expr = parse_expr();
                if (peek().type != Tok::VarEnd) error(peek().line, "expected '}}}}', found {}", describe(peek()));
                next();
                body.push_back(std::move(s));
            } else if (tok.type == Tok::BlockBegin) {
                const Token &name = peek(1);
                if (name.type != Tok::Name) error(name.line, "expected a tag name after '{{%', found {}", describe(name));
                for (const std::string &end : ends)
                    if (name.text == end) return body;
                if (name.text.rfind("end", 0) == 0 || name.text == "elif" || name.text == "else") {
                    if (ends.empty()) error(name.line, "'{}' has no open block to close", name.text);
                    error(name.line, "'{}' found where '{}' (opened on line {}) expects '{}'", name.text, opened,
                          opened_line, ends.back());
                }
                next();
                next();
                body.push_back(parse_statement(name));
            } else {
                error(tok.line, "unexpected {}", describe(tok));
            }
        }
    }

    StmtPtr parse_statement(const Token &name) {
        DepthGuard guard(*this, name.line);
        auto s = std::make_unique<Stmt>();
        s->line = name.line;
        const std::string &tag = name.text;
        if (tag == "if") {
            s->kind = StmtKind::If;
            ExprPtr cond = parse_expr();
            expect_block_end();
            while (true) {
                Body b = parse_body({"elif", "else", "endif"}, "if", s->line);
                s->branches.emplace_back(std::move(cond), std::move(b));
                next();  // {%
                const std::string which = next().text;
                if (which == "elif") {
                    cond = parse_expr();
                    expect_block_end();
                    continue;
                }
                expect_block_end();
                if (which == "else") {
                    s->else_body = parse_body({"endif"}, "if", s->line);
                    next();
                    next();
                    expect_block_end();
                }
                break;
            }
        } else if (tag == "for") {
            s->kind = StmtKind::For;
            s->target = parse_target(false);
            if (!is_name("in")) error(peek().line, "expected 'in' in the for loop, found {}", describe(peek()));
            next();
            s->expr = parse_expr(/*no_condition=*/true);
            if (is_name("if")) {
                next();
                s->condition = parse_expr(true);
            }
            if (is_name("recursive")) error(peek().line, "recursive for loops are not supported");
            expect_block_end();
            s->body = parse_body({"else", "endfor"}, "for", s->line);
            next();
            if (next().text == "else") {
                expect_block_end();
                s->else_body = parse_body({"endfor"}, "for", s->line);
                next();
                next();
            }
            expect_block_end();
        } else if (tag == "set") {
            s->target = parse_target(true);
            if (is_op("=")) {
                next();
                s->kind = StmtKind::Set;
                s->expr = parse_tuple_or_expr();
                expect_block_end();
            } else {
                if (!s->target.attr.empty() || s->target.names.size() != 1)
                    error(s->line, "a block set assigns one plain name");
                s->kind = StmtKind::SetBlock;
                expect_block_end();
                s->body = parse_body({"endset"}, "set", s->line);
                next();
                next();
                expect_block_end();
            }
        } else if (tag == "macro") {
            s->kind = StmtKind::Macro;
            s->text = expect_name();
            parse_params(s->params);
            expect_block_end();
            s->body = parse_body({"endmacro"}, "macro", s->line);
            next();
            next();
            expect_block_end();
        } else if (tag == "call") {
            s->kind = StmtKind::CallBlock;
            if (is_op("(")) parse_params(s->params);
            s->expr = parse_expr();
            if (s->expr->kind != ExprKind::Call) error(s->line, "'call' needs a macro call");
            expect_block_end();
            s->body = parse_body({"endcall"}, "call", s->line);
            next();
            next();
            expect_block_end();
        } else if (tag == "filter") {
            s->kind = StmtKind::FilterBlock;
            // The innermost filter has no subject: the rendered body takes its place.
            auto f = make(ExprKind::Filter, s->line);
            f->name = expect_name();
            if (!has_filter(f->name)) error(s->line, "no filter named '{}'", f->name);
            if (is_op("(")) parse_call_args(*f);
            s->expr = parse_filter_chain(std::move(f));
            expect_block_end();
            s->body = parse_body({"endfilter"}, "filter", s->line);
            next();
            next();
            expect_block_end();
        } else if (tag == "break" || tag == "continue") {
            s->kind = tag == "break" ? StmtKind::Break : StmtKind::Continue;
            expect_block_end();
        } else if (tag == "generation") {
            // transformers' AssistantTracker tag: it only marks the assistant's text.
            s->kind = StmtKind::Block;
            expect_block_end();
            s->body = parse_body({"endgeneration"}, "generation", s->line);
            next();
            next();
            expect_block_end();
        } else {
            error(name.line, "unknown tag '{}'", tag);
        }
        return s;
    }

    void parse_params(std::vector<MacroParam> &params) {
        expect_op("(");
        while (!is_op(")")) {
            MacroParam p;
            p.name = expect_name();
            if (is_op("=")) {
                next();
                p.default_value = parse_expr();
            }
            params.push_back(std::move(p));
            if (!is_op(",")) break;
            next();
        }
        expect_op(")");
    }

    Target parse_target(bool allow_attr) {
        Target target;
        target.names.push_back(expect_name());
        if (allow_attr && is_op(".")) {
            next();
            target.attr = expect_name();
            return target;
        }
        while (is_op(",")) {
            next();
            target.names.push_back(expect_name());
        }
        return target;
    }

    // ---- expressions ----
    ExprPtr make(ExprKind kind, int line) {
        auto e = std::make_unique<Expr>();
        e->kind = kind;
        e->line = line;
        return e;
    }

    // `set x = 1, 2` makes a tuple.
    ExprPtr parse_tuple_or_expr() {
        const int line = peek().line;
        ExprPtr first = parse_expr();
        if (!is_op(",")) return first;
        auto tuple = make(ExprKind::Tuple, line);
        tuple->items.push_back(std::move(first));
        while (is_op(",")) {
            next();
            if (peek().type == Tok::BlockEnd) break;
            tuple->items.push_back(parse_expr());
        }
        return tuple;
    }

    ExprPtr parse_expr(bool no_condition = false) {
        DepthGuard guard(*this, peek().line);
        ExprPtr e = parse_or();
        if (no_condition) return e;
        while (is_name("if")) {
            const int line = next().line;
            auto cond = make(ExprKind::Cond, line);
            cond->a = parse_or();
            cond->items.push_back(std::move(e));
            if (is_name("else")) {
                next();
                cond->items.push_back(parse_expr());
            } else {
                cond->items.push_back(nullptr);
            }
            e = std::move(cond);
        }
        return e;
    }

    ExprPtr binary(const char *op, ExprPtr a, ExprPtr b, int line) {
        auto e = make(ExprKind::Binary, line);
        e->name = op;
        e->a = std::move(a);
        e->items.push_back(std::move(b));
        return e;
    }

    ExprPtr parse_or() {
        ExprPtr e = parse_and();
        while (is_name("or")) {
            const int line = next().line;
            e = binary("or", std::move(e), parse_and(), line);
        }
        return e;
    }
    ExprPtr parse_and() {
        ExprPtr e = parse_not();
        while (is_name("and")) {
            const int line = next().line;
            e = binary("and", std::move(e), parse_not(), line);
        }
        return e;
    }
    ExprPtr parse_not() {
        if (is_name("not")) {
            DepthGuard guard(*this, peek().line);
            auto e = make(ExprKind::Unary, next().line);
            e->name = "not";
            e->a = parse_not();
            return e;
        }
        return parse_compare();
    }
    ExprPtr parse_compare() {
        const int line = peek().line;
        ExprPtr e = parse_math1();
        std::unique_ptr<Expr> cmp;
        while (true) {
            std::string op;
            if (peek().type == Tok::Op && (peek().text == "==" || peek().text == "!=" || peek().text == "<" ||
                                           peek().text == ">" || peek().text == "<=" || peek().text == ">=")) {
                op = next().text;
            } else if (is_name("in")) {
                next();
                op = "in";
            } else if (is_name("not") && is_name("in", 1)) {
                next();
                next();
                op = "notin";
            } else {
                break;
            }
            if (!cmp) {
                cmp = make(ExprKind::Compare, line);
                cmp->a = std::move(e);
            }
            cmp->ops.push_back(op);
            cmp->items.push_back(parse_math1());
        }
        return cmp ? std::move(cmp) : std::move(e);
    }
    ExprPtr parse_math1() {
        ExprPtr e = parse_concat();
        while (is_op("+") || is_op("-")) {
            const Token &op = next();
            e = binary(op.text == "+" ? "+" : "-", std::move(e), parse_concat(), op.line);
        }
        return e;
    }
    ExprPtr parse_concat() {
        ExprPtr e = parse_math2();
        while (is_op("~")) {
            const int line = next().line;
            e = binary("~", std::move(e), parse_math2(), line);
        }
        return e;
    }
    ExprPtr parse_math2() {
        ExprPtr e = parse_pow();
        while (is_op("*") || is_op("/") || is_op("//") || is_op("%")) {
            const Token &op = next();
            const std::string name = op.text;
            e = binary(name == "*" ? "*" : name == "/" ? "/" : name == "//" ? "//" : "%", std::move(e), parse_pow(), op.line);
        }
        return e;
    }
    ExprPtr parse_pow() {
        ExprPtr e = parse_unary(true);
        while (is_op("**")) {
            const int line = next().line;
            e = binary("**", std::move(e), parse_unary(true), line);
        }
        return e;
    }
    ExprPtr parse_unary(bool with_filter) {
        ExprPtr e;
        if (is_op("-") || is_op("+")) {
            DepthGuard guard(*this, peek().line);
            const Token &op = next();
            e = make(ExprKind::Unary, op.line);
            e->name = op.text == "-" ? "-" : "+";
            e->a = parse_unary(false);
        } else {
            e = parse_primary();
        }
        e = parse_postfix(std::move(e));
        if (with_filter) e = parse_filter_chain(std::move(e));
        return e;
    }

    void parse_call_args(Expr &call) {
        expect_op("(");
        while (!is_op(")")) {
            if (peek().type == Tok::Name && is_op("=", 1)) {
                std::string key = next().text;
                next();
                call.kwargs.emplace_back(std::move(key), parse_expr());
            } else {
                if (!call.kwargs.empty()) error(peek().line, "a positional argument follows a keyword argument");
                call.items.push_back(parse_expr());
            }
            if (!is_op(",")) break;
            next();
        }
        expect_op(")");
    }

    ExprPtr parse_postfix(ExprPtr e) {
        while (true) {
            if (is_op(".")) {
                const int line = next().line;
                auto attr = make(ExprKind::Attr, line);
                if (peek().type == Tok::Int) {  // x.0 is x[0] in jinja2
                    attr->kind = ExprKind::Item;
                    auto index = make(ExprKind::Literal, line);
                    index->value = Value::from_int(std::strtoll(next().text.c_str(), nullptr, 10));
                    attr->items.push_back(std::move(index));
                } else {
                    attr->name = expect_name();
                }
                attr->a = std::move(e);
                e = std::move(attr);
            } else if (is_op("[")) {
                const int line = next().line;
                ExprPtr parts[3];
                int colons = 0;
                while (!is_op("]")) {
                    if (is_op(":")) {
                        if (++colons > 2) error(line, "a slice has at most two ':'");
                        next();
                        continue;
                    }
                    if (parts[colons]) error(peek().line, "expected ']' or ':' in the subscript, found {}", describe(peek()));
                    parts[colons] = parse_expr();
                }
                next();
                if (colons == 0) {
                    if (!parts[0]) error(line, "empty subscript '[]'");
                    auto item = make(ExprKind::Item, line);
                    item->a = std::move(e);
                    item->items.push_back(std::move(parts[0]));
                    e = std::move(item);
                } else {
                    auto slice = make(ExprKind::Slice, line);
                    slice->a = std::move(e);
                    for (auto &p : parts) slice->items.push_back(std::move(p));
                    e = std::move(slice);
                }
            } else if (is_op("(")) {
                auto call = make(ExprKind::Call, peek().line);
                call->a = std::move(e);
                parse_call_args(*call);
                e = std::move(call);
            } else {
                return e;
            }
        }
    }

    ExprPtr parse_filter_chain(ExprPtr e) {
        while (true) {
            if (is_op("|")) {
                const int line = next().line;
                auto f = make(ExprKind::Filter, line);
                f->name = expect_name();
                // jinja2 rejects an unknown filter or test when it compiles the template.
                if (!has_filter(f->name)) error(line, "no filter named '{}'", f->name);
                f->a = std::move(e);
                if (is_op("(")) parse_call_args(*f);
                e = std::move(f);
            } else if (is_name("is")) {
                const int line = next().line;
                auto t = make(ExprKind::Test, line);
                if (is_name("not")) {
                    next();
                    t->negated = true;
                }
                t->name = expect_name();
                if (!has_test(t->name)) error(line, "no test named '{}'", t->name);
                t->a = std::move(e);
                if (is_op("(")) {
                    parse_call_args(*t);
                } else if ((peek().type == Tok::Name && !is_name("else") && !is_name("or") && !is_name("and") &&
                            !is_name("if") && !is_name("is") && !is_name("in") && !is_name("not")) ||
                           peek().type == Tok::String || peek().type == Tok::Int || peek().type == Tok::Float ||
                           is_op("[") || is_op("{")) {
                    // `x is divisibleby 3`, `x is sameas false`: one argument without parentheses.
                    auto arg = parse_primary();
                    t->items.push_back(parse_postfix(std::move(arg)));
                }
                e = std::move(t);
            } else {
                return e;
            }
        }
    }

    ExprPtr parse_primary() {
        DepthGuard guard(*this, peek().line);
        const Token &tok = peek();
        switch (tok.type) {
        case Tok::Name: {
            next();
            auto e = make(ExprKind::Literal, tok.line);
            if (tok.text == "true" || tok.text == "True") e->value = Value::from_bool(true);
            else if (tok.text == "false" || tok.text == "False") e->value = Value::from_bool(false);
            else if (tok.text == "none" || tok.text == "None") e->value = Value::none();
            else {
                e->kind = ExprKind::Name;
                e->name = tok.text;
            }
            return e;
        }
        case Tok::String: {
            auto e = make(ExprKind::Literal, tok.line);
            std::string s;
            while (peek().type == Tok::String) s += next().text;  // "a" "b" is "ab"
            e->value = Value::from_string(std::move(s));
            return e;
        }
        case Tok::Int: {
            next();
            auto e = make(ExprKind::Literal, tok.line);
            int64_t v = 0;
            const auto r = std::from_chars(tok.text.data(), tok.text.data() + tok.text.size(), v);
            if (r.ec != std::errc()) error(tok.line, "the integer {} is out of range", tok.text);
            e->value = Value::from_int(v);
            return e;
        }
        case Tok::Float: {
            next();
            auto e = make(ExprKind::Literal, tok.line);
            e->value = Value::from_float(std::strtod(tok.text.c_str(), nullptr));
            return e;
        }
        case Tok::Op:
            if (tok.text == "(") {
                next();
                if (is_op(")")) {
                    next();
                    return make(ExprKind::Tuple, tok.line);
                }
                ExprPtr first = parse_expr();
                if (is_op(")")) {
                    next();
                    return first;
                }
                auto tuple = make(ExprKind::Tuple, tok.line);
                tuple->items.push_back(std::move(first));
                while (is_op(",")) {
                    next();
                    if (is_op(")")) break;
                    tuple->items.push_back(parse_expr());
                }
                expect_op(")");
                return tuple;
            }
            if (tok.text == "[") {
                next();
                auto list = make(ExprKind::List, tok.line);
                while (!is_op("]")) {
                    list->items.push_back(parse_expr());
                    if (!is_op(",")) break;
                    next();
                }
                expect_op("]");
                return list;
            }
            if (tok.text == "{") {
                next();
                auto dict = make(ExprKind::Dict, tok.line);
                while (!is_op("}")) {
                    dict->items.push_back(parse_expr());
                    expect_op(":");
                    dict->items.push_back(parse_expr());
                    if (!is_op(",")) break;
                    next();
                }
                expect_op("}");
                return dict;
            }
            break;
        default: break;
        }
        error(tok.line, "unexpected {} in an expression", describe(tok));
    }

    std::vector<Token> t_;
    size_t i_ = 0;
    int depth_ = 0;
    int max_depth_;
};

}  // namespace

Program parse(std::string_view source, const LexOptions &options, int max_depth) {
    return Parser(lex(source, options), max_depth).run();
}

}  // namespace mst::jinja
