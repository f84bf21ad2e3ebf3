"""``format``: lay out HuJSON the way Tailscale's Go ``hujson.Format`` does.

Passes, in Go's order: format the top-level extras, note whether the input was standard, normalize
(strings with escapes re-encoded, empty composites emptied, whitespace around colons and commas
dropped), decide per composite whether it is inline or expanded (author's newlines and the 80-byte
rule), lay out whitespace (tabs, one member per line when expanded), align object values. Every pass is
iterative, so nesting depth is limited by memory only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from derptool.hujson.ast import Array, Literal, Object, Value, decode_string
from derptool.hujson.parse import as_bytes, parse
from derptool.hujson.standard import is_standard_value

PUNCH_CARD_WIDTH = 80

_TOKENS = re.compile(rb"(?P<ws>[ \t\n]+)|(?P<line>//[^\n]*\n)|(?P<block>/\*.*?\*/)", re.S)
# Go unicode.IsSpace, as UTF-8 byte sequences
_GO_SPACE = "\t\n\v\f\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a" \
    "\u2028\u2029\u202f\u205f\u3000"


def _rstrip_go(b: bytes) -> bytes:
    """Trim trailing Go ``unicode.IsSpace`` characters (comments are valid UTF-8)."""
    return b.decode("utf-8").rstrip(_GO_SPACE).encode("utf-8")


@dataclass
class _Opts:
    first: bool = False  # before the first member: leading blank lines removed
    sep: bool = False  # before a later member of an inline composite: empty becomes one space
    after_colon: bool = False  # after the colon: at least one space
    around: bool = False  # around a colon or comma: leading and trailing blank lines removed
    closing: bool = False  # before the closing bracket: trailing blank lines removed, last line unindented
    empty: bool = False  # inside an empty composite: leading blank lines removed too
    force_newline: bool = False  # expanded composite: the extra must end in a newline
    line_start: bool = False  # the extra starts at the beginning of a line


def _tokens(extra: bytes) -> list[tuple[str, bytes | int]]:
    """Split a CR-normalized extra into ``("ws", newlines)`` and ``("c", comment)`` tokens."""
    out: list[tuple[str, bytes | int]] = []
    pending = 0  # newlines of the current whitespace run
    have_ws = False
    for m in _TOKENS.finditer(extra):
        kind = m.lastgroup
        text = m.group()
        if kind == "ws":
            pending += text.count(b"\n")
            have_ws = True
            continue
        if have_ws:
            out.append(("ws", pending))
            pending, have_ws = 0, False
        if kind == "line":
            out.append(("c", text[:-1]))
            pending, have_ws = 1, True  # the comment's newline starts the next run
        else:
            out.append(("c", text))
    if have_ws:
        out.append(("ws", pending))
    return out


def _block_comment(comment: bytes, depth: int) -> bytes:
    """Re-indent a multi-line block comment for *depth*."""
    lines = comment.split(b"\n")
    first, rest = lines[0], [_rstrip_go(x) for x in lines[1:]]
    closing = None
    if rest and rest[-1].strip(b" \t") == b"*/":
        closing = rest.pop()
    body = [x for x in rest if x]
    prefix = b""
    if body:
        prefix = body[0]
        for x in body[1:]:
            k = 0
            while k < len(prefix) and k < len(x) and prefix[k] == x[k]:
                k += 1
            prefix = prefix[:k]
    ws = prefix[: len(prefix) - len(prefix.lstrip(b" \t"))]
    star = prefix[len(ws):].startswith(b"*") and all(rest)
    indent = b"\t" * depth + (b" " if star else b"")
    out = [first]
    for x in rest:
        out.append(indent + x[len(ws):] if x else b"")
    if closing is not None:
        out.append(indent + b"*/")
    return b"\n".join(out)


def format_extra(extra: bytes, depth: int, opts: _Opts) -> bytes:
    """Format one extra (whitespace and comments) at *depth* with the options of its place."""
    if extra:
        extra = extra.replace(b"\r\n", b"\n").replace(b"\n\r", b"\n").replace(b"\r", b" ")
    toks = _tokens(extra) if extra else []
    toks = [(k, min(v, 2)) if isinstance(v, int) else (k, v) for k, v in toks]
    if toks and toks[0][0] == "ws" and (opts.first or opts.around or opts.empty) and toks[0][1] == 2:
        toks[0] = ("ws", 1)
    if toks and toks[-1][0] == "ws" and (opts.around or opts.closing) and toks[-1][1] == 2:
        toks[-1] = ("ws", 1)
    if opts.force_newline and not (toks and toks[-1][0] == "ws" and toks[-1][1]):
        if toks and toks[-1][0] == "ws":
            toks[-1] = ("ws", 1)
        else:
            toks.append(("ws", 1))
    out: list[bytes] = []
    at_start = opts.line_start
    for kind, val in toks:
        if kind == "ws":
            assert isinstance(val, int)
            if val:
                out.append(b"\n" * val)
                at_start = True
            continue
        assert isinstance(val, bytes)
        if at_start:
            out.append(b"\t" * depth)
        else:
            out.append(b" ")
        if b"\n" in val:
            out.append(_block_comment(val, depth))
        else:
            out.append(_rstrip_go(val))
        at_start = False
    res = b"".join(out)
    if res.endswith(b"\n"):
        res += b"\t" * (depth - 1 if opts.closing else depth)
    elif res:
        res += b" "
    elif opts.after_colon or opts.sep:
        res = b" "
    return res


def _items(t: Object | Array) -> list[Value]:
    """The values of a composite (object values, not names)."""
    return [m.value for m in t.members] if isinstance(t, Object) else t.elements


def _is_ws(b: bytes) -> bool:
    return not b.strip(b" \t\r\n")


def _preorder(v: Value) -> list[Value]:
    return list(v.all())


def _normalize(nodes: list[Value]) -> None:
    for node in nodes:
        t = node.value
        if isinstance(t, Literal):
            if t.raw[:1] == b'"' and b"\\" in t.raw:
                node.value = Literal.string(decode_string(t.raw))
            continue
        if isinstance(t, Object):
            for m in t.members:
                if _is_ws(m.name.after_extra):
                    m.name.after_extra = b""
        items = _items(t)
        if not items:
            if _is_ws(t.after_extra):
                t.after_extra = b""
            continue
        for item in items[:-1]:
            if _is_ws(item.after_extra):
                item.after_extra = b""
        last = items[-1]
        if _is_ws(last.after_extra):
            last.after_extra = b""
            t.trailing_comma = False


class _Estimate:
    """Line lengths of a composite's one-line rendering, as Go estimates them."""

    __slots__ = ("cur", "over")

    def __init__(self) -> None:
        self.cur = 0
        self.over = False

    def add(self, n: int) -> None:
        self.cur += n
        if self.cur > PUNCH_CARD_WIDTH:
            self.over = True

    def extra(self, extra: bytes) -> None:
        if not extra:
            return
        for kind, val in _tokens(extra.replace(b"\r\n", b"\n").replace(b"\n\r", b"\n").replace(b"\r", b" ")):
            if kind == "ws":
                if val:
                    self.cur = 0
            else:
                assert isinstance(val, bytes)
                if val.startswith(b"//"):
                    self.add(len(val) + 1)
                elif b"\n" in val:
                    # a multi-line block comment: its first line ends this line, its last starts the next
                    self.add(val.index(b"\n") + 1)
                    self.cur = 0
                    self.add(len(val[val.rindex(b"\n") + 1:].lstrip(b" \t")) + 1)
                else:
                    self.add(len(val) + 2)


