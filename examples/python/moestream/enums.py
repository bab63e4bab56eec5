"""Python enums of the header's C enums, built from the declarations at import time.

Reading them from the header (not listing them here) means a status appended to
``mst_status`` appears as ``Status.<NAME>`` without a change to the package.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Any

from ._library import ffi

__all__ = ["Status", "StopReason", "LogLevel"]


def _enum(class_name: str, ctype: str, prefix: str) -> Any:
    """An IntEnum of the C enum ``ctype`` with ``prefix`` removed from each name.

    Typed Any: its members exist only at run time, which static checkers cannot see.
    """
    elements = ffi.typeof(ctype).relements  # name -> value
    members = {name[len(prefix):] if name.startswith(prefix) else name: value for name, value in elements.items()}
    return IntEnum(class_name, sorted(members.items(), key=lambda item: item[1]), module=__name__)


Status: Any = _enum("Status", "mst_status", "MST_")
"""``mst_status``: ``Status.OK``, ``Status.ERR_INVALID_ARGUMENT``, ..."""

StopReason: Any = _enum("StopReason", "mst_stop_reason", "MST_STOP_")
"""``mst_stop_reason``: why a generation ended (``EOS``, ``MAX_TOKENS``, ``STRING``, ...)."""

LogLevel: Any = _enum("LogLevel", "mst_log_level", "MST_LOG_")
"""``mst_log_level``: ``ERROR``, ``WARN``, ``INFO``, ``DEBUG``."""
