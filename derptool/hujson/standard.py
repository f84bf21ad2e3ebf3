"""Standardize (comments and trailing commas become spaces, positions kept) and minimize.

The byte functions take a fast path first: one regular expression blanks comments and trailing commas,
and the stdlib JSON decoder checks the result. Whatever that path does not accept goes through the full
parser, which either gives the same answer or the exact Go error.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from derptool.hujson.ast import Array, Literal, Object, Value
from derptool.hujson.parse import as_bytes, parse

_EXTRA_PART = rb"(?:[ \t\r\n]++|//[^\n]*+\n|/\*(?s:.*?)\*/)"
# Skip runs of plain text, whole strings and non-trailing commas; stop at a comment, a trailing comma,
# something suspicious (a quote or slash that is not a complete string or comment) or the end.
_FAST = re.compile(
    rb'(?:[^"/,]++|"(?:[^"\\]++|\\(?s:.))*+"|,(?!' + _EXTRA_PART + rb"*+[\]}]))*+"
    rb"(?:(?P<c>//[^\n]*+\n|/\*(?s:.*?)\*/)|(?P<t>,)|(?P<bad>[\"/])|\Z)"
)
_BLANK = bytes(b if b in b" \t\r\n" else 0x20 for b in range(256))
_WS = frozenset(b" \t\r\n")
_NO_VALUE_BEFORE = frozenset(b"[{,:")


class _Unsure(Exception):
    """The fast path cannot decide; use the full parser."""


def _reject_constant(name: str) -> Any:
    raise _Unsure(name)


def fast_standardize(b: bytes) -> bytes | None:
    """Blank comments and trailing commas by pattern, or ``None`` when the input needs the parser.

    The result is only trustworthy once a strict JSON decoder accepted it.
    """
    out: list[bytes] = []
    pos = 0
    match = _FAST.match
    while True:
        m = match(b, pos)
        assert m is not None
        kind = m.lastgroup
        if kind is None:  # end of input
            if not out:
                return b
            out.append(b[pos:])
            return b"".join(out)
        if kind == "bad":
            return None
        s = m.start(kind)
        out.append(b[pos:s])
        if kind == "c":
            comment = m.group("c")
            if not comment.isascii():
                try:
                    comment.decode("utf-8")
                except UnicodeDecodeError:
                    return None
            out.append(comment.translate(_BLANK))
        else:  # a trailing comma: refuse "[,]" and "[1,,]", which blanking would make valid
            if _last_significant(out) in _NO_VALUE_BEFORE:
                return None
            out.append(b" ")
        pos = m.end()


def _last_significant(out: list[bytes]) -> int:
    for chunk in reversed(out):
        k = len(chunk) - 1
        while k >= 0 and chunk[k] in _WS:
            k -= 1
        if k >= 0:
            return chunk[k]
    return -1


def fast_loads(b: bytes, hook: Callable[[str], Any] | None = None) -> tuple[bytes, Any] | None:
    """``(standardized, data)`` by the fast path, or ``None`` if the full parser must decide."""
    std = fast_standardize(b)
    if std is None:
        return None
    try:
        text = std.decode("utf-8")
        data = json.loads(text, parse_constant=_reject_constant)
    except (ValueError, _Unsure, RecursionError):
        return None
    return std, data


def standardize(src: str | bytes) -> bytes:
    """Comments and trailing commas become spaces; every value keeps its byte offset, line and column."""
    b = as_bytes(src)
    fast = fast_loads(b)
    if fast is not None:
        return fast[0]
    v = parse(b)
    standardize_value(v)
    return v.pack()


def minimize(src: str | bytes) -> bytes:
    """Plain JSON with no whitespace, comments or trailing commas; literals are kept as written."""
    v = parse(as_bytes(src))
    minimize_value(v)
    return v.pack()


def is_standard(src: str | bytes) -> bool:
    """True if *src* is valid HuJSON that is also plain JSON (no comments, no trailing commas)."""
    return is_standard_value(parse(as_bytes(src)))


def _composites(v: Value) -> list[Value]:
    return list(v.all())


def standardize_value(v: Value) -> None:
    """Standardize the tree in place (see :func:`standardize`)."""
    for node in _composites(v):
        node.before_extra = node.before_extra.translate(_BLANK)
        node.after_extra = node.after_extra.translate(_BLANK)
        t = node.value
        if isinstance(t, (Object, Array)):
            t.after_extra = t.after_extra.translate(_BLANK)
            if t.trailing_comma:
                last = t.members[-1].value if isinstance(t, Object) else t.elements[-1]
                last.after_extra += b" "
                t.trailing_comma = False
    v.update_offsets()


def minimize_value(v: Value) -> None:
    """Minimize the tree in place (see :func:`minimize`)."""
    for node in _composites(v):
        node.before_extra = b""
        node.after_extra = b""
        t = node.value
        if not isinstance(t, Literal):
            t.after_extra = b""
            t.trailing_comma = False
    v.update_offsets()


def is_standard_value(v: Value) -> bool:
    """True when every extra in the tree is whitespace only and there is no trailing comma."""
    for node in v.all():
        if node.before_extra.strip(b" \t\r\n") or node.after_extra.strip(b" \t\r\n"):
            return False
        t = node.value
        if not isinstance(t, Literal) and (t.trailing_comma or t.after_extra.strip(b" \t\r\n")):
            return False
    return True
