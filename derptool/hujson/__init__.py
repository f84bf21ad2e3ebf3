"""HuJSON (JSON with comments and trailing commas), compatible with Tailscale's Go ``hujson``.

Text API (bytes in and out; ``str`` input is encoded as UTF-8)::

    parse(src) -> Value          # Value.pack() gives src back byte for byte
    standardize(src) -> bytes    # comments/trailing commas become spaces, positions unchanged
    minimize(src) -> bytes       # plain JSON, no whitespace
    format(src) -> bytes         # byte-identical to Go's hujson.Format
    patch(src, patch) -> bytes   # RFC 6902, comments moved as Go does; all or nothing
    loads(src) -> Any            # plain Python data, exact integers
    find(src_or_value, pointer) -> Value | None

Tree API (a :class:`Value` edited in place, as Go's methods do)::

    standardize_value(v), minimize_value(v), format_value(v), patch_value(v, patch), is_standard_value(v)

Every rejection raises :class:`HuJSONError` (a ``ValueError``) with ``.line``, ``.column`` (1-based, columns
in bytes) and ``.offset`` (0-based byte offset). The package imports nothing outside the standard library,
so it can ship on its own.

Positions for tools that report problems (e.g. policy validation): every :class:`Value` from
:func:`parse` has ``start_offset``/``end_offset``, the byte span of the trimmed value in the source.
:func:`position` turns an offset into ``(line, column)``. ``find(value, pointer)`` gives the value at a
JSON Pointer, :func:`find_name` the member-name ``Value`` (to point at a key), and ``Value.walk()``
yields ``(pointer, value, name_value_or_None)`` for every value in the tree. ``Value.all()`` walks
every value (member names included). As in Go, a value's ``after_extra`` is ``None`` (Go's nil) or
bytes, and a composite has a trailing comma exactly when its last value's ``after_extra`` is not
``None``; ``Object/Array.trailing_comma`` reads and sets that. Walks, pack, clone and format are
iterative: nesting depth is limited by memory only.

Every output is byte-identical to Tailscale's Go library (the pinned module; checked by
tests/hujson/test_go_differential.py against the Go code itself): parse errors (message, line, column, offset),
``standardize``, ``minimize``, ``format`` and ``patch``, quirks included. Departures, on purpose:

- Byte functions raise :class:`HuJSONError` instead of returning the input together with an error.
- ``patch`` and ``patch_value`` are all or nothing (Go's ``Value.Patch`` leaves the operations before a
  failing one applied); the error is Go's. A patch may also be a list of operation dicts, which is
  written as compact JSON text first.
- ``Value.clone()`` is an exact copy; Go's ``Clone`` turns an empty after-extra into nil, which drops
  a bare trailing comma. Patch's ``copy`` does what Go does.
- ``parse`` checks the whole text at once but builds the tree on first use (``pack()`` of an
  untouched value returns the text); ``patch`` builds only the levels its paths walk through.
- Characters in error messages are named with Python's Unicode tables (Go: ``unicode.IsPrint``); the
  two differ only for characters newer than Python's ``unicodedata``.
- ``loads`` has no Go counterpart: exact ints, floats, duplicate names last wins, invalid UTF-8 and
  lone surrogate escapes become U+FFFD.
"""

from __future__ import annotations

from derptool.hujson.ast import Array, Literal, Object, ObjectMember, Value
from derptool.hujson.decode import loads
from derptool.hujson.errors import HuJSONError, position
from derptool.hujson.format import format, format_value
from derptool.hujson.lazy import parse
from derptool.hujson.patch import patch, patch_value
from derptool.hujson.pointer import find, find_name
from derptool.hujson.standard import (
    is_standard,
    is_standard_value,
    minimize,
    minimize_value,
    standardize,
    standardize_value,
)

__all__ = [
    "Array",
    "HuJSONError",
    "Literal",
    "Object",
    "ObjectMember",
    "Value",
    "find",
    "find_name",
    "format",
    "format_value",
    "is_standard",
    "is_standard_value",
    "loads",
    "minimize",
    "minimize_value",
    "parse",
    "patch",
    "patch_value",
    "position",
    "standardize",
    "standardize_value",
]
