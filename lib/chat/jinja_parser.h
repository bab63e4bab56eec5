// Builds the statement tree from tokens with jinja2's grammar and operator precedence.
#pragma once

#include <string_view>

#include "chat/jinja_ast.h"
#include "chat/jinja_lexer.h"

namespace mst::jinja {

// Throws mst::Error (MST_ERR_BAD_FORMAT) naming the line and what is wrong: an unknown
// tag, a block never closed, an "endfor" closing an "if", nesting deeper than max_depth.
Program parse(std::string_view source, const LexOptions &options, int max_depth);

}  // namespace mst::jinja
