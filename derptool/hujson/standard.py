"""Standardize (comments and trailing commas become spaces, positions kept) and minimize.

The byte functions take a fast path first: comments and trailing commas are found by pattern and blanked,
and the stdlib JSON decoder checks the result. Whatever that path does not accept goes through the full
parser, which either gives the same answer or the exact Go error.
"""

from __future__ import annotations

import gc
import json
import re
from collections.abc import Iterator
from itertools import compress, repeat
from typing import Any

from derptool.hujson.ast import Literal, Value
from derptool.hujson.errors import GiveUp
from derptool.hujson.parse import as_bytes, no_gc, parse_tree

# A comment, matched whole (a match inside a string is sorted out by the caller).
_COMMENT = re.compile(rb"//[^\n]*+\n|/\*(?s:.*?)\*/")
# A trailing comma right after a value, the bracket on a later line (only blanks or blanked comments
# between): never inside a string (strings cannot hold a raw newline; one that does is refused by the
# JSON decoder).
_TRAILING_EOL = re.compile(rb",(?=[ \t\r]*+\n[ \t\r\n]*+[\]}])(?<=[^\[{,:\s],)")  # lookahead first: fails sooner
_COMMENT_SPLIT = re.compile(b"(" + _COMMENT.pattern + b")")
# The same, for a split that keeps only the code between comments (the shared "/" up front gives the
# engine a literal prefix to search for: without one it tries every position, 8x slower)
_COMMENT_GAP = re.compile(rb"/(?:/[^\n]*+\n|\*(?s:.*?)\*/)")
# Any other trailing comma (after comments were blanked); handled one by one.
_TRAILING = re.compile(rb",(?=[ \t\r\n]*+[\]}])")
# Text outside strings, and whole strings: stops at the opening quote of a string not closed before endpos.
_OUTSIDE = re.compile(rb'(?:[^"]++|"(?:[^"\\]++|\\(?s:.))*+")*+')
_STRING = re.compile(rb'"(?:[^"\\]++|\\(?s:.))*+"')
_BLANK = bytes(b if b in b" \t\r\n" else 0x20 for b in range(256))
_STAR = 0x2A
_WS = frozenset(b" \t\r\n")
_WSB = b" \t\r\n"
_NO_VALUE_BEFORE = frozenset(b"[{,:")


def _string_end(b: bytes | bytearray, safe: int, s: int) -> int:
    """If *s* is inside a string (scanning from *safe*, outside strings), the end of that string; else -1.

    Raises :class:`GiveUp` when the string does not end.
    """
    if b.find(b"\\", safe, s) < 0:
        if not b.count(b'"', safe, s) & 1:
            return -1
        q = b.rfind(b'"', safe, s)
    else:
        o = _OUTSIDE.match(b, safe, s)
        assert o is not None
        q = o.end()
        if q == s:
            return -1
    st = _STRING.match(b, q)
    if st is None:
        raise GiveUp("unterminated string")
    return st.end()


def _blank_comments(b: bytes) -> bytes:
    """*b* with every comment blanked (newlines kept), assuming strings close on their own line."""
    if b.find(b"//") < 0 and b.find(b"/*") < 0:
        return b
    # Split at everything that looks like a comment. A "//" match inside a string blanks that string's
    # closing quote and leaves it open at a raw newline, which the decoder refuses: only "/*" matches
    # need a check. The code before one must hold whole strings: an even number of quotes and no
    # backslash settles it; otherwise an exact scan does. If that fails, the exact scan of the whole
    # input decides.
    parts = _COMMENT_SPLIT.split(b)
    comments = parts[1::2]
    # the code before each "/*" match, checked with C-level loops first (policies hold thousands)
    before = list(compress(parts[0::2], map(bytes.startswith, comments, repeat(b"/*"))))
    doubtful: list[bytes] = []
    if b"\\" in b"".join(before) or any(map((1).__and__, map(bytes.count, before, repeat(b'"')))):
        doubtful = [p for p in before if p.count(b'"') & 1 or b"\\" in p]
    if all(_OUTSIDE.fullmatch(p) for p in doubtful):
        parts[1::2] = map(bytes.translate, comments, repeat(_BLANK))
        return b"".join(parts)
    return _blank_comments_exactly(b)


