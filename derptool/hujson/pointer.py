"""JSON Pointer (RFC 6901) over the syntax tree, resolved exactly as Go's ``Value.Find`` does.

``~1`` and ``~0`` are unescaped; other ``~`` sequences are kept as they are. Names match the decoded member
name exactly; with duplicate names the first wins. An array index is base-10 digits that fit 64 bits
(``00`` is refused, ``01`` means 1); ``-`` and an index past the end mean "not found".
"""

from __future__ import annotations

from dataclasses import dataclass

from derptool.hujson.ast import Array, Literal, Object, Value
from derptool.hujson.errors import HuJSONError
from derptool.hujson.gotext import decode_string
from derptool.hujson.parse import as_bytes, parse_tree
from derptool.hujson.shallow import Unparsed, open_value

NOT_FOUND = "value not found"
_MAX_UINT64 = (1 << 64) - 1


@dataclass
class Location:
    """Where a pointer led (Go's ``findState``).

    ``parent`` is the composite holding the value (``None`` for the root), ``index`` its position in
    the parent (``len`` of the parent when the last segment named nothing), ``name`` the last segment,
    ``found`` the value or ``None``, and ``complete`` whether every segment was used (so that a missing
    value may be added there).
    """

    parent: Object | Array | None
    name: str
    index: int
    found: Value | None
    complete: bool


def name_matches(raw: bytes, name: str) -> bool:
    """Whether the member name literal *raw* decodes to *name* (Go's ``Literal.equalString``)."""
    if b"\\" not in raw:
        return raw[1:-1] == name.encode("utf-8", "surrogatepass")
    return decode_string(raw) == name


def member_index(obj: Object, name: str) -> int | None:
    """Index of the first member of *obj* whose decoded name is *name*."""
    want = name.encode("utf-8", "surrogatepass")
    for i, m in enumerate(obj.members):
        raw = m.name.value.raw  # type: ignore[union-attr]
        if b"\\" not in raw:
            if raw[1:-1] == want:
                return i
        elif decode_string(raw) == name:
            return i
    return None


def _array_index(seg: str) -> int:
    if not seg or not seg.isascii() or not seg.isdigit() or int(seg) > _MAX_UINT64 or (int(seg) == 0 and seg != "0"):
        raise HuJSONError(f"invalid array index: {seg}")
    return int(seg)


def locate(root: Value, pointer: str) -> tuple[Location, HuJSONError | None]:
    """Resolve *pointer*; the error is ``value not found`` or an invalid-pointer error, as in Go."""
    loc = Location(None, "", 0, root, True)
    v = root
    offset = 0
    n = len(pointer)
    while True:
        loc.found = v
        if offset == n:
            return loc, None
        t = v.value
        if type(t) is Unparsed:
            open_value(v)
            t = v.value
        if type(t) is Literal:
            return loc, HuJSONError(f"invalid pointer: cannot index into literal at {pointer[:offset]}")
        loc.parent, loc.index, loc.name = None, 0, ""
        if not pointer.startswith("/", offset):
            return loc, HuJSONError("invalid pointer: lacks a forward slash prefix")
        j = pointer.find("/", offset + 1)
        end = n if j < 0 else j
        name = pointer[offset + 1 : end]
        if "~" in name:
            name = name.replace("~1", "/").replace("~0", "~")
        offset = end
        assert isinstance(t, (Object, Array))
        loc.parent, loc.name = t, name
        loc.complete = offset == n
        loc.found = None
        if type(t) is Object:
            loc.index = len(t.members)
            k = member_index(t, name)
            if k is None:
                return loc, HuJSONError(NOT_FOUND)
            loc.index = k
            v = t.members[k].value
        else:
            assert isinstance(t, Array)
            loc.index = len(t.elements)
            if name == "-":
                return loc, HuJSONError(NOT_FOUND)
            try:
                i = _array_index(name)
            except HuJSONError as err:
                return loc, err
            if i >= len(t.elements):
                return loc, HuJSONError(NOT_FOUND)
            loc.index = i
            v = t.elements[i]


def find(src: Value | str | bytes, pointer: str) -> Value | None:
    """The value at *pointer* in *src* (a tree, or HuJSON text which is parsed), or ``None``.

    ``None`` also for an invalid pointer, as in Go. Text that does not parse raises :class:`HuJSONError`.
    """
    root = src if isinstance(src, Value) else parse_tree(as_bytes(src))
    loc, err = locate(root, pointer)
    return None if err is not None else loc.found


def find_name(src: Value, pointer: str) -> Value | None:
    """The member-name :class:`Value` of the object member *pointer* designates (for key positions)."""
    loc, err = locate(src, pointer)
    if err is not None or not isinstance(loc.parent, Object):
        return None
    return loc.parent.members[loc.index].name