def _line_too_long(v: Value, expanded: dict[int, bool]) -> bool:
    """Whether some line of the one-line rendering of composite *v* would exceed 80 bytes."""
    est = _Estimate()
    # work items: a Value to render inline, bytes of extra, or an int (fixed length)
    stack: list[Value | bytes | int] = [v]
    first = True
    while stack:
        item = stack.pop()
        if isinstance(item, int):
            est.add(item)
        elif isinstance(item, bytes):
            est.extra(item)
        else:
            t = item.value
            if isinstance(t, Literal):
                est.add(len(t.raw))
                continue
            if not first and expanded[id(item)]:
                est.add(1)
                est.cur = 0
                est.add(1)
                continue
            first = False
            est.add(1)
            seq: list[Value | bytes | int] = []
            if isinstance(t, Object):
                for m in t.members:
                    seq += [m.name.before_extra, m.name, m.name.after_extra, 2, m.value.before_extra,
                            m.value, m.value.after_extra, 2]
            else:
                for e in t.elements:
                    seq += [e.before_extra, e, e.after_extra, 2]
            seq += [t.after_extra, 1]
            stack.extend(reversed(seq))
        if est.over:
            return True
    return False


def _decide_expansion(nodes: list[Value]) -> dict[int, bool]:
    expanded: dict[int, bool] = {}
    for node in reversed(nodes):  # children before parents
        t = node.value
        if isinstance(t, Literal):
            continue
        items = _items(t)
        before = [m.name.before_extra for m in t.members] if isinstance(t, Object) else \
            [e.before_extra for e in t.elements]
        exp = any(b"\n" in x for x in before) or b"\n" in t.after_extra or \
            (t.trailing_comma and bool(items) and b"\n" in items[-1].after_extra)
        if not exp:
            exp = _line_too_long(node, expanded)
        expanded[id(node)] = exp
    return expanded