def _blank_comments_exactly(b: bytes) -> bytes:
    """:func:`_blank_comments` by a scan that steps over strings: slower (Python work per comment), but
    right where a string holds "//" or "/*" (a URL, a path). Raises :class:`GiveUp` for a string that
    does not end."""
    out: list[bytes] = []
    pos = safe = 0
    search = _COMMENT.search
    m = search(b, 0)
    while m is not None:
        s, e = m.span()
        end = _string_end(b, safe, s)
        if end >= 0:
            safe = end
            m = search(b, end)
            continue
        out.append(b[pos:s])
        out.append(m[0].translate(_BLANK))
        pos = safe = e
        m = search(b, e)
    out.append(b[pos:])
    return b"".join(out)


def _drop_comments(b: bytes) -> bytes:
    """*b* with every comment replaced by one newline (offsets are lost); cheaper than blanking.

    No check for comments inside strings is needed: a match that starts inside a string puts a raw
    newline into that string, which the strict JSON decoder refuses, so the parser decides.
    """
    if b.find(b"//") < 0 and b.find(b"/*") < 0:
        return b
    return b"\n".join(_COMMENT_GAP.split(b))


def blank_other_trailing(b: bytes) -> bytes | None:
    """Blank the trailing commas ``_TRAILING_EOL`` leaves (``[1, 2,]``, ``1 ,\n]``), one by one."""
    m = _TRAILING.search(b)
    if m is None:
        return None
    buf = bytearray(b)
    safe = 0
    while m is not None:
        s = m.start()
        end = _string_end(buf, safe, s)
        if end >= 0:
            safe = end
            m = _TRAILING.search(buf, end)
            continue
        k = s - 1
        while k >= 0 and buf[k] in _WS:
            k -= 1
        if k < 0 or buf[k] in _NO_VALUE_BEFORE:
            return None  # "[,]" or "[1,,]": blanking would make them valid
        buf[s] = 0x20
        safe = s + 1
        m = _TRAILING.search(buf, s + 1)
    return bytes(buf)


def fast_standardize(b: bytes, *, thorough: bool = True, positions: bool = True) -> bytes | None:
    """Blank comments and trailing commas, assuming valid input; ``None`` when the parser must decide.

    Comments are found by pattern; whether a match sits inside a string is told by quote counts
    (exact scans where escaped quotes are around). Trailing commas before a line break go in one
    substitution; the others (same line, or after a space) only with *thorough*. The result is only
    trustworthy once a strict JSON decoder accepted it: a string holding a raw newline, the one way to
    confuse the quote count, is always rejected there. Comments are not checked for UTF-8 here: the
    caller decodes the whole input strictly. A comma left in place only makes the decoder refuse.
    Without *positions*, each comment becomes one newline, which is cheaper.
    """
    try:
        b = _blank_comments(b) if positions else _drop_comments(b)
        if b.find(b",") < 0:
            return b
        b = _TRAILING_EOL.sub(b" ", b)
        if not thorough:
            return b
        return blank_other_trailing(b) or b
    except GiveUp:
        return None


def _reject_constant_hook(name: str) -> Any:
    raise GiveUp(name)


# Reused decoders (``json.loads`` with options builds one per call): strict, no NaN/Infinity.
_DECODER = json.JSONDecoder(parse_constant=_reject_constant_hook)
VALIDATOR = json.JSONDecoder(parse_constant=_reject_constant_hook, object_pairs_hook=len)


def _decode(std: bytes, decoder: json.JSONDecoder) -> tuple[bool, Any]:
    enabled = gc.isenabled()
    gc.disable()  # the decoder makes no cycles; collections during it only cost time
    try:
        return True, decoder.decode(std.decode("utf-8"))
    except (ValueError, GiveUp, RecursionError):
        return False, None
    finally:
        if enabled:
            gc.enable()


def checked_standardize(b: bytes, positions: bool) -> bytes | None:
    """:func:`fast_standardize` (trailing commas before a line break only) after the checks the fast
    path needs on non-ASCII text; ``None`` when the parser must decide. Valid only once decoded."""
    if not b.isascii():
        try:
            b.decode("utf-8")  # comments must be UTF-8; invalid bytes in strings go to the parser
        except UnicodeDecodeError:
            return None
        if b"\xe2\x80\xa8" in b or b"\xe2\x80\xa9" in b:
            return None  # a line separator might sit in a // comment: the parser decides
    return fast_standardize(b, thorough=False, positions=positions)


