// The parsed form of a template: expressions and statements as jinja2's parser builds
// them, each carrying the template line it came from for error messages.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "chat/jinja_value.h"

namespace mst::jinja {

struct Expr;
struct Stmt;
using ExprPtr = std::unique_ptr<Expr>;
using StmtPtr = std::unique_ptr<Stmt>;
using Body = std::vector<StmtPtr>;

enum class ExprKind {
    Literal,   // value
    Name,      // name
    List,      // items
    Tuple,     // items
    Dict,      // keys/items pairs in items (key, value, key, value, ...)
    Attr,      // a.name
    Item,      // a[b]
    Slice,     // a[items[0]:items[1]:items[2]] (null items are absent)
    Call,      // a(items..., kwargs...)
    Filter,    // a | name(items..., kwargs...)
    Test,      // a is [not] name(items...)
    Unary,     // op a: "-", "+", "not"
    Binary,    // a op b: + - * / // % ** ~ and or
    Compare,   // a ops[0] items[0] ops[1] items[1] ...: == != < > <= >= in notin
    Cond,      // items[0] if a else items[1] (items[1] null: undefined)
};

struct Expr {
    ExprKind kind;
    int line = 0;
    Value value;
    std::string name;  // name, attribute, filter or test name, operator
    bool negated = false;
    ExprPtr a;
    std::vector<ExprPtr> items;
    std::vector<std::pair<std::string, ExprPtr>> kwargs;
    std::vector<std::string> ops;
};

// Where a `set` or `for` stores: a name, a tuple of names, or `ns.attr`.
struct Target {
    std::vector<std::string> names;  // more than one: tuple unpacking
    std::string attr;                // non-empty: names[0].attr
};

enum class StmtKind { Text, Output, If, For, Set, SetBlock, Macro, CallBlock, Break, Continue, Block, FilterBlock };

struct MacroParam {
    std::string name;
    ExprPtr default_value;
};

struct Stmt {
    StmtKind kind;
    int line = 0;
    std::string text;                                      // Text; Macro's name
    ExprPtr expr;                                          // Output, Set, For's iterable, CallBlock's call, FilterBlock's filter
    std::vector<std::pair<ExprPtr, Body>> branches;        // If: condition and body
    Body body;                                             // For, SetBlock, Macro, CallBlock, Block
    Body else_body;                                        // If, For
    ExprPtr condition;                                     // For's `if` filter
    Target target;                                         // Set, SetBlock, For
    std::vector<MacroParam> params;                        // Macro, CallBlock's caller
};

struct Program {
    Body body;
};

}  // namespace mst::jinja
