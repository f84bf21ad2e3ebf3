"""The HuJSON syntax tree: values that keep the whitespace and comments around them.

A :class:`Value` holds ``before_extra`` (whitespace and comments before it), the trimmed value (a
:class:`Literal`, :class:`Object` or :class:`Array`) and ``after_extra``. Packing writes everything back,
so ``parse(b).pack() == b``. Walks are iterative: nesting depth is limited by memory only.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Union

_SURROGATE = re.compile("[\ud800-\udfff]")
_WS = frozenset(b" \t\r\n")


@dataclass(slots=True)
class Literal:
    """A JSON literal (null, true, false, string or number), raw bytes kept exactly as written."""

    raw: bytes

    @property
    def kind(self) -> str:
        """``n``, ``f``, ``t``, ``"`` or ``0`` (every number)."""
        c = self.raw[:1]
        return c.decode() if c in (b"n", b"f", b"t", b'"') else "0"

    def decode(self) -> Any:
        """The Python value: ``None``, ``bool``, ``str``, ``int`` (exact) or ``float``.

        Strings decode like Go: invalid UTF-8 and lone surrogate escapes become U+FFFD.
        """
        if self.raw[:1] == b'"':
            return decode_string(self.raw)
        return json.loads(self.raw)

    @classmethod
    def string(cls, s: str) -> Literal:
        """A string literal escaped as Go's ``hujson.String`` does (RFC 8785 style, non-ASCII raw)."""
        s = _SURROGATE.sub("\ufffd", s)
        return cls(json.dumps(s, ensure_ascii=False).encode())

    @classmethod
    def from_python(cls, v: bool | int | float | str | None) -> Literal:
        """A literal for a Python scalar (NaN and infinities become strings, as in Go)."""
        if isinstance(v, str):
            return cls.string(v)
        if isinstance(v, float) and (v != v or v in (float("inf"), float("-inf"))):
            return cls.string("NaN" if v != v else ("Infinity" if v > 0 else "-Infinity"))
        return cls(json.dumps(v).encode())


def decode_string(raw: bytes) -> str:
    """Decode a string literal's raw bytes the way Go's encoding/json does."""
    s = json.loads(raw.decode("utf-8", "replace"))
    assert isinstance(s, str)
    return _SURROGATE.sub("\ufffd", s) if _SURROGATE.search(s) else s


@dataclass(slots=True)
class ObjectMember:
    """One ``name: value`` member; the name is a full :class:`Value` with its own extras."""

    name: Value
    value: Value


@dataclass(slots=True)
class Object:
    """A JSON object; ``after_extra`` sits before ``}`` (all of the inside when empty)."""

    members: list[ObjectMember] = field(default_factory=list)
    after_extra: bytes = b""
    trailing_comma: bool = False

    @property
    def kind(self) -> str:
        return "{"


@dataclass(slots=True)
class Array:
    """A JSON array; ``after_extra`` sits before ``]`` (all of the inside when empty)."""

    elements: list[Value] = field(default_factory=list)
    after_extra: bytes = b""
    trailing_comma: bool = False

    @property
    def kind(self) -> str:
        return "["


ValueTrimmed = Union[Literal, Object, Array]  # noqa: UP007 (runtime alias)


