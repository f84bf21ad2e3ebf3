"""The whitespace and comments between tokens (an "extra") laid out as Go's ``Extra.format`` does.

Shared by the tree formatter (:mod:`derptool.hujson.format`) and the line formatter
(:mod:`derptool.hujson.lineformat`). Extras repeat a lot in real files (``"\\n\\t\\t"`` before most
members), so :func:`format_extra` caches its results by the extra's bytes, depth and options; the formatters
call :func:`clear_cache` when a document is done.
"""

from __future__ import annotations

import re

from derptool.hujson.gotext import rstrip_space
from derptool.hujson.parse import ws_len

PUNCH_CARD_WIDTH = 80

_PIECES = re.compile(rb"([ \t\n]+)|(//[^\n]*)|/\*(?s:.*?)\*/")
"""The pieces of an extra: a whitespace run, a line comment (without its newline), a block comment."""

ONE_COMMENT = re.compile(rb"([ \t\n]*+)(//[^\n]*+|/\*(?:[^*\n]|\*(?!/))*+\*/)([ \t\n]*+)")
"""An extra that is one single-line comment with whitespace around it (most extras that hold a comment)."""

# option bits of Go's formatOptions
LEAD_NL, TRAIL_NL, RM_LEAD, RM_TRAIL, UNINDENT, SPACE_IF_EMPTY = 1, 2, 4, 8, 16, 32


def _block_comment(comment: bytes, depth: int, out: bytearray) -> None:
    """Append a multi-line block comment re-indented for *depth* (Go's rules, quirks included)."""
    lines = [rstrip_space(x) for x in comment.split(b"\n")]
    first = b""
    for x in lines[1:]:
        if x:
            first = x
            break
    has_empty = not all(lines)
    prefix = first
    for i in range(1, len(lines)):
        line = lines[i]
        if not line:
            continue
        if line.endswith(b"*/") and ws_len(line, 0) + 2 == len(line):
            lines[i] = prefix[: ws_len(prefix, 0)] + b"*/"
            break
        k = 0
        limit = min(len(line), len(prefix))
        while k < limit:
            if line[k] != prefix[k]:
                prefix = prefix[:k]
                break
            k += 1
    plen = ws_len(prefix, 0)
    star = not has_empty and len(prefix) > plen and prefix[plen] == 0x2A
    indent = b"\t" * depth + (b" " if star else b"")
    out += lines[0]
    out += b"\n"
    for line in lines[1:]:
        if line:
            out += indent
            out += line[plen:]
        out += b"\n"
    while out.endswith(b"\n"):
        del out[-1]


def format_extra_uncached(b: bytes, depth: int, opts: int) -> bytes:
    """Go's ``Extra.format``: normalized whitespace and re-indented comments for one extra."""
    if b"\r" in b:
        b = b.replace(b"\r\n", b"\n").replace(b"\n\r", b"\n").replace(b"\r", b" ")
    one = ONE_COMMENT.fullmatch(b)
    if one is not None and (one.group(2)[1] == 0x2A or b"\n" in one.group(3)):
        return _one_comment(one.group(1), one.group(2), one.group(3), depth, opts)
    out = bytearray()
    if opts & LEAD_NL and b"\n" not in b:
        out += b"\n"
    i, n = 0, len(b)
    for m in _PIECES.finditer(b):
        if m.start() != i:
            return b  # not a valid extra: left as is (Go does the same)
        i = m.end()
        ws = m.group(1)
        if ws is not None:
            out += b"\n" * min(ws.count(b"\n"), 2)
            continue
        if out.endswith(b"\n"):
            out += b"\t" * depth
        else:
            out += b" "
        comment = m.group()
        if m.group(2) is not None:  # a line comment: its newline starts the next whitespace run
            if i == n:
                return b  # no newline after it
            out += rstrip_space(comment)
        elif b"\n" not in comment:
            out += rstrip_space(comment)
        else:
            _block_comment(comment, depth, out)
    if i != n:
        return b
    if opts & TRAIL_NL and not out.endswith(b"\n"):
        out += b"\n"
    if opts & RM_LEAD:
        while out.startswith(b"\n\n"):
            del out[0]
    if opts & RM_TRAIL:
        while out.endswith(b"\n\n"):
            del out[-1]
    if out.endswith(b"\n"):
        out += b"\t" * (depth - 1 if opts & UNINDENT else depth)
    elif out:
        out += b" "
    if opts & SPACE_IF_EMPTY and not out:
        out += b" "
    return bytes(out)


def _one_comment(before: bytes, comment: bytes, after: bytes, depth: int, opts: int) -> bytes:
    """:func:`format_extra_uncached` of an extra that is one single-line comment with whitespace around."""
    start, end = one_comment_ends(min(before.count(b"\n"), 2), min(after.count(b"\n"), 2), depth, opts)
    return start + rstrip_space(comment) + end


def one_comment_ends(head: int, tail: int, depth: int, opts: int) -> tuple[bytes, bytes]:
    """What Go writes before and after the only comment of an extra, given the line breaks before and
    after it (*head*, *tail*: 0, 1 or 2 for more)."""
    if not head and not tail and opts & LEAD_NL:
        head = 1
    if opts & TRAIL_NL and not tail:
        tail = 1
    if opts & RM_LEAD and head > 1:
        head = 1
    if opts & RM_TRAIL and tail > 1:
        tail = 1
    start = b"\n" * head + b"\t" * depth if head else b" "
    end = b"\n" * tail + b"\t" * (depth - 1 if opts & UNINDENT else depth) if tail else b" "
    return start, end


_CACHE: dict[tuple[bytes, int, int], bytes] = {}
_CACHE_LIMIT = 1 << 16


def format_extra(b: bytes, depth: int, opts: int) -> bytes:
    """:func:`format_extra_uncached`, cached (extras repeat: ``"\\n\\t\\t"`` before most members)."""
    key = (b, depth, opts)
    r = _CACHE.get(key)
    if r is None:
        r = format_extra_uncached(b, depth, opts)
        if len(_CACHE) >= _CACHE_LIMIT:
            _CACHE.clear()
        _CACHE[key] = r
    return r


def clear_cache() -> None:
    """Forget the cached extras (they belong to the document just formatted)."""
    _CACHE.clear()


def format_after(b: bytes | None, depth: int, opts: int) -> bytes | None:
    """Format a nullable after-extra; nil stays nil when the result is empty (as in Go)."""
    if b is None:
        r = format_extra(b"", depth, opts)
        return r if r else None
    return format_extra(b, depth, opts)
