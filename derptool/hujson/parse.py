"""The HuJSON parser: bytes in, :class:`~derptool.hujson.ast.Value` out.

The grammar is Tailscale's (JWCC): RFC 8259 JSON, ``//`` and ``/* */`` comments wherever whitespace may
go, and one trailing comma inside objects and arrays. One regular expression reads a token together with
the whitespace and comments before it, so the Python loop runs once per token; nesting uses an explicit
stack (depth is limited by memory only). When the expression does not match, :func:`_diagnose` finds
the error Go's parser reports, with its message and byte offset.
"""

from __future__ import annotations

import gc
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from derptool.hujson.ast import Array, Literal, Object, ObjectMember, Value
from derptool.hujson.errors import HuJSONError
from derptool.hujson.gotext import go_text, quote_char

_EXTRA_RE = rb"(?:[ \t\r\n]++|//[^\n]*+\n|/\*(?s:.*?)\*/)*+"
_EXTRA = re.compile(_EXTRA_RE)
_COMMENT = re.compile(rb"//[^\n]*+\n|/\*(?s:.*?)\*/")
# Extra, then one token: 2 string, 3 other literal, 4 "{", 5 "[", 6 "}" or "]", 7 ",", 8 ":".
_TOKEN = re.compile(
    b"("
    + _EXTRA_RE
    + rb""")(?:
      ("(?:[^"\\\x00-\x1f]++|\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4}))*+")
     |((?:null|true|false|-?(?:0|[1-9][0-9]*+)(?:\.[0-9]++)?(?:[eE][-+]?[0-9]++)?)(?![-+.A-Za-z0-9]))
     |(\{)|(\[)|([}\]])|(,)|(:))""",
    re.X,
)
# The same tokens in one group each (extra, token), for the fast pass with findall.
_PAIR = re.compile(
    b"("
    + _EXTRA_RE
    + rb""")(
      "(?:[^"\\\x00-\x1f]++|\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4}))*+"
     |(?:null|true|false|-?(?:0|[1-9][0-9]*+)(?:\.[0-9]++)?(?:[eE][-+]?[0-9]++)?)(?![-+.A-Za-z0-9])
     |[{}\[\],:])""",
    re.X,
)
_STRING_SCAN = re.compile(rb'"(?:[^"\\]++|\\(?s:.))*+"')
_LITERAL_RUN = re.compile(rb"[-+.A-Za-z0-9]*+")
_SEPARATORS = ("\u2028".encode(), "\u2029".encode())

# parser states: what may come next
_VALUE, _FIRST_VALUE, _NEXT_VALUE = 0, 1, 2  # a value; a value or "]" (empty / trailing comma)
_NAME, _FIRST_NAME, _NEXT_NAME = 3, 4, 5  # a member name; or "}"
_COLON, _AFTER = 6, 7  # ":" after a name; "," or a closing bracket (or the end) after a value


def as_bytes(src: str | bytes | bytearray | memoryview) -> bytes:
    """*src* as bytes (``str`` is encoded as UTF-8)."""
    if isinstance(src, str):
        return src.encode("utf-8", "surrogatepass")
    return bytes(src)


def _line_separator(b: bytes, start: int, end: int) -> int:
    """Offset of the first U+2028/U+2029 in ``b[start:end]``, or -1."""
    hits = [i for i in (b.find(s, start, end) for s in _SEPARATORS) if i >= 0]
    return min(hits) if hits else -1


def check_extra(b: bytes, start: int, end: int) -> None:
    """Raise Go's error for the first bad comment in the (well-formed) extra ``b[start:end]``.

    Comments must be valid UTF-8 (error at the comment's start) and ``//`` comments must not hold a
    line separator U+2028/U+2029 (error at the separator).
    """
    for m in _COMMENT.finditer(b, start, end):
        text = m.group()
        if text.isascii():
            continue
        try:
            text.decode("utf-8")
        except UnicodeDecodeError:
            raise HuJSONError.at(b, m.start(), "invalid UTF-8 in comment") from None
        if text[1] == 0x2F:  # "//"
            i = _line_separator(b, m.start(), m.end())
            if i >= 0:
                raise HuJSONError.at(b, i, f"invalid character {quote_char(b, i)} in line comment")


