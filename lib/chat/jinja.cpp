#include "chat/jinja.h"

#include "chat/jinja_parser.h"
#include "chat/jinja_text.h"
#include "core/error.h"

namespace mst::jinja {

Template::Template() = default;
Template::~Template() = default;
Template::Template(Template &&) noexcept = default;
Template &Template::operator=(Template &&) noexcept = default;

Template Template::parse(std::string_view source, int max_depth) {
    Template t;
    t.program_ = std::make_unique<Program>(jinja::parse(normalize_newlines(source), LexOptions{}, max_depth));
    return t;
}

std::string Template::render(const Value &context, const RenderOptions &options) const {
    auto globals = std::make_shared<Scope>(nullptr);
    add_globals(*globals, options);
    // The caller's variables shadow the globals, as render(**kwargs) does in jinja2.
    auto root = std::make_shared<Scope>(globals);
    if (context.kind == Kind::Dict)
        for (const auto &[k, v] : *context.dict) root->set(k, v);
    Evaluator ev(options, root);
    std::string out;
    try {
        ev.run(program_->body, out);
    } catch (const Failure &f) {
        fail(MST_ERR_INVALID_ARGUMENT, "chat template line {}: {}", ev.line(), f.what());
    }
    return out;
}

}  // namespace mst::jinja
