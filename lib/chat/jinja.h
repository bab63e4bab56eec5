// A Jinja2 interpreter for chat templates: the subset of the language that models'
// chat templates use, rendering byte for byte what Python's jinja2 renders under
// transformers' settings (trim_blocks, lstrip_blocks, its tojson, raise_exception,
// strftime_now, loop controls).
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "chat/jinja_eval.h"
#include "chat/jinja_value.h"

namespace mst::jinja {

struct Program;

class Template {
public:
    // Throws mst::Error(MST_ERR_BAD_FORMAT) naming the line and the problem.
    static Template parse(std::string_view source, int max_depth = 100);
    ~Template();
    Template(Template &&) noexcept;
    Template &operator=(Template &&) noexcept;

    // Renders with `context` (a dict: messages, tools, add_generation_prompt, ...) as
    // the template's variables. Throws mst::Error(MST_ERR_INVALID_ARGUMENT) naming the
    // template line: an undefined value used, a type error, raise_exception, a limit.
    std::string render(const Value &context, const RenderOptions &options = {}) const;

private:
    Template();
    std::unique_ptr<Program> program_;
};

}  // namespace mst::jinja
