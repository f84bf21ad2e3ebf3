"""The HuJSON parser: bytes in, :class:`~derptool.hujson.ast.Value` out.

The grammar is Tailscale's (JWCC): RFC 8259 JSON, ``//`` and ``/* */`` comments wherever whitespace may
go, and one trailing comma inside objects and arrays. The parser is iterative (an explicit stack), scans
with compiled regular expressions over bytes, and reports errors with Go's messages and byte positions.
"""

from __future__ import annotations

import re
import unicodedata

from derptool.hujson.ast import Array, Literal, Object, ObjectMember, Value
from derptool.hujson.errors import HuJSONError

# Whitespace and complete comments; what stops it is examined by the caller.
_EXTRA = re.compile(rb"(?:[ \t\r\n]++|//[^\n]*+\n|/\*(?s:.*?)\*/)*+")
_COMMENT = re.compile(rb"//[^\n]*+\n|/\*(?s:.*?)\*/")
# A string that is valid as it stands (bad escapes and control bytes fail; any byte >= 0x20 is fine).
_STRING_OK = re.compile(rb'"(?:[^"\\\x00-\x1f]++|\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4}))*+"')
# The extent of a string: up to the closing quote, skipping the byte after each backslash.
_STRING_SCAN = re.compile(rb'"(?:[^"\\]++|\\(?s:.))*+"')
_LITERAL_RUN = re.compile(rb"[-+.A-Za-z0-9]++")
_LITERAL_OK = re.compile(rb"null|true|false|-?(?:0|[1-9][0-9]*+)(?:\.[0-9]++)?(?:[eE][-+]?[0-9]++)?")

_LITERAL_START = frozenset(b"-+.ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789")
_QUOTE, _LBRACE, _RBRACE, _LBRACKET, _RBRACKET = 0x22, 0x7B, 0x7D, 0x5B, 0x5D
_COMMA, _COLON, _SLASH, _STAR = 0x2C, 0x3A, 0x2F, 0x2A


def as_bytes(src: str | bytes | bytearray | memoryview) -> bytes:
    """*src* as bytes (``str`` is encoded as UTF-8)."""
    if isinstance(src, str):
        return src.encode("utf-8", "surrogatepass")
    return bytes(src)


def quote_char(b: bytes, pos: int) -> str:
    """The character at *pos* quoted as Go's ``%q`` of a rune (``'\\xff'`` for an invalid byte)."""
    chunk = b[pos:pos + 4]
    for size in (1, 2, 3, 4):
        try:
            ch = chunk[:size].decode("utf-8")
        except UnicodeDecodeError:
            continue
        break
    else:
        return f"'\\x{b[pos]:02x}'"
    if ch == "'" or ch == "\\":
        return f"'\\{ch}'"
    cp = ord(ch)
    if ch == " " or unicodedata.category(ch)[0] in "LMNPS":
        return f"'{ch}'"
    short = {7: "\\a", 8: "\\b", 12: "\\f", 10: "\\n", 13: "\\r", 9: "\\t", 11: "\\v"}
    if cp in short:
        return f"'{short[cp]}'"
    if cp < 0x20 or cp == 0x7F:
        return f"'\\x{cp:02x}'"
    if cp < 0x10000:
        return f"'\\u{cp:04x}'"
    return f"'\\U{cp:08x}'"


def _check_comments(b: bytes, start: int, end: int) -> None:
    """Raise for the first comment in ``b[start:end]`` that is not valid UTF-8."""
    ext = b[start:end]
    if ext.isascii():
        return
    try:
        ext.decode("utf-8")
        return
    except UnicodeDecodeError:
        pass
    for m in _COMMENT.finditer(ext):
        try:
            m.group().decode("utf-8")
        except UnicodeDecodeError:
            raise HuJSONError.at(b, start + m.start(), "invalid UTF-8 in comment") from None


def _extra(b: bytes, pos: int) -> int:
    """Skip whitespace and comments from *pos*; return where they end. Raises on bad comments."""
    end = _EXTRA.match(b, pos).end()  # type: ignore[union-attr]  # always matches (may be empty)
    if end != pos and b.find(b"/", pos, end) >= 0:
        _check_comments(b, pos, end)
    if b[end:end + 1] == b"/" and b[end + 1:end + 2] in (b"/", b"*"):
        raise HuJSONError.at(b, end, "parsing comment: unexpected EOF")
    return end


def _string(b: bytes, pos: int) -> int:
    """End of the string literal starting at *pos* (which holds a quote); raises if invalid."""
    m = _STRING_OK.match(b, pos)
    if m is not None:
        return m.end()
    m = _STRING_SCAN.match(b, pos)
    if m is None:
        raise HuJSONError.at(b, len(b), "parsing string: unexpected EOF")
    raw = m.group().decode("utf-8", "replace")
    raise HuJSONError.at(b, pos, f"invalid literal: {raw}")


