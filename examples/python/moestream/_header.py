"""Turn include/moestream.h into declarations that cffi's ``cdef`` accepts.

The bindings are never written by hand: the header is the one public contract, so the
structs, enums and functions are read from it each time the package is imported. New
status values, params fields and functions therefore arrive without a change here.

cffi parses plain C declarations but not preprocessor directives, comments or compiler
attributes, so this module runs a small preprocessor of its own: it removes comments,
follows ``#if``/``#ifdef`` with nothing predefined (not C++, not Windows, not GCC, which
leaves ``MST_API`` empty), expands object-like macros, keeps integer ``#define`` values
as cffi constants and drops ``#include`` (cffi knows the fixed-width and size types).
A pure-Python preprocessor keeps the import free of any compiler; the tests compare
its result with what the C compiler makes of the same header.
"""

from __future__ import annotations

import re
from pathlib import Path

__all__ = ["HeaderError", "cdef_from_header", "cdef_from_file"]


class HeaderError(RuntimeError):
    """The header uses a preprocessor construct this module does not handle."""


_COMMENT_OR_STRING = re.compile(r'"(?:\\.|[^"\\\n])*"|/\*.*?\*/|//[^\n]*', re.S)
_DIRECTIVE = re.compile(r"^\s*#\s*(\w+)\s*(.*)$")
_IDENT = re.compile(r"[A-Za-z_]\w*")
_INT_LITERAL = re.compile(r"(0[xX][0-9a-fA-F]+|\d+)[uUlL]*")


def _strip_comments(text: str) -> str:
    """Remove comments, keeping string literals and the line count (for messages)."""

    def replace(match: re.Match[str]) -> str:
        token = match.group(0)
        if token.startswith('"'):
            return token
        return " " + "\n" * token.count("\n")

    return _COMMENT_OR_STRING.sub(replace, text)


class _Preprocessor:
    """Just enough of a C preprocessor for a declarations-only public header."""

    def __init__(self) -> None:
        self.macros: dict[str, str] = {}
        self.function_like: set[str] = set()

    def expand(self, text: str, depth: int = 0) -> str:
        """Replace object-like macro names by their (recursively expanded) values."""
        if depth > 32:
            raise HeaderError("macro expansion too deep (a recursive #define?)")

        def replace(match: re.Match[str]) -> str:
            name = match.group(0)
            if name in self.macros:
                return self.expand(self.macros[name], depth + 1)
            return name

        return _IDENT.sub(replace, text)

    def evaluate(self, expression: str, line_no: int) -> bool:
        """Evaluate an #if expression: defined(), integers, ! && || and comparisons."""
        expression = re.sub(r"defined\s*\(\s*(\w+)\s*\)|defined\s+(\w+)",
                            lambda m: "1" if (m.group(1) or m.group(2)) in self.macros else "0",
                            expression)
        expression = self.expand(expression)
        if re.search(r"[A-Za-z_]\w*\s*\(", expression):
            raise HeaderError(f"line {line_no}: function-like macro in #if {expression!r}")
        # An identifier left after expansion is an undefined macro, which C reads as 0.
        expression = _IDENT.sub("0", expression)
        expression = _INT_LITERAL.sub(lambda m: str(int(m.group(1), 0)), expression)
        python = expression.replace("&&", " and ").replace("||", " or ")
        python = re.sub(r"!(?!=)", " not ", python)
        if not re.fullmatch(r"[\d\s()+\-*/%<>=!andortn]*", python):
            raise HeaderError(f"line {line_no}: cannot evaluate #if {expression!r}")
        try:
            return bool(eval(python, {"__builtins__": {}}, {}))  # noqa: S307 - checked above
        except Exception as exc:  # a malformed expression: report the header line
            raise HeaderError(f"line {line_no}: cannot evaluate #if {expression!r}") from exc

    def integer_value(self, name: str) -> int | None:
        """The value of an object-like macro when it is an integer constant expression."""
        text = self.expand(self.macros[name])
        text = _INT_LITERAL.sub(lambda m: str(int(m.group(1), 0)), text)
        if not text.strip() or not re.fullmatch(r"[\d\s()+\-*/%<>]*", text):
            return None
        try:
            value = eval(text.replace("/", "//"), {"__builtins__": {}}, {})  # noqa: S307
        except Exception:
            return None
        return value if isinstance(value, int) else None


def cdef_from_header(text: str) -> str:
    """Return cffi ``cdef`` source for the C header ``text``.

    Raises:
        HeaderError: on an ``#error`` in an active branch, an unbalanced conditional, or an
            ``#if`` expression beyond integers, ``defined`` and logical operators.
    """
    pp = _Preprocessor()
    lines = _strip_comments(text).replace("\\\n", " ").split("\n")
    # Each entry: (this branch active, some branch of the group already taken, parent active).
    stack: list[tuple[bool, bool, bool]] = []
    active = True
    out: list[str] = []
    defined_order: list[str] = []
    for line_no, line in enumerate(lines, start=1):
        match = _DIRECTIVE.match(line)
        if not match:
            if active and line.strip():
                out.append(pp.expand(line))
            continue
        directive, rest = match.group(1), match.group(2).strip()
        if directive in ("ifdef", "ifndef", "if"):
            if directive == "if":
                taken = active and pp.evaluate(rest, line_no)
            else:
                taken = active and ((rest.split()[0] in pp.macros) == (directive == "ifdef"))
            stack.append((taken, taken, active))
            active = taken
        elif directive in ("elif", "else"):
            if not stack:
                raise HeaderError(f"line {line_no}: #{directive} without #if")
            _, done, parent = stack.pop()
            if directive == "elif":
                taken = parent and not done and pp.evaluate(rest, line_no)
            else:
                taken = parent and not done
            stack.append((taken, done or taken, parent))
            active = taken
        elif directive == "endif":
            if not stack:
                raise HeaderError(f"line {line_no}: #endif without #if")
            active = stack.pop()[2]
        elif not active:
            continue
        elif directive == "define":
            name_match = re.match(r"(\w+)(\()?\s*(.*)$", rest)
            if not name_match:
                raise HeaderError(f"line {line_no}: malformed #define")
            name, paren, value = name_match.groups()
            if paren:
                # Function-like macros cannot be declared to cffi; a declaration that used
                # one would fail to parse there, naming it.
                pp.function_like.add(name)
                continue
            pp.macros[name] = value
            defined_order.append(name)
        elif directive == "undef":
            pp.macros.pop(rest.split()[0], None)
        elif directive == "error":
            raise HeaderError(f"line {line_no}: #error {rest}")
        # #include, #pragma and #line carry no declarations cffi needs.
    if stack:
        raise HeaderError("unterminated #if at the end of the header")
    constants = []
    for name in defined_order:
        if name in pp.macros:
            value = pp.integer_value(name)
            if value is not None:
                constants.append(f"#define {name} {value}")
    return "\n".join(constants + out) + "\n"


def cdef_from_file(path: str | Path) -> str:
    """Read the header at ``path`` and return its cffi ``cdef`` source."""
    return cdef_from_header(Path(path).read_text(encoding="utf-8"))