def _skip_extra(b: bytes, pos: int) -> int:
    """End of the extra at *pos*; raises Go's error for a bad or unterminated comment."""
    end = _EXTRA.match(b, pos).end()  # type: ignore[union-attr]  # always matches (may be empty)
    if end != pos and not b.isascii():
        check_extra(b, pos, end)
    if b.startswith(b"/*", end):
        raise HuJSONError.at(b, end, "parsing comment: unexpected EOF")
    if b.startswith(b"//", end):  # no newline before the end of input
        i = _line_separator(b, end, len(b))
        if i >= 0:
            raise HuJSONError.at(b, i, f"invalid character {quote_char(b, i)} in line comment")
        raise HuJSONError.at(b, end, "parsing comment: unexpected EOF")
    return end


def _value_error(b: bytes, pos: int, close_ok: bytes = b"") -> HuJSONError | None:
    """The error for a value starting at *pos* (after its extra), or None if one starts there."""
    n = len(b)
    if pos >= n:
        return HuJSONError.at(b, n, "parsing value: unexpected EOF")
    c = b[pos : pos + 1]
    if c == b'"':
        m = _STRING_SCAN.match(b, pos)
        if m is None:
            return HuJSONError.at(b, n, "parsing string: unexpected EOF")
        if _TOKEN.match(b, pos) is None or _TOKEN.match(b, pos).lastindex != 2:  # type: ignore[union-attr]
            return HuJSONError.at(b, pos, f"invalid literal: {go_text(m.group())}")
        return None
    if c in (b"{", b"[") or (c and c in close_ok):
        return None
    run = _LITERAL_RUN.match(b, pos).group()  # type: ignore[union-attr]
    if not run:
        return HuJSONError.at(b, pos, f"invalid character {quote_char(b, pos)} at start of value")
    m = _TOKEN.match(b, pos)
    if m is None or m.lastindex != 3:
        return HuJSONError.at(b, pos, f"invalid literal: {go_text(run)}")
    return None


def _diagnose(b: bytes, pos: int, state: int, in_object: bool | None) -> HuJSONError:
    """Go's error for the input at *pos*, where the token regex found no valid token for *state*."""
    pos = _skip_extra(b, pos)
    n = len(b)
    if state in (_VALUE, _FIRST_VALUE, _NEXT_VALUE, _NAME, _FIRST_NAME, _NEXT_NAME):
        err = _value_error(b, pos)
        if err is not None:
            return err
        # a well-formed token that is not allowed here: a closing bracket of the wrong kind
        return HuJSONError.at(b, pos, f"invalid character {quote_char(b, pos)} at start of value")
    if state == _COLON:
        if pos >= n:
            return HuJSONError.at(b, n, "parsing object after name: unexpected EOF")
        return HuJSONError.at(b, pos, f"invalid character {quote_char(b, pos)} after object name")
    if in_object is None:
        return HuJSONError.at(b, pos, f"invalid character {quote_char(b, pos)} after top-level value")
    if pos >= n:
        what = "object" if in_object else "array"
        return HuJSONError.at(b, n, f"parsing {what} after value: unexpected EOF")
    if in_object:
        return HuJSONError.at(
            b, pos, f"invalid character {quote_char(b, pos)} after object value (expecting ',' or '}}')"
        )
    return HuJSONError.at(b, pos, f"invalid character {quote_char(b, pos)} after array value (expecting ',' or ']')")


def parse_tree(b: bytes) -> Value:
    """Parse *b* (bytes) eagerly into a tree; raises :class:`HuJSONError` as Go's ``Parse`` would."""
    with no_gc():
        v = _parse_valid(b)
        return v if v is not None else _parse_checked(b)


