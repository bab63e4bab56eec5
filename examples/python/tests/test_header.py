"""The declarations generated from the header agree with the C compiler's reading of it.

Struct sizes and field offsets computed by cffi from moestream._header's output are
compared with a C program compiled against include/moestream.h, so a preprocessor
mistake (a dropped field, a wrong branch) cannot pass unnoticed.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

import moestream
from moestream._header import HeaderError, cdef_from_header
from moestream._library import loaded_paths

ffi = moestream.ffi


def header_types() -> tuple[list[str], list[str]]:
    """(complete struct typedefs, enum typedefs) declared by the loaded header."""
    structs, enums = [], []
    for name in ffi.list_types()[0]:
        ctype = ffi.typeof(name)
        if ctype.kind == "struct" and ctype.fields is not None:
            structs.append(name)
        elif ctype.kind == "enum":
            enums.append(name)
    return structs, enums


def test_header_declares_the_api() -> None:
    structs, enums = header_types()
    assert {"mst_model_params", "mst_session_params", "mst_generate_params", "mst_session_stats"} <= set(structs)
    assert {"mst_status", "mst_stop_reason"} <= set(enums)
    assert moestream.lib.MST_VERSION_NUMBER == moestream.lib.mst_version_number()


def test_layout_matches_the_c_compiler(tmp_path: Path) -> None:
    compiler = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if compiler is None:
        pytest.skip("no C compiler to compare with")
    header = loaded_paths()[1]
    structs, enums = header_types()
    lines = ["#include <stdio.h>", "#include <stddef.h>", '#include "moestream.h"', "int main(void) {"]
    expected = []
    for name in structs:
        lines.append(f'  printf("{name} %zu\\n", sizeof({name}));')
        expected.append(f"{name} {ffi.sizeof(name)}")
        for field, info in ffi.typeof(name).fields:
            lines.append(f'  printf("{name}.{field} %zu\\n", offsetof({name}, {field}));')
            expected.append(f"{name}.{field} {info.offset}")
    for name in enums:
        for element, value in sorted(ffi.typeof(name).relements.items()):
            lines.append(f'  printf("{element} %lld\\n", (long long){element});')
            expected.append(f"{element} {value}")
    lines += ["  return 0;", "}"]
    source = tmp_path / "layout.c"
    source.write_text("\n".join(lines) + "\n")
    binary = tmp_path / "layout"
    subprocess.run([compiler, "-I", str(header.parent), "-o", str(binary), str(source)], check=True)
    got = subprocess.run([str(binary)], check=True, capture_output=True, text=True).stdout.splitlines()
    assert got == expected


def test_preprocessor_follows_conditionals_and_defines() -> None:
    text = """
    #ifndef GUARD
    #define GUARD
    #define API
    #define TWO (1 + 1)
    #define FOUR TWO * 2
    #define MAX(a, b) ((a) > (b) ? (a) : (b))
    #ifdef __cplusplus
    extern "C" {
    #endif
    #if defined(_WIN32) && !defined(API)
    int windows_only(void);
    #elif TWO == 2
    API int chosen(void); /* a comment with "quotes" */
    #else
    int not_chosen(void);
    #endif
    // a line comment
    typedef struct s { int a; \\
                       int b; } s;
    #ifdef __cplusplus
    }
    #endif
    #endif
    """
    cdef = cdef_from_header(text)
    assert "#define TWO 2" in cdef and "#define FOUR 4" in cdef
    assert "MAX" not in cdef and "extern" not in cdef and "comment" not in cdef
    assert "int chosen(void);" in cdef and "windows_only" not in cdef and "not_chosen" not in cdef
    check = moestream.ffi.__class__()
    check.cdef(cdef)
    assert check.sizeof("s") == 2 * check.sizeof("int")


@pytest.mark.parametrize("text", ["#if 1\nint x;\n", "#endif\n", "#error stop here\n", "#if foo(1)\n#endif\n"])
def test_preprocessor_rejects_what_it_cannot_read(text: str) -> None:
    with pytest.raises(HeaderError):
        cdef_from_header(text)