def fast_loads(b: bytes, *, validate_only: bool = False, positions: bool = False) -> tuple[bytes, Any] | None:
    """``(standardized, data)`` by the fast path, or ``None`` if the full parser must decide.

    With *validate_only*, ``data`` is not the real data (objects decode as their size), which is
    cheaper when only validity matters. The standardized text keeps every offset only with *positions*
    (otherwise each comment in it is one newline).
    """
    std = checked_standardize(b, positions)
    if std is None:
        return None
    decoder = VALIDATOR if validate_only else _DECODER
    for candidate in standardized_candidates(b, std):
        ok, data = _decode(candidate, decoder)
        if ok:
            return candidate, data
    return None


def standardized_candidates(b: bytes, std: bytes) -> Iterator[bytes]:
    """*std* (from :func:`checked_standardize`), then what to try when the decoder refuses it: same-line
    trailing commas blanked, then the string-aware pass (a "//" inside a string, a URL say, made the
    pattern pass cut that string), with the same for its trailing commas. A text every candidate fails
    for goes to the parser, which tells why."""
    yield std
    more = _other_trailing_or_none(std)  # same-line trailing commas, or a genuinely invalid input
    if more is not None:
        yield more
    if b.find(b"//") < 0 and b.find(b"/*") < 0:
        return
    try:
        exact = _TRAILING_EOL.sub(b" ", _blank_comments_exactly(b))
    except GiveUp:
        return
    yield exact
    more = _other_trailing_or_none(exact)
    if more is not None:
        yield more


def _other_trailing_or_none(b: bytes) -> bytes | None:
    try:
        return blank_other_trailing(b)
    except GiveUp:
        return None


def standardize(src: str | bytes) -> bytes:
    """Comments and trailing commas become spaces; every value keeps its byte offset, line and column."""
    b = as_bytes(src)
    fast = fast_loads(b, validate_only=True, positions=True)
    if fast is not None:
        return fast[0]
    v = parse_tree(b)
    standardize_value(v)
    return v.pack()


_STRINGS_SPLIT = re.compile(rb'("(?:[^"\\]++|\\(?s:.))*+")')


def minimize(src: str | bytes) -> bytes:
    """Plain JSON with no whitespace, comments or trailing commas; literals are kept as written."""
    b = as_bytes(src)
    fast = fast_loads(b, validate_only=True)
    if fast is not None:
        # valid: the standardized text minus the whitespace outside strings (odd parts are strings)
        parts = _STRINGS_SPLIT.split(fast[0])
        parts[0::2] = [p.translate(None, b" \t\r\n") for p in parts[0::2]]
        return b"".join(parts)
    v = parse_tree(b)
    with no_gc():
        minimize_value(v)
        return v.pack()


def is_standard(src: str | bytes) -> bool:
    """True if *src* is valid HuJSON that is also plain JSON (no comments, no trailing commas)."""
    return is_standard_value(parse_tree(as_bytes(src)))


def standardize_value(v: Value) -> None:
    """Standardize the tree in place (see :func:`standardize`)."""
    for node in v.all():
        node.before_extra = node.before_extra.translate(_BLANK)
        if node.after_extra:
            node.after_extra = node.after_extra.translate(_BLANK)
        t = node.value
        if type(t) is not Literal:
            items = t.items()  # type: ignore[union-attr]
            if items and items[-1].after_extra is not None:  # the trailing comma becomes a space
                last = items[-1]
                t.after_extra = (last.after_extra or b"").translate(_BLANK) + b" " + t.after_extra  # type: ignore[union-attr]
                last.after_extra = None
            t.after_extra = t.after_extra.translate(_BLANK)  # type: ignore[union-attr]
    v.update_offsets()


def minimize_value(v: Value) -> None:
    """Minimize the tree in place (see :func:`minimize`)."""
    for node in v.all():
        node.before_extra = b""
        node.after_extra = None
        t = node.value
        if type(t) is not Literal:
            t.after_extra = b""  # type: ignore[union-attr]
    v.update_offsets()


def is_standard_value(v: Value) -> bool:
    """True when every extra in the tree is whitespace only and there is no trailing comma."""
    for node in v.all():
        if node.before_extra.strip(_WSB) or (node.after_extra and node.after_extra.strip(_WSB)):
            return False
        t = node.value
        if not isinstance(t, Literal) and (t.trailing_comma or t.after_extra.strip(_WSB)):
            return False
    return True
