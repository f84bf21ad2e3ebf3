"""``loads``: HuJSON text to plain Python data."""

from __future__ import annotations

import json
from typing import Any

from derptool.hujson.errors import HuJSONError
from derptool.hujson.parse import as_bytes, parse
from derptool.hujson.standard import fast_loads, standardize_value


def loads(src: str | bytes) -> Any:
    """Decode HuJSON to Python data: dict, list, str, int (exact, any size), float, bool, None.

    Duplicate names: the last one wins (as in ``json.loads``). Invalid UTF-8 inside strings becomes
    U+FFFD; escaped lone surrogates are kept as Python's ``json`` keeps them. Raises
    :class:`HuJSONError` for invalid text.
    """
    b = as_bytes(src)
    fast = fast_loads(b)
    if fast is not None:
        return fast[1]
    v = parse(b)  # raises the exact error for invalid text
    standardize_value(v)
    text = v.pack().decode("utf-8", "replace")
    try:
        return json.loads(text)
    except RecursionError:
        return _loads_deep(v)
    except ValueError as err:  # e.g. an integer beyond Python's digit limit
        raise HuJSONError(f"cannot decode value: {err}") from None


def _loads_deep(v: Any) -> Any:
    """Decode a tree too deep for the stdlib decoder, iteratively."""
    from derptool.hujson.ast import Array, Literal, Object, Value

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
            work[len(work) - len(t.members):] = work[len(work) - len(t.members):][::-1]
        elif isinstance(t, Array):
            lst: list[Any] = [None] * len(t.elements)
            box[key] = lst
            for i in range(len(t.elements) - 1, -1, -1):
                work.append((t.elements[i], lst, i))
    return root[0]