@contextmanager
def no_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector: trees have no cycles, and building one triggers many
    collections that cost more than the building (they scan every object made so far)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _parse_valid(b: bytes) -> Value | None:
    """The tree of *b* in one pass over ``findall``'s tokens, or ``None`` if *b* needs the careful parser.

    Only the plain grammar is handled here: any doubt (a gap between tokens, a token out of place,
    a name that is not a string, an unterminated value) returns ``None``.
    """
    ascii_doc = b.isascii()
    stack: list[Any] = []  # enclosing composites
    comp: Any = None
    members: Any = None  # comp.members or comp.elements
    is_obj = False
    node: Any = None
    name: Any = None
    state = _VALUE
    pos = 0
    new_value = Value
    new_literal = Literal
    new_member = ObjectMember
    # Equal extras and literals share one object (a policy repeats "\n\t\t" and its names often).
    extras: dict[bytes, bytes] = {}
    literals: dict[bytes, Literal] = {}
    last_end = 0
    for m in _PAIR.finditer(b):
        extra, tok = m.groups()
        last_end = m.end()
        if extra:
            extra = extras.setdefault(extra, extra)
        start = pos + len(extra)
        pos = start + len(tok)
        if extra and not ascii_doc and not extra.isascii() and not _plain_extra(extra):
            return None
        c = tok[0]
        if state == _AFTER:
            if c == 0x2C:  # ","
                if comp is None:
                    return None
                if extra:
                    node.after_extra = extra
                state = _NEXT_NAME if is_obj else _NEXT_VALUE
                continue
            if (c == 0x7D and is_obj) or (c == 0x5D and comp is not None and not is_obj):
                comp.after_extra = extra
            else:
                return None
        elif state == _COLON:
            if c != 0x3A:
                return None
            if extra:
                name.after_extra = extra
            state = _VALUE
            continue
        elif c == 0x22 or c not in _STRUCTURAL:  # a string or another literal
            if state >= _NAME:
                if c != 0x22:
                    return None
                lit = literals.get(tok)
                if lit is None:
                    lit = literals[tok] = new_literal(tok)
                name = new_value(lit, extra, None, start, pos)
                state = _COLON
                continue
            lit = literals.get(tok)
            if lit is None:
                lit = literals[tok] = new_literal(tok)
            node = new_value(lit, extra, None, start, pos)
            if comp is not None:
                members.append(new_member(name, node) if is_obj else node)
            state = _AFTER
            continue
        elif c == 0x7B or c == 0x5B:
            if state >= _NAME:
                return None
            if c == 0x7B:
                new_comp: Any = Object()
                new_members = new_comp.members
            else:
                new_comp = Array()
                new_members = new_comp.elements
            node = new_value(new_comp, extra, None, start, start)
            if comp is not None:
                members.append(new_member(name, node) if is_obj else node)
            stack.append((node, comp, members, is_obj))
            comp, members, is_obj = new_comp, new_members, c == 0x7B
            state = _FIRST_NAME if is_obj else _FIRST_VALUE
            continue
        elif (c == 0x7D and state in (_FIRST_NAME, _NEXT_NAME)) or (c == 0x5D and state in (_FIRST_VALUE, _NEXT_VALUE)):
            comp.after_extra = extra
            if state in (_NEXT_NAME, _NEXT_VALUE):  # trailing comma
                last = members[-1].value if is_obj else members[-1]
                if last.after_extra is None:
                    last.after_extra = b""
        else:
            return None
        # the composite closes
        node, comp, members, is_obj = stack.pop()
        node.end_offset = pos
        state = _AFTER
    if state != _AFTER or comp is not None or node is None or pos != last_end:
        return None  # incomplete, or the tokens did not cover the text (a byte no token matched)
    end = _EXTRA.match(b, pos).end()  # type: ignore[union-attr]
    if end != len(b):
        return None
    if end != pos:
        if not ascii_doc and not _plain_extra(b[pos:end]):
            return None
        node.after_extra = b[pos:end]
    return node  # type: ignore[no-any-return]


def _plain_extra(extra: bytes) -> bool:
    """A non-ASCII extra whose comments are surely fine: valid UTF-8 and no line separator anywhere."""
    try:
        extra.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return b"\xe2\x80\xa8" not in extra and b"\xe2\x80\xa9" not in extra


_STRUCTURAL = frozenset(b"{}[],:")