class _Frame:
    __slots__ = ("comp", "node")

    def __init__(self, node: Value, comp: Object | Array) -> None:
        self.node = node
        self.comp = comp


def parse(src: str | bytes | bytearray | memoryview) -> Value:
    """Parse HuJSON text. ``parse(b).pack() == b`` for every *b* that parses.

    Raises :class:`~derptool.hujson.errors.HuJSONError` with Go's message and position.
    """
    b = as_bytes(src)
    n = len(b)
    stack: list[_Frame] = []
    start = 0
    pos = _extra(b, 0)
    root: Value | None = None
    while True:
        # --- parse one value; its before-extra is b[start:pos] ---
        node = Value(Literal(b""), b[start:pos], b"", pos, pos)
        if root is None:
            root = node
        elif stack:
            top = stack[-1].comp
            if type(top) is Array:
                top.elements.append(node)
            else:
                assert isinstance(top, Object)
                top.members[-1].value = node
        if pos >= n:
            raise HuJSONError.at(b, n, "parsing value: unexpected EOF")
        c = b[pos]
        if c == _QUOTE:
            end = _string(b, pos)
            node.value = Literal(b[pos:end])
            node.end_offset = pos = end
        elif c in _LITERAL_START:
            m = _LITERAL_RUN.match(b, pos)
            assert m is not None
            end = m.end()
            if _LITERAL_OK.fullmatch(b, pos, end) is None:
                raise HuJSONError.at(b, pos, f"invalid literal: {m.group().decode()}")
            node.value = Literal(b[pos:end])
            node.end_offset = pos = end
        elif c in (_LBRACE, _LBRACKET):
            comp: Object | Array = Object() if c == _LBRACE else Array()
            node.value = comp
            stack.append(_Frame(node, comp))
            start = pos + 1
            pos = _extra(b, start)
            if pos < n and b[pos] == (_RBRACE if c == _LBRACE else _RBRACKET):
                comp.after_extra = b[start:pos]
                pos += 1
                node.end_offset = pos
                stack.pop()
            elif c == _LBRACKET:
                continue  # the first element, before-extra already read
            else:
                assert isinstance(comp, Object)
                start, pos = _member_name(b, start, pos, comp)
                continue
        else:
            raise HuJSONError.at(b, pos, f"invalid character {quote_char(b, pos)} at start of value")

        # --- a value is complete: read its after-extra and continue in the enclosing composite ---
        while True:
            after = _extra(b, pos)
            node.after_extra = b[pos:after]
            pos = after
            if not stack:
                if pos < n:
                    raise HuJSONError.at(
                        b, pos, f"invalid character {quote_char(b, pos)} after top-level value")
                return root
            frame = stack[-1]
            comp = frame.comp
            is_obj = type(comp) is Object
            if pos >= n:
                what = "object" if is_obj else "array"
                raise HuJSONError.at(b, n, f"parsing {what} after value: unexpected EOF")
            c = b[pos]
            close = _RBRACE if is_obj else _RBRACKET
            if c == _COMMA:
                start = pos + 1
                pos = _extra(b, start)
                if pos < n and b[pos] == close:
                    comp.trailing_comma = True
                    comp.after_extra = b[start:pos]
                elif is_obj:
                    assert isinstance(comp, Object)
                    start, pos = _member_name(b, start, pos, comp)
                    break
                else:
                    break
            elif c == close:
                comp.after_extra = node.after_extra
                node.after_extra = b""
            elif is_obj:
                raise HuJSONError.at(
                    b, pos, f"invalid character {quote_char(b, pos)} after object value (expecting ',' or '}}')")
            else:
                raise HuJSONError.at(
                    b, pos, f"invalid character {quote_char(b, pos)} after array value (expecting ',' or ']')")
            # close the composite
            pos += 1
            node = frame.node
            node.end_offset = pos
            stack.pop()


def _member_name(b: bytes, start: int, pos: int, obj: Object) -> tuple[int, int]:
    """Parse ``name <extra> :`` at *pos* (before-extra from *start*); return the value's extra span."""
    n = len(b)
    if pos < n and b[pos] != _QUOTE:
        raise HuJSONError.at(b, pos, f"invalid character {quote_char(b, pos)} at start of object name")
    if pos >= n:
        raise HuJSONError.at(b, n, "parsing value: unexpected EOF")
    end = _string(b, pos)
    after = _extra(b, end)
    name = Value(Literal(b[pos:end]), b[start:pos], b[end:after], pos, end)
    if after >= n:
        raise HuJSONError.at(b, n, "parsing object after name: unexpected EOF")
    if b[after] != _COLON:
        raise HuJSONError.at(b, after, f"invalid character {quote_char(b, after)} after object name")
    obj.members.append(ObjectMember(name, name))  # value filled in by the caller's loop
    start = after + 1
    return start, _extra(b, start)
