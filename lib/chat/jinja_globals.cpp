// The globals a chat template sees: jinja2's range, namespace and dict, and the
// raise_exception and strftime_now that transformers adds.
#include <ctime>

#include "chat/jinja_eval.h"
#include "chat/jinja_text.h"

namespace mst::jinja {

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
    scope.set("namespace", Value::new_function([](Evaluator &ev, CallArgs &a) {
        Value ns = ev.new_namespace();
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
