"""A tree that is built only along the paths an edit walks (for :func:`~derptool.hujson.patch`).

A patch touches a few places of a large document. :func:`shallow_tree` checks the whole text (the C
JSON decoder on the standardized text) and builds only the root level: a composite member is kept as
one :class:`Unparsed` literal holding its exact text. :func:`open_value` builds one more level of such
a value when a JSON Pointer walks into it. Packing writes untouched spans back as they were, so the
cost is the check plus the levels on the paths, not a Python object per token.
"""

from __future__ import annotations

import json
import re

from derptool.hujson.ast import Array, Literal, Object, ObjectMember, Value
from derptool.hujson.parse import _EXTRA_RE, parse_tree
from derptool.hujson.standard import fast_loads

# extra, then one token (a whole string or other literal, or one structural character)
_PAIR = re.compile(
    b"(" + _EXTRA_RE + rb""")(
      "(?:[^"\\]++|\\(?s:.))*+"
     |[-+.A-Za-z0-9]++
     |[{}\[\],:])""", re.X)
_SKIPPER = json.JSONDecoder(object_pairs_hook=len)


class Unparsed(Literal):
    """A composite value not built yet: ``raw`` is its exact text (brackets, comments and all)."""

    __slots__ = ("src", "start", "std")

    def __init__(self, raw: bytes, src: bytes, std: str, start: int) -> None:
        super().__init__(raw)
        self.src, self.std, self.start = src, std, start

    @property
    def kind(self) -> str:
        return "{" if self.raw[:1] == b"{" else "["


class _Doubt(Exception):
    """The shallow reader cannot go on; the caller uses the full parser."""


def shallow_tree(b: bytes) -> Value | None:
    """The root of *b* with its composite members unbuilt, or ``None`` when *b* needs the full parser."""
    fast = fast_loads(b, validate_only=True, positions=True)
    if fast is None:
        return None
    std = fast[0].decode("latin-1")  # one character per byte: offsets stay byte offsets
    m = _PAIR.match(b, 0)
    assert m is not None
    try:
        root = _value(b, std, m)
    except _Doubt:
        return None
    end = root.end_offset
    if end != len(b):
        root.after_extra = b[end:]
    return root


def _value(b: bytes, std: str, m: re.Match[bytes]) -> Value:
    """The value whose token *m* matched (extra included), composites left unbuilt."""
    extra, tok = m.groups()
    start = m.start(2)
    c = tok[:1]
    if c == b"{" or c == b"[":
        try:
            end = _SKIPPER.raw_decode(std, start)[1]
        except (ValueError, RecursionError) as err:
            raise _Doubt(str(err)) from None
        return Value(Unparsed(b[start:end], b, std, start), extra, None, start, end)
    return Value(Literal(tok), extra, None, start, m.end())


def open_value(v: Value) -> None:
    """Build one level of *v* if it is :class:`Unparsed` (its members stay unbuilt)."""
    t = v.value
    if type(t) is not Unparsed:
        return
    b, std, pos = t.src, t.std, t.start + 1
    comp: Object | Array = Object() if t.raw[:1] == b"{" else Array()
    is_obj = type(comp) is Object
    close = b"}" if is_obj else b"]"
    last: Value | None = None
    while True:
        m = _PAIR.match(b, pos)
        if m is None:
            raise AssertionError("checked text")
        extra, tok = m.groups()
        if tok == close:  # empty, or after a trailing comma
            comp.after_extra = extra
            if last is not None and last.after_extra is None:
                last.after_extra = b""
            break
        if is_obj:
            name = Value(Literal(tok), extra, None, m.start(2), m.end())
            m = _PAIR.match(b, m.end())
            assert m is not None and m.group(2) == b":"
            if m.group(1):
                name.after_extra = m.group(1)
            m = _PAIR.match(b, m.end())
            assert m is not None
            last = _value(b, std, m)
            comp.members.append(ObjectMember(name, last))  # type: ignore[union-attr]
        else:
            last = _value(b, std, m)
            comp.elements.append(last)  # type: ignore[union-attr]
        m = _PAIR.match(b, last.end_offset)
        assert m is not None
        after, tok = m.groups()
        pos = m.end()
        if tok == b",":
            if after:
                last.after_extra = after
            continue
        assert tok == close
        comp.after_extra = after
        break
    v.value = comp


def full_value(v: Value) -> None:
    """Build all of *v* (and everything below it) if it is :class:`Unparsed`."""
    t = v.value
    if type(t) is Unparsed:
        v.value = parse_tree(t.raw).value
        return
    stack = [v]
    while stack:
        x = stack.pop()
        t = x.value
        if type(t) is Unparsed:
            x.value = parse_tree(t.raw).value
        elif type(t) is Object:
            stack.extend(m.value for m in t.members)
        elif type(t) is Array:
            stack.extend(t.elements)
