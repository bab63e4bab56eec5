#!/usr/bin/python3
"""Render the chat templates under tests/data/chat_templates with Python's jinja2, set
up as transformers' apply_chat_template sets it up, and write the expected outputs
that tests/unit/test_chat_template.cpp compares moestream's interpreter against byte
for byte.

  /usr/bin/python3 tests/reference/gen_chat_templates.py      (Debian: python3-jinja2)

Inputs: templates.json (the real templates and their special tokens), cases.json (the
conversations, applied to every template), edge_cases.json (small templates probing
one interpreter feature each). Output: expected.json. A render that raises is recorded
as {"error": ...}: the C++ side must then fail too.
"""
import json
import os
import sys
from datetime import datetime

import jinja2
from jinja2.ext import loopcontrols
from jinja2.sandbox import ImmutableSandboxedEnvironment

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data", "chat_templates")
# strftime_now's clock: noon UTC, so the date is the same in any time zone within 11 h.
NOW = 1749988800  # 2025-06-15 12:00:00 UTC


def make_env():
    """The environment of transformers.utils.chat_template_utils._compile_jinja_template."""

    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        # transformers overrides jinja2's tojson: no HTML escaping, json.dumps options.
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

    def strftime_now(format):
        return datetime.fromtimestamp(NOW).strftime(format)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    return env


def render(env, source, context):
    try:
        return {"output": env.from_string(source).render(**context)}
    except jinja2.exceptions.TemplateSyntaxError as e:
        return {"error": "syntax: " + str(e)}
    except Exception as e:  # the C++ side must fail as well; the message differs
        return {"error": type(e).__name__ + ": " + str(e)}


def main():
    env = make_env()
    with open(os.path.join(HERE, "templates.json"), encoding="utf-8") as f:
        templates = json.load(f)
    with open(os.path.join(HERE, "cases.json"), encoding="utf-8") as f:
        cases = json.load(f)
    with open(os.path.join(HERE, "edge_cases.json"), encoding="utf-8") as f:
        edge_cases = json.load(f)
    expected = {"now": NOW, "templates": {}, "edge_cases": {}}
    for t in templates:
        with open(os.path.join(HERE, t["file"]), encoding="utf-8", newline="") as f:
            source = f.read()
        results = {}
        for case in cases["cases"]:
            # The arguments apply_chat_template passes, in its order.
            context = {
                "messages": case["messages"],
                "tools": cases["tools"] if case.get("with_tools") else None,
                "documents": None,
                "add_generation_prompt": case.get("add_generation_prompt", True),
            }
            context.update(t.get("variables", {}))
            context.update(case.get("variables", {}))
            results[case["name"]] = render(env, source, context)
        expected["templates"][t["name"]] = results
    for case in edge_cases:
        expected["edge_cases"][case["name"]] = render(env, case["template"], case.get("context", {}))
    out = os.path.join(HERE, "expected.json")
    with open(out, "w", encoding="utf-8") as f:
        json.dump(expected, f, ensure_ascii=False, indent=1)
        f.write("\n")
    n = sum(len(r) for r in expected["templates"].values())
    errors = sum(1 for r in expected["templates"].values() for x in r.values() if "error" in x)
    print(f"jinja2 {jinja2.__version__}: {len(templates)} templates x {len(cases['cases'])} cases = {n} renders "
          f"({errors} raise), {len(edge_cases)} edge cases -> {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
