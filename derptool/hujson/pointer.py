"""JSON Pointer (RFC 6901) over the syntax tree, with Go hujson's quirks.

``~1`` and ``~0`` are unescaped; other ``~`` sequences are kept as they are. Names match the decoded member
name exactly; with duplicate names the first wins. An array index is base-10 digits (``00`` is refused,
``01`` means 1); ``-`` and an index past the end mean "not found".
"""

from __future__ import annotations

from dataclasses import dataclass

from derptool.hujson.ast import Array, Literal, Object, Value, decode_string
from derptool.hujson.errors import HuJSONError
from derptool.hujson.parse import as_bytes, parse


@dataclass
class Location:
    """Where a pointer leads: the parent composite (``None`` for the root), the key in it and the value.

    ``found`` is ``None`` when the last segment names nothing; ``key`` is then the member name, or for an
    array the index (``len(elements)`` for ``-`` or past the end). ``parent_missing`` tells that an earlier
    segment already led nowhere.
    """

    parent: Value | None
    key: str | int | None
    found: Value | None
    parent_missing: bool = False


def split_pointer(pointer: str) -> list[str]:
    """The unescaped segments of *pointer*; raises :class:`HuJSONError` for a missing leading slash."""
    if pointer == "":
        return []
    if not pointer.startswith("/"):
        raise HuJSONError("invalid pointer: lacks a forward slash prefix")
    return [s.replace("~1", "/").replace("~0", "~") for s in pointer[1:].split("/")]


def _index(seg: str) -> int:
    if not seg or not seg.isascii() or not seg.isdigit() or (len(seg) > 1 and seg.strip("0") == ""):
        raise HuJSONError(f"invalid array index: {seg}")
    return int(seg)


def member_index(obj: Object, name: str) -> int | None:
    """Index of the first member of *obj* whose decoded name is *name*."""
    for i, m in enumerate(obj.members):
        assert isinstance(m.name.value, Literal)
        raw = m.name.value.raw
        if b"\\" not in raw:
            # the common case, no escapes: compare the bytes directly
            if raw[1:-1] == name.encode("utf-8", "surrogatepass"):
                return i
            try:
                raw[1:-1].decode("utf-8")
                continue
            except UnicodeDecodeError:
                pass
        if decode_string(raw) == name:
            return i
    return None


def locate(root: Value, pointer: str) -> Location:
    """Resolve *pointer* against *root*; raises :class:`HuJSONError` for an invalid pointer."""
    segs = split_pointer(pointer)
    parts = pointer.split("/")
    cur: Value | None = root
    parent: Value | None = None
    key: str | int | None = None
    for i, seg in enumerate(segs):
        if cur is None:
            return Location(parent, key, None, parent_missing=True)
        t = cur.value
        parent = cur
        if isinstance(t, Object):
            key = seg
            k = member_index(t, seg)
            cur = t.members[k].value if k is not None else None
        elif isinstance(t, Array):
            if seg == "-":
                key, cur = len(t.elements), None
                continue
            idx = _index(seg)
            if idx >= len(t.elements):
                key, cur = len(t.elements), None
            else:
                key, cur = idx, t.elements[idx]
        else:
            raise HuJSONError(f"invalid pointer: cannot index into literal at {'/'.join(parts[:i + 1])}")
    return Location(parent, key, cur)


def find(src: Value | str | bytes, pointer: str) -> Value | None:
    """The value at *pointer* in *src* (a tree, or HuJSON text which is parsed), or ``None``.

    ``None`` also for an invalid pointer, as in Go. Text that does not parse raises :class:`HuJSONError`.
    """
    root = src if isinstance(src, Value) else parse(as_bytes(src))
    try:
        return locate(root, pointer).found
    except HuJSONError:
        return None


def find_name(src: Value, pointer: str) -> Value | None:
    """The member-name :class:`Value` of the object member *pointer* designates (for key positions)."""
    try:
        loc = locate(src, pointer)
    except HuJSONError:
        return None
    if loc.found is None or loc.parent is None or not isinstance(loc.parent.value, Object):
        return None
    assert isinstance(loc.key, str)
    k = member_index(loc.parent.value, loc.key)
    return None if k is None else loc.parent.value.members[k].name
