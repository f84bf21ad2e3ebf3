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
from collections.abc import Callable
from typing import Any

from derptool.hujson.ast import Array, Literal, Object, ObjectMember, Value
from derptool.hujson.errors import GiveUp
from derptool.hujson.parse import _EXTRA_RE, parse_tree
from derptool.hujson.standard import VALIDATOR, checked_standardize, standardized_candidates

# extra, then one token (a whole string or other literal, or one structural character)
_TOKEN = rb"""("(?:[^"\\]++|\\(?s:.))*+"|[-+.A-Za-z0-9]++|[{}\[\],:])"""
_PAIR = re.compile(b"(" + _EXTRA_RE + b")" + _TOKEN)
# an object member up to its value's first token in one match: extra, name, extra, extra, token
_MEMBER = re.compile(
    b"(" + _EXTRA_RE + rb""")("(?:[^"\\]++|\\(?s:.))*+")(""" + _EXTRA_RE + b"):(" + _EXTRA_RE + b")" + _TOKEN
)
# The decoders' C scanners, called directly: (value, end) at an offset of checked text, and the same,
# strict (no NaN or Infinity), for text not checked yet. (Typeshed does not list scan_once.)
_SKIP: Callable[[str, int], tuple[Any, int]] = json.JSONDecoder(object_pairs_hook=len).scan_once  # type: ignore[attr-defined]
_CHECK: Callable[[str, int], tuple[Any, int]] = VALIDATOR.scan_once  # type: ignore[attr-defined]


class Unparsed(Literal):
    """A composite value not built yet: ``raw`` is its exact text (brackets, comments and all)."""

    __slots__ = ("src", "start", "std")

    def __init__(self, raw: bytes, src: bytes, std: str, start: int) -> None:
        self.raw, self.src, self.std, self.start = raw, src, std, start

    @property
    def kind(self) -> str:
        return "{" if self.raw[:1] == b"{" else "["


def shallow_tree(b: bytes) -> Value | None:
    """The root of *b* with its composite members unbuilt, or ``None`` when *b* needs the full parser.

    Building the root level checks the whole text: every root-level token, and each member's value by
    the C JSON decoder on the standardized text (which is how its end is found).
    """
    std = checked_standardize(b, True)
    if std is None:
        return None
    for candidate in standardized_candidates(b, std):
        try:
            return _root(b, candidate.decode("latin-1"))  # one character per byte: offsets stay byte offsets
        except GiveUp:
            pass
    return None


def _root(b: bytes, std: str) -> Value:
    m = _PAIR.match(b, 0)
    if m is None:
        raise GiveUp("no value")
    extra, tok = m.groups()
    start = m.start(2)
    if tok == b"{" or tok == b"[":
        root = Value(Unparsed(b, b, std, start), extra, None, start, start)
        end = root.end_offset = _open(root, True)
    else:
        root = _value(b, std, m, True)
        end = root.end_offset
    if std[end:].strip(" \t\r\n"):
        raise GiveUp("more after the value")
    if end != len(b):
        root.after_extra = b[end:]
    return root


def _value(b: bytes, std: str, m: re.Match[bytes], check: bool = False, group: int = 2) -> Value:
    """The value whose token is *m*'s *group* (the extra before it is the group before), composites
    left unbuilt; with *check*, the C decoder checks it (scalars too)."""
    extra, tok = m.group(group - 1, group)
    start = m.start(group)
    c = tok[:1]
    if c == b"{" or c == b"[" or check:
        try:  # the C scanner itself: raw_decode's Python frame costs a microsecond a value
            end = (_CHECK if check else _SKIP)(std, start)[1]
        except (StopIteration, ValueError, RecursionError, GiveUp) as err:
            raise GiveUp(repr(err)) from None
        if c == b"{" or c == b"[":
            return Value(Unparsed(b[start:end], b, std, start), extra, None, start, end)
        if end != m.end(group):
            raise GiveUp("not a literal")
    return Value(Literal(tok), extra, None, start, m.end(group))


def open_value(v: Value) -> None:
    """Build one level of *v* if it is :class:`Unparsed` (its members stay unbuilt)."""
    if type(v.value) is Unparsed:
        _open(v, False)


def _open(v: Value, check: bool) -> int:
    """Build one level of the :class:`Unparsed` *v*; returns where it ends. With *check*, every token
    of that level is checked (:class:`GiveUp` if anything is wrong); otherwise the text was checked."""
    t = v.value
    assert isinstance(t, Unparsed)
    b, std, pos = t.src, t.std, t.start + 1
    comp: Object | Array = Object() if b[t.start] == 0x7B else Array()
    is_obj = type(comp) is Object
    close = b"}" if is_obj else b"]"
    last: Value | None = None
    match, member = _PAIR.match, _MEMBER.match
    while True:
        m = member(b, pos) if is_obj else None
        if m is None:  # an array element, or the closing bracket
            m = match(b, pos)
            if m is None:
                raise GiveUp("no token")
            extra, tok = m.groups()
            if tok == close:  # the composite is empty, or this follows a trailing comma
                comp.after_extra = extra
                if last is not None and last.after_extra is None:
                    last.after_extra = b""
                end = m.end()
                break
            if is_obj or tok in (b",", b":", b"}", b"]"):
                raise GiveUp("no value")
            last = _value(b, std, m, check)
            comp.elements.append(last)  # type: ignore[union-attr]
        else:
            if m.group(5) in (b",", b":", b"}", b"]"):
                raise GiveUp("no value")
            name = _value(b, std, m, check)
            if m.group(3):
                name.after_extra = m.group(3)
            last = _value(b, std, m, check, 5)
            comp.members.append(ObjectMember(name, last))  # type: ignore[union-attr]
        m = match(b, last.end_offset)
        if m is None:
            raise GiveUp("no token")
        after, tok = m.groups()
        pos = m.end()
        if tok == b",":
            if after:
                last.after_extra = after
            continue
        if tok != close:
            raise GiveUp("no comma")
        comp.after_extra = after
        end = pos
        break
    v.value = comp
    return end


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