@dataclass(slots=True)
class Value:
    """A value with the extras before and after it and the byte offsets of the trimmed value.

    ``start_offset``/``end_offset`` are filled in by :func:`~derptool.hujson.parse` and by
    :meth:`update_offsets`; edits do not update them.
    """

    value: ValueTrimmed
    before_extra: bytes = b""
    after_extra: bytes = b""
    start_offset: int = 0
    end_offset: int = 0

    @property
    def kind(self) -> str:
        """``n``, ``f``, ``t``, ``"``, ``0``, ``{`` or ``[``."""
        return self.value.kind

    def pack(self) -> bytes:
        """The HuJSON text of this value, extras included."""
        out: list[bytes] = []
        _pack_into(self, out)
        return b"".join(out)

    def __bytes__(self) -> bytes:
        return self.pack()

    def __str__(self) -> str:
        return self.pack().decode("utf-8", "replace")

    def clone(self) -> Value:
        """A deep copy (iterative, safe for deep nesting)."""
        return _clone(self)

    def update_offsets(self) -> None:
        """Recompute ``start_offset``/``end_offset`` of every value from the packed layout."""
        pos = 0
        stack: list[Value | bytes | tuple[Value]] = [self]
        while stack:
            item = stack.pop()
            if isinstance(item, bytes):
                pos += len(item)
                continue
            if isinstance(item, tuple):
                item[0].end_offset = pos
                continue
            pos += len(item.before_extra)
            item.start_offset = pos
            t = item.value
            if isinstance(t, Literal):
                pos += len(t.raw)
                item.end_offset = pos
                pos += len(item.after_extra)
                continue
            stack.append(item.after_extra)
            stack.append((item,))
            _push_composite(t, stack)

    def all(self) -> Iterator[Value]:
        """Every value depth first: this one, then for objects each member's name and then its value."""
        stack: list[Value] = [self]
        while stack:
            v = stack.pop()
            yield v
            t = v.value
            if isinstance(t, Object):
                for m in reversed(t.members):
                    stack.append(m.value)
                    stack.append(m.name)
            elif isinstance(t, Array):
                stack.extend(reversed(t.elements))

    def walk(self) -> Iterator[tuple[str, Value, Value | None]]:
        """``(json_pointer, value, name)`` for this value and every value inside it, depth first.

        ``name`` is the member-name :class:`Value` for object members (its offsets locate the key),
        ``None`` for the root and for array elements.
        """
        stack: list[tuple[str, Value, Value | None]] = [("", self, None)]
        while stack:
            item = stack.pop()
            yield item
            ptr, v, _ = item
            t = v.value
            if isinstance(t, Object):
                for m in reversed(t.members):
                    assert isinstance(m.name.value, Literal)
                    seg = decode_string(m.name.value.raw).replace("~", "~0").replace("/", "~1")
                    stack.append((f"{ptr}/{seg}", m.value, m.name))
            elif isinstance(t, Array):
                for i in range(len(t.elements) - 1, -1, -1):
                    stack.append((f"{ptr}/{i}", t.elements[i], None))


def _push_composite(t: Object | Array, stack: list[Any]) -> None:
    """Push the inside of *t* (reversed) for the iterative walks; the opening bracket is consumed."""
    if isinstance(t, Object):
        stack.append(b"}")
        stack.append(t.after_extra)
        ms = t.members
        if t.trailing_comma and ms:
            stack.append(b",")
        for i in range(len(ms) - 1, -1, -1):
            stack.append(ms[i].value)
            stack.append(b":")
            stack.append(ms[i].name)
            if i:
                stack.append(b",")
        stack.append(b"{")
    else:
        stack.append(b"]")
        stack.append(t.after_extra)
        es = t.elements
        if t.trailing_comma and es:
            stack.append(b",")
        for i in range(len(es) - 1, -1, -1):
            stack.append(es[i])
            if i:
                stack.append(b",")
        stack.append(b"[")


def _pack_into(v: Value, out: list[bytes]) -> None:
    stack: list[Any] = [v]
    append = out.append
    while stack:
        item = stack.pop()
        if type(item) is bytes:
            append(item)
            continue
        append(item.before_extra)
        t = item.value
        if type(t) is Literal:
            append(t.raw)
            append(item.after_extra)
            continue
        stack.append(item.after_extra)
        _push_composite(t, stack)


def _clone(v: Value) -> Value:
    root = Value(v.value, v.before_extra, v.after_extra, v.start_offset, v.end_offset)
    stack = [root]
    while stack:
        c = stack.pop()
        t = c.value
        if isinstance(t, Literal):
            c.value = Literal(t.raw)
        elif isinstance(t, Object):
            members = []
            for m in t.members:
                n = copy.copy(m.name)
                n.value = Literal(m.name.value.raw) if isinstance(m.name.value, Literal) else m.name.value
                val = copy.copy(m.value)
                members.append(ObjectMember(n, val))
                stack.append(val)
            c.value = Object(members, t.after_extra, t.trailing_comma)
        else:
            elements = [copy.copy(e) for e in t.elements]
            stack.extend(elements)
            c.value = Array(elements, t.after_extra, t.trailing_comma)
    return root
