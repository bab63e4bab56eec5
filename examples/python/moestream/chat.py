"""Chat templates: a conversation rendered through a Jinja chat template by the library
(``mst_chat_apply_template``, ``mst_model_apply_chat_template``), as transformers'
``apply_chat_template(tokenize=False)`` renders it.

Messages are dicts as transformers takes them: ``role``, ``content`` (a string, None, or a
list of parts such as ``[{"type": "text", "text": "..."}]``), ``tool_calls``,
``tool_call_id``, ``name``; any other key (``reasoning_content``, ``thinking``) joins the
message as the template sees it.
"""

from __future__ import annotations

import json
from typing import Any, Callable, Iterable, Mapping

from ._library import ffi, lib
from .errors import check

__all__ = ["apply_chat_template", "messages_array", "template_params", "render"]

# Fields with a place of their own in mst_chat_message; the rest travel in extra_json.
_OWN_FIELDS = ("role", "content", "tool_calls", "tool_call_id", "name")


def _c_string(value: str, keep: list[Any]) -> Any:
    buffer = ffi.new("char[]", value.encode("utf-8"))
    keep.append(buffer)
    return buffer


def _c_json(value: Any, keep: list[Any], what: str) -> Any:
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{what} is not JSON-serialisable: {exc}") from None
    return _c_string(text, keep)


def _optional_str(message: Mapping[str, Any], key: str, index: int, keep: list[Any]) -> Any:
    value = message.get(key)
    if value is None:
        return ffi.NULL
    if not isinstance(value, str):
        raise TypeError(f"messages[{index}][{key!r}] must be a string, got {type(value).__name__}")
    return _c_string(value, keep)


def messages_array(messages: Iterable[Mapping[str, Any]], keep: list[Any]) -> tuple[Any, int]:
    """``(mst_chat_message[] cdata, count)``; its strings are appended to ``keep``.

    Raises:
        TypeError: not a list of dicts, a role that is not a string, a value that is not
            JSON-serialisable.
    """
    if isinstance(messages, (str, bytes, Mapping)):
        raise TypeError("messages must be a list of dicts such as {'role': 'user', 'content': '...'}")
    items = list(messages)
    array = ffi.new("mst_chat_message[]", max(len(items), 1))
    keep.append(array)
    for i, message in enumerate(items):
        if not isinstance(message, Mapping):
            raise TypeError(f"messages[{i}] must be a dict with 'role' and 'content', got {type(message).__name__}")
        if not isinstance(message.get("role"), str):
            raise TypeError(f"messages[{i}] needs a string 'role'")
        c = array[i]
        c.role = _c_string(message["role"], keep)
        extra = {k: v for k, v in message.items() if k not in _OWN_FIELDS}
        content = message.get("content")
        if isinstance(content, str):
            c.content = _c_string(content, keep)
        elif content is not None:  # a list of parts: the template sees it as it is
            extra["content"] = content
        if message.get("tool_calls") is not None:
            c.tool_calls_json = _c_json(message["tool_calls"], keep, f"messages[{i}]['tool_calls']")
        c.tool_call_id = _optional_str(message, "tool_call_id", i, keep)
        c.name = _optional_str(message, "name", i, keep)
        if extra:
            c.extra_json = _c_json(extra, keep, f"messages[{i}]")
    return array, len(items)


def template_params(keep: list[Any], add_generation_prompt: bool = True, tools: Iterable[Any] | None = None,
                    variables: Mapping[str, Any] | None = None, now_unix: int | None = None,
                    template_name: str | None = None) -> Any:
    """An ``mst_chat_template_params *``; its strings are appended to ``keep``."""
    params = ffi.new("mst_chat_template_params *")
    lib.mst_chat_template_default_params(params)
    params.add_generation_prompt = 1 if add_generation_prompt else 0
    if tools is not None:
        params.tools_json = _c_json(list(tools), keep, "tools")
    if variables:
        params.variables_json = _c_json(dict(variables), keep, "template variables")
    if now_unix is not None:
        params.now_unix = int(now_unix)
    if template_name is not None:
        params.template_name = _c_string(template_name, keep)
    return params


def render(call: Callable[[Any, int, Any], int], what: str) -> str:
    """The text a chat-template call writes: ``call(out, capacity, n_bytes)`` is asked
    for the size first, then given a buffer of that size."""
    n_bytes = ffi.new("size_t *")
    status = call(ffi.NULL, 0, n_bytes)
    if status == lib.MST_OK and n_bytes[0] == 0:
        return ""
    if status not in (lib.MST_OK, lib.MST_ERR_BUFFER_TOO_SMALL):
        check(status, what)
    while True:
        capacity = n_bytes[0] + 1
        out = ffi.new("char[]", capacity)
        status = call(out, capacity, n_bytes)
        if status == lib.MST_ERR_BUFFER_TOO_SMALL and n_bytes[0] >= capacity:
            continue  # a template whose output changed between the calls (strftime_now)
        check(status, what)
        return ffi.unpack(out, n_bytes[0]).decode("utf-8", "replace")


def apply_chat_template(template: str, messages: Iterable[Mapping[str, Any]], add_generation_prompt: bool = True,
                        tools: Iterable[Any] | None = None, *, now_unix: int | None = None,
                        **variables: Any) -> str:
    """Render ``messages`` through the Jinja chat template ``template`` (its text).

    Args:
        template: the template's text (a model's ``chat_template``).
        add_generation_prompt: end with the opening of the assistant's turn.
        tools: tool definitions (``{"type": "function", "function": {...}}``), or None.
        now_unix: the time ``strftime_now()`` sees, in seconds since 1970 (None: now).
        **variables: more template variables (``enable_thinking=False``, ``bos_token``, ...).

    Raises:
        BadFormatError: the template does not parse; InvalidArgumentError: it failed while
            rendering (its own ``raise_exception``, an undefined value); both name the line.
    """
    keep: list[Any] = []
    array, n = messages_array(messages, keep)
    params = template_params(keep, add_generation_prompt, tools, variables, now_unix)
    text = _c_string(template, keep)
    return render(lambda out, capacity, n_bytes: lib.mst_chat_apply_template(text, array, n, params, out, capacity,
                                                                            n_bytes), "mst_chat_apply_template")