def _parse_checked(b: bytes) -> Value:
    """The careful parser: token by token with positions, and Go's error where the grammar breaks."""
    ascii_doc = b.isascii()
    # frames: (node, composite, offset of the composite if it stands where a member name belongs)
    stack: list[tuple[Value, Object | Array, int]] = []
    comp: Object | Array | None = None
    is_obj = False
    node: Value | None = None  # the value just completed, waiting for its after-extra
    name: Value | None = None  # the member name waiting for its value
    bad_name = -1  # offset of a non-string member name, reported after its after-extra (as Go does)
    state = _VALUE
    pos = 0
    for m in _TOKEN.finditer(b):
        if m.start() != pos:
            break
        kind = m.lastindex
        xs, xe = m.span(1)
        if xe != xs and not ascii_doc:
            check_extra(b, xs, xe)
        if state == _AFTER:
            assert node is not None
            if comp is None:
                break  # something after the top-level value
            if kind == 7:  # ","
                node.after_extra = b[xs:xe] if xe != xs else None
                state = _NEXT_NAME if is_obj else _NEXT_VALUE
                pos = m.end()
                continue
            if kind != 6 or (b[xe] == 0x7D) != is_obj:
                break
            comp.after_extra = b[xs:xe]
            node.after_extra = None
        elif state == _COLON:
            if bad_name >= 0:
                raise HuJSONError.at(
                    b, bad_name, f"invalid character {quote_char(b, bad_name)} at start of object name"
                )
            if kind != 8:
                break
            assert name is not None
            if xe != xs:
                name.after_extra = b[xs:xe]
            state = _VALUE
            pos = m.end()
            continue
        elif kind == 2 or kind == 3:
            v = Value(Literal(m.group(kind)), b[xs:xe], None, xe, m.end())
            pos = m.end()
            if state >= _NAME:
                name = v
                if kind == 3:
                    bad_name = xe
                state = _COLON
                continue
            if isinstance(comp, Object):
                comp.members.append(ObjectMember(name, v))  # type: ignore[arg-type]
            elif comp is not None:
                comp.elements.append(v)
            node = v
            state = _AFTER
            continue
        elif kind == 4 or kind == 5:
            new: Object | Array = Object() if kind == 4 else Array()
            v = Value(new, b[xs:xe], None, xe, xe)
            if state >= _NAME:
                stack.append((v, new, xe))  # a composite where a name belongs: parse it, then refuse it
            else:
                if isinstance(comp, Object):
                    comp.members.append(ObjectMember(name, v))  # type: ignore[arg-type]
                elif comp is not None:
                    comp.elements.append(v)
                stack.append((v, new, -1))
            comp = new
            is_obj = kind == 4
            state = _FIRST_NAME if is_obj else _FIRST_VALUE
            pos = m.end()
            continue
        elif kind == 6 and (b[xe] == 0x7D) == is_obj and state not in (_VALUE, _NAME):
            assert comp is not None
            comp.after_extra = b[xs:xe]
            if state in (_NEXT_NAME, _NEXT_VALUE):  # trailing comma
                last = comp.members[-1].value if is_obj else comp.elements[-1]  # type: ignore[union-attr]
                if last.after_extra is None:
                    last.after_extra = b""
        else:
            break
        # a composite closes
        pos = m.end()
        top = stack.pop()
        node = top[0]
        node.end_offset = pos
        if stack:
            comp = stack[-1][1]
            is_obj = type(comp) is Object
        else:
            comp = None
        if top[2] >= 0:
            bad_name = top[2]
            state = _COLON
        else:
            state = _AFTER
    # the end of the input, or something the grammar does not allow at pos
    if state == _AFTER and comp is None and node is not None:
        end = _EXTRA.match(b, pos).end()  # type: ignore[union-attr]
        if end == len(b):
            if end != pos:
                if not ascii_doc:
                    check_extra(b, pos, end)
                node.after_extra = b[pos:end]
            return node
    if state == _COLON and bad_name >= 0:
        _skip_extra(b, pos)
        raise HuJSONError.at(b, bad_name, f"invalid character {quote_char(b, bad_name)} at start of object name")
    raise _diagnose(b, pos, state, None if comp is None else is_obj)


def parse(src: str | bytes | bytearray | memoryview) -> Value:
    """Parse HuJSON text. ``parse(b).pack() == b`` for every *b* that parses.

    Raises :class:`~derptool.hujson.errors.HuJSONError` with Go's message and position.
    """
    return parse_tree(as_bytes(src))


def ws_len(b: bytes, i: int) -> int:
    """Length of the whitespace run at ``b[i:]``."""
    n = len(b)
    j = i
    while j < n and b[j] in b" \t\r\n":
        j += 1
    return j - i


def comment_len(b: bytes, i: int) -> int:
    """Length of the comment at ``b[i:]`` (newline of a ``//`` comment included); 0 if none, -1 if open."""
    if b.startswith(b"//", i):
        j = b.find(b"\n", i + 2)
        return -1 if j < 0 else j + 1 - i
    if b.startswith(b"/*", i):
        j = b.find(b"*/", i + 2)
        return -1 if j < 0 else j + 2 - i
    return 0
