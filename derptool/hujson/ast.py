"""The HuJSON syntax tree: values that keep the whitespace and comments around them.

A :class:`Value` holds ``before_extra`` (whitespace and comments before it), the trimmed value (a
:class:`Literal`, :class:`Object` or :class:`Array`) and ``after_extra``. Packing writes everything back,
so ``parse(b).pack() == b``. Walks are iterative: nesting depth is limited by memory only.

As in Go, ``after_extra`` is ``None`` (Go's nil) or bytes, and a composite has a trailing comma exactly
when its last value's ``after_extra`` is not ``None`` (possibly ``b""``). :attr:`Object.trailing_comma`
reads and sets that, as Go's ``setTrailingComma`` does.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Union

from derptool.hujson.gotext import decode_string, encode_string


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
        return cls(encode_string(s))

    @classmethod
    def from_python(cls, v: bool | int | float | str | None) -> Literal:
        """A literal for a Python scalar (NaN and infinities become strings, as in Go)."""
        if isinstance(v, str):
            return cls.string(v)
        if isinstance(v, float) and (v != v or v in (float("inf"), float("-inf"))):
            return cls.string("NaN" if v != v else ("Infinity" if v > 0 else "-Infinity"))
        return cls(json.dumps(v).encode())


def _set_trailing_comma(comp: Object | Array, last: Value | None, on: bool) -> None:
    """Go's ``setTrailingComma``: turning it off moves the last value's after-extra before the bracket."""
    if last is None:
        return
    if on:
        if last.after_extra is None:
            last.after_extra = b""
    elif last.after_extra is not None:
        comp.after_extra = last.after_extra + comp.after_extra
        last.after_extra = None


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

    @property
    def kind(self) -> str:
        return "{"

    @property
    def trailing_comma(self) -> bool:
        """True when a comma follows the last member (Go: its value's after-extra is not nil)."""
        return bool(self.members) and self.members[-1].value.after_extra is not None

    @trailing_comma.setter
    def trailing_comma(self, on: bool) -> None:
        _set_trailing_comma(self, self.members[-1].value if self.members else None, on)

    def items(self) -> list[Value]:
        """The member values (not the names)."""
        return [m.value for m in self.members]


@dataclass(slots=True)
class Array:
    """A JSON array; ``after_extra`` sits before ``]`` (all of the inside when empty)."""

    elements: list[Value] = field(default_factory=list)
    after_extra: bytes = b""

    @property
    def kind(self) -> str:
        return "["

    @property
    def trailing_comma(self) -> bool:
        """True when a comma follows the last element (Go: its after-extra is not nil)."""
        return bool(self.elements) and self.elements[-1].after_extra is not None

    @trailing_comma.setter
    def trailing_comma(self, on: bool) -> None:
        _set_trailing_comma(self, self.elements[-1] if self.elements else None, on)

    def items(self) -> list[Value]:
        """The elements."""
        return self.elements


ValueTrimmed = Union[Literal, Object, Array]  # noqa: UP007 (runtime alias)


@dataclass(slots=True)
class Value:
    """A value with the extras before and after it and the byte offsets of the trimmed value.

    ``after_extra`` is ``None`` where Go's is nil (see the module docstring). ``start_offset`` and
    ``end_offset`` are filled in by :func:`~derptool.hujson.parse` and by :meth:`update_offsets`;
    edits do not update them.
    """

    value: ValueTrimmed
    before_extra: bytes = b""
    after_extra: bytes | None = None
    start_offset: int = 0
    end_offset: int = 0

    @property
    def kind(self) -> str:
        """``n``, ``f``, ``t``, ``"``, ``0``, ``{`` or ``[``."""
        return self.value.kind

    def pack(self) -> bytes:
        """The HuJSON text of this value, extras included."""
        out = bytearray()
        pack_into(self, out)
        return bytes(out)

    def __bytes__(self) -> bytes:
        return self.pack()

    def __str__(self) -> str:
        return self.pack().decode("utf-8", "replace")

    def clone(self) -> Value:
        """An exact deep copy (iterative, safe for deep nesting).

        Go's ``Clone`` differs in one point: an empty non-nil after-extra becomes nil, which drops a
        trailing comma with nothing around it; patch's ``copy`` reproduces that (:func:`go_clone`).
        """
        return _clone(self, False)

    def update_offsets(self) -> None:
        """Recompute ``start_offset``/``end_offset`` of every value from the packed layout."""
        pos = 0
        stack: list[Any] = [self]
        while stack:
            item = stack.pop()
            if type(item) is bytes:
                pos += len(item)
                continue
            if type(item) is tuple:
                v = item[0]
                v.end_offset = pos
                if v.after_extra:
                    pos += len(v.after_extra)
                continue
            pos += len(item.before_extra)
            item.start_offset = pos
            t = item.value
            if type(t) is Literal:
                pos += len(t.raw)
                item.end_offset = pos
                if item.after_extra:
                    pos += len(item.after_extra)
                continue
            stack.append((item,))
            _push_composite(t, stack)

    def all(self) -> Iterator[Value]:
        """Every value depth first: this one, then for objects each member's name and then its value."""
        stack: list[Value] = [self]
        while stack:
            v = stack.pop()
            yield v
            t = v.value
            if type(t) is Object:
                for m in reversed(t.members):
                    stack.append(m.value)
                    stack.append(m.name)
            elif type(t) is Array:
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
    """Push the inside of *t* (reversed) for the iterative walks, opening bracket included."""
    if isinstance(t, Object):
        stack.append(b"}")
        stack.append(t.after_extra)
        ms = t.members
        if ms and ms[-1].value.after_extra is not None:
            stack.append(b",")
        for i in range(len(ms) - 1, -1, -1):
            m = ms[i]
            stack.append(m.value)
            stack.append(b":")
            stack.append(m.name)
            if i:
                stack.append(b",")
        stack.append(b"{")
    else:
        stack.append(b"]")
        stack.append(t.after_extra)
        es = t.elements
        if es and es[-1].after_extra is not None:
            stack.append(b",")
        for i in range(len(es) - 1, -1, -1):
            stack.append(es[i])
            if i:
                stack.append(b",")
        stack.append(b"[")


def pack_into(v: Value, out: bytearray) -> None:
    """Append the packed text of *v* to *out*."""
    stack: list[Any] = [v]
    append = out.extend
    pop = stack.pop
    push = stack.append
    while stack:
        item = pop()
        if type(item) is bytes:
            append(item)
            continue
        append(item.before_extra)
        t = item.value
        tt = type(t)
        if tt is not Object and tt is not Array:  # a Literal (or a subclass holding raw text)
            append(t.raw)
            if item.after_extra:
                append(item.after_extra)
            continue
        if item.after_extra:
            push(item.after_extra)
        _push_composite(t, stack)


def go_clone(v: Value) -> Value:
    """A deep copy as Go's ``Value.Clone`` makes it: empty after-extras become nil (``None``)."""
    return _clone(v, True)


def _clone(v: Value, go: bool) -> Value:
    def after(x: bytes | None) -> bytes | None:
        return None if go and not x else x

    root = Value(v.value, v.before_extra, after(v.after_extra), v.start_offset, v.end_offset)
    stack = [root]
    while stack:
        c = stack.pop()
        t = c.value
        if type(t) is not Object and type(t) is not Array:
            continue  # literals are never changed in place
        if type(t) is Object:
            members = []
            for m in t.members:
                n, val = m.name, m.value
                nv = Value(val.value, val.before_extra, after(val.after_extra), val.start_offset, val.end_offset)
                members.append(
                    ObjectMember(Value(n.value, n.before_extra, after(n.after_extra), n.start_offset, n.end_offset), nv)
                )
                stack.append(nv)
            c.value = Object(members, t.after_extra)
        else:
            assert isinstance(t, Array)
            elements = [
                Value(e.value, e.before_extra, after(e.after_extra), e.start_offset, e.end_offset) for e in t.elements
            ]
            stack.extend(elements)
            c.value = Array(elements, t.after_extra)
    return root
