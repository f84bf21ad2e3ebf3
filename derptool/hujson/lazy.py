"""``parse``: a tree that is built only when it is looked at.

Checking that text is valid HuJSON is cheap (comments blanked by pattern, then the C JSON decoder); the
tree of Python objects is not (a few objects per token). :func:`parse` checks the text at once, raising
Go's error for invalid input as the eager parser does, and returns a :class:`Value` that builds its tree
on first access to any attribute; ``pack()`` of a value that was never looked at returns the text as is.
After the first access the object is a plain :class:`Value` (its class is switched), so nothing else pays
for the laziness.
"""

from __future__ import annotations

from typing import Any

from derptool.hujson.ast import Value
from derptool.hujson.parse import as_bytes, parse_tree
from derptool.hujson.standard import fast_loads

_SLOTS = {name: Value.__dict__[name] for name in ("value", "before_extra", "after_extra", "start_offset", "end_offset")}
_VALUE = _SLOTS["value"]


class _Pending:
    """Held in the ``value`` slot of a :class:`_LazyValue` until its tree is built."""

    __slots__ = ("src",)

    def __init__(self, src: bytes) -> None:
        self.src = src


def _load(v: Value) -> None:
    pending = _VALUE.__get__(v)
    if type(v) is not _LazyValue or not isinstance(pending, _Pending):
        return
    tree = parse_tree(pending.src)
    for slot in _SLOTS.values():
        slot.__set__(v, slot.__get__(tree))
    v.__class__ = Value  # type: ignore[assignment]  # same layout: the laziness ends here


def _slot_property(name: str) -> property:
    slot = _SLOTS[name]

    def get(self: Value) -> Any:
        _load(self)
        return slot.__get__(self)

    def set_(self: Value, x: Any) -> None:
        _load(self)
        slot.__set__(self, x)

    return property(get, set_, doc=f"``{name}`` (builds the tree on first use)")


class _LazyValue(Value):
    """A :class:`Value` whose tree is built on first use (see the module docstring)."""

    __slots__ = ()

    value = _slot_property("value")
    before_extra = _slot_property("before_extra")
    after_extra = _slot_property("after_extra")
    start_offset = _slot_property("start_offset")
    end_offset = _slot_property("end_offset")

    def __eq__(self, other: object) -> bool:
        _load(self)
        if isinstance(other, _LazyValue):
            _load(other)
        return Value.__eq__(self, other)

    __hash__ = None  # type: ignore[assignment]

    def pack(self) -> bytes:
        pending = _VALUE.__get__(self)
        if isinstance(pending, _Pending):
            return pending.src
        return Value.pack(self)


def parse(src: str | bytes | bytearray | memoryview) -> Value:
    """Parse HuJSON text. ``parse(b).pack() == b`` for every *b* that parses.

    Raises :class:`~derptool.hujson.errors.HuJSONError` with Go's message and position. The tree is
    built on first use; a value that is only packed costs a validity check.
    """
    b = as_bytes(src)
    if fast_loads(b, validate_only=True) is None:
        return parse_tree(b)  # invalid (raises), or beyond the quick check: build it now
    v = _LazyValue.__new__(_LazyValue)
    _VALUE.__set__(v, _Pending(b))
    for name in ("before_extra", "after_extra", "start_offset", "end_offset"):
        _SLOTS[name].__set__(v, None)
    return v