def _layout(root: Value, expanded: dict[int, bool], standard: bool) -> None:
    stack: list[tuple[Value, int]] = [(root, 0)]
    while stack:
        node, depth = stack.pop()
        t = node.value
        if isinstance(t, Literal):
            continue
        exp = expanded[id(node)]
        md = depth + 1 if exp else depth
        items = _items(t)
        n = len(items)
        if n:
            last = items[-1]
            if exp:
                if not t.trailing_comma and not standard:
                    t.trailing_comma = True
            elif t.trailing_comma and _is_ws(t.after_extra):
                t.after_extra = last.after_extra + t.after_extra
                last.after_extra = b""
                t.trailing_comma = False
        for i in range(n):
            if isinstance(t, Object):
                m = t.members[i]
                name: Value | None = m.name
                val = m.value
                m.name.before_extra = format_extra(
                    m.name.before_extra, md, _Opts(first=i == 0, sep=not exp and i > 0, force_newline=exp))
                m.name.after_extra = format_extra(m.name.after_extra, md + 1, _Opts(around=True))
                val.before_extra = format_extra(val.before_extra, md + 1, _Opts(after_colon=True))
                deeper = b"\n" in m.name.after_extra or b"\n" in val.before_extra
            else:
                name = None
                val = t.elements[i]
                val.before_extra = format_extra(
                    val.before_extra, md, _Opts(first=i == 0, sep=not exp and i > 0, force_newline=exp))
                deeper = False
            if val.after_extra:
                val.after_extra = format_extra(val.after_extra, md + 1, _Opts(around=True))
            del name
            if not isinstance(val.value, Literal):
                stack.append((val, md + 1 if deeper else md))
        t.after_extra = format_extra(
            t.after_extra, md, _Opts(closing=True, empty=n == 0, force_newline=exp))


def _newline_cache(nodes: list[Value]) -> dict[int, bool]:
    """For each composite: does anything inside it (not its own closing extra) hold a newline?"""
    cache: dict[int, bool] = {}

    def spans_lines(v: Value) -> bool:
        t = v.value
        return not isinstance(t, Literal) and (cache[id(v)] or b"\n" in t.after_extra)

    for node in reversed(nodes):
        t = node.value
        if isinstance(t, Literal):
            continue
        found = False
        if isinstance(t, Object):
            for m in t.members:
                if (b"\n" in m.name.before_extra or b"\n" in m.name.after_extra or b"\n" in m.value.before_extra
                        or b"\n" in m.value.after_extra or spans_lines(m.value)):
                    found = True
                    break
        else:
            for e in t.elements:
                if b"\n" in e.before_extra or b"\n" in e.after_extra or spans_lines(e):
                    found = True
                    break
        cache[id(node)] = found
    return cache


def _align(nodes: list[Value], expanded: dict[int, bool]) -> None:
    cache = _newline_cache(nodes)
    for node in nodes:
        t = node.value
        if not isinstance(t, Object) or not expanded.get(id(node), False):
            continue
        block: list[tuple[Value, int]] = []
        blocks: list[list[tuple[Value, int]]] = []
        for m in t.members:
            ok = b"\n" in m.name.before_extra and not (
                b"\n" in m.name.after_extra or b"\n" in m.value.before_extra or b"\n" in m.value.after_extra
                or cache.get(id(m.value), False))
            if not ok:
                if block:
                    blocks.append(block)
                block = []
                continue
            if m.name.before_extra.count(b"\n") > 1 and block:
                blocks.append(block)
                block = []
            assert isinstance(m.name.value, Literal)
            width = len(m.name.value.raw) + len(m.name.after_extra) + 1 + len(m.value.before_extra)
            block.append((m.value, width))
        if block:
            blocks.append(block)
        for blk in blocks:
            widest = max(w for _, w in blk)
            for val, w in blk:
                if w < widest:
                    val.before_extra = b" " * (widest - w) + val.before_extra


def format_value(v: Value) -> None:
    """Format the tree in place (see :func:`format`)."""
    standard = is_standard_value(v)
    v.before_extra = format_extra(v.before_extra, 0, _Opts(first=True, line_start=True)).lstrip(b" \t\n")
    v.after_extra = _rstrip_go(format_extra(v.after_extra, 0, _Opts())) + b"\n"
    nodes = _preorder(v)
    _normalize(nodes)
    expanded = _decide_expansion(nodes)
    _layout(v, expanded, standard)
    _align(nodes, expanded)
    v.update_offsets()


def format(src: str | bytes) -> bytes:
    """Format HuJSON as Go's ``hujson.Format`` does; raises :class:`HuJSONError` for invalid text."""
    v = parse(as_bytes(src))
    format_value(v)
    return v.pack()
