"""``loads``: HuJSON text to plain Python data."""

from __future__ import annotations

import json
import re
from typing import Any

from derptool.hujson.ast import Array, Literal, Object, Value
from derptool.hujson.errors import HuJSONError
from derptool.hujson.parse import as_bytes, parse
from derptool.hujson.standard import fast_loads, standardize_value

_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


def _has_surrogate_escape(b: bytes) -> bool:
    """Does *b* hold an escaped surrogate (``\\ud800`` to ``\\udfff``)? (Most text holds no backslash at all.)"""
    return b.find(b"\\") >= 0 and _SURROGATE_ESCAPE.search(b) is not None


_LONE = re.compile("[\ud800-\udfff]")


def _fix(s: str) -> str:
    return _LONE.sub("\ufffd", s)


def _fix_surrogates(data: Any) -> Any:
    """Replace lone surrogates (from escapes such as ``\\ud800``) by U+FFFD, as Go decodes them."""
    if isinstance(data, str):
        return _fix(data)
    root = [data]
    stack: list[Any] = [root]
    while stack:
        box = stack.pop()
        if isinstance(box, dict):
            items = list(box.items())
            box.clear()
            for k, v in items:
                box[_fix(k)] = _fix(v) if isinstance(v, str) else v
                if isinstance(v, (dict, list)):
                    stack.append(v)
        else:
            for i, v in enumerate(box):
                if isinstance(v, str):
                    box[i] = _fix(v)
                elif isinstance(v, (dict, list)):
                    stack.append(v)
    return root[0]


def loads(src: str | bytes) -> Any:
    """Decode HuJSON to Python data: dict, list, str, int (exact, any size), float, bool, None.

    Duplicate names: the last one wins (as in ``json.loads``). Invalid UTF-8 inside strings becomes
    U+FFFD, and so do escaped lone surrogates (``"\\ud800"``), as in Go. Raises
    :class:`HuJSONError` for invalid text.
    """
    b = as_bytes(src)
    fast = fast_loads(b)
    if fast is not None:
        return _fix_surrogates(fast[1]) if _has_surrogate_escape(fast[0]) else fast[1]
    v = parse(b)  # raises the exact error for invalid text
    standardize_value(v)
    text = v.pack().decode("utf-8", "replace")
    try:
        data = json.loads(text)
        return _fix_surrogates(data) if _has_surrogate_escape(b) else data
    except RecursionError:
        return _loads_deep(v)
    except ValueError as err:  # e.g. an integer beyond Python's digit limit
        raise HuJSONError(f"cannot decode value: {err}") from None


def _loads_deep(v: Any) -> Any:
    """Decode a tree too deep for the stdlib decoder, iteratively."""
    assert isinstance(v, Value)
    root: list[Any] = [None]
    # (value, container, key) work items: put the decoded value at container[key]
    work: list[tuple[Value, Any, Any]] = [(v, root, 0)]
    while work:
        node, box, key = work.pop()
        t = node.value
        if isinstance(t, Literal):
            try:
                box[key] = t.decode()
            except ValueError as err:
                raise HuJSONError(f"cannot decode value: {err}") from None
        elif isinstance(t, Object):
            d: dict[str, Any] = {}
            box[key] = d
            for m in t.members:
                assert isinstance(m.name.value, Literal)
                name = json.loads(m.name.value.raw.decode("utf-8", "replace"))
                d[name] = None
                work.append((m.value, d, name))
            # later duplicates must win: process in reverse push order is fine since each sets d[name]
            work[len(work) - len(t.members) :] = work[len(work) - len(t.members) :][::-1]
        elif isinstance(t, Array):
            lst: list[Any] = [None] * len(t.elements)
            box[key] = lst
            for i in range(len(t.elements) - 1, -1, -1):
                work.append((t.elements[i], lst, i))
    return root[0]
