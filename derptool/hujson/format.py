"""``format``: lay out HuJSON exactly as Tailscale's Go ``hujson.Format`` does.

Passes, in Go's order: format the top-level extras, note whether the input was standard, normalize
(strings with escapes re-encoded, whitespace-only extras around colons and commas dropped), decide per
composite whether it is inline or expanded (author's newlines and the 80-byte estimate), lay out
whitespace (tabs, one member per line when expanded, trailing commas), align object values. Every pass
is iterative, so nesting depth is limited by memory only. One extra is formatted by
:mod:`derptool.hujson.extra` (cached: extras repeat a lot in real files).

:func:`format` first tries :mod:`derptool.hujson.lineformat`, which gives the same bytes without building
a tree for documents written one member per line (policies are), about six times faster.
"""

from __future__ import annotations

from derptool.hujson.ast import Array, Literal, Object, Value
from derptool.hujson.extra import (
    LEAD_NL,
    PUNCH_CARD_WIDTH,
    RM_LEAD,
    RM_TRAIL,
    SPACE_IF_EMPTY,
    TRAIL_NL,
    UNINDENT,
    clear_cache,
    format_after,
    format_extra,
    format_extra_uncached,
)
from derptool.hujson.gotext import decode_string, encode_string, rstrip_space
from derptool.hujson.lineformat import format_lines
from derptool.hujson.parse import as_bytes, comment_len, no_gc, parse_tree, ws_len
from derptool.hujson.standard import fast_loads

_WS = b" \t\r\n"
_STATS_LIMIT = 1 << 16

# --- line statistics (Go's lineStats) --------------------------------------------------------------------


def _comment_width(b: bytes) -> int:
    """Go's estimate of the width of the comments on one line of an extra."""
    n = 0
    i, size = 0, len(b)
    while True:
        i += ws_len(b, i)
        if b.startswith(b"//", i):
            return n + 1 + size - i
        if b.startswith(b"/*", i):
            nc = comment_len(b, i)
            if nc <= 0:
                return n + 1 + size - i
            n += 1 + nc
            i += nc
            continue
        if n > 0:
            n += 1
        return n


_STATS: dict[bytes, tuple[int, int, bool]] = {}


def _extra_stats(b: bytes | None) -> tuple[int, int, bool]:
    """``(first line width, last line width, spans lines)`` of an extra."""
    if not b:
        return (0, 0, False)
    r = _STATS.get(b)
    if r is None:
        if b"\n" not in b:
            w = _comment_width(b)
            r = (w, w, False)
        else:
            r = (_comment_width(b[: b.index(b"\n")]), _comment_width(b[b.rindex(b"\n") + 1 :]), True)
        if len(_STATS) >= _STATS_LIMIT:
            _STATS.clear()
        _STATS[b] = r
    return r


# --- the passes ------------------------------------------------------------------------------------------


def _normalize(nodes: list[Value]) -> None:
    for node in nodes:
        t = node.value
        if type(t) is Literal:
            raw = t.raw
            if raw[:1] == b'"' and b"\\" in raw:
                node.value = Literal(encode_string(decode_string(raw)))
            continue
        if type(t) is Object:
            if not t.members:
                if not t.after_extra.strip(_WS):
                    t.after_extra = b""
                continue
            for m in t.members:
                a = m.name.after_extra
                if a is not None and not a.strip(_WS):
                    m.name.after_extra = None
                a = m.value.after_extra
                if a is not None and not a.strip(_WS):
                    m.value.after_extra = None
        else:
            assert isinstance(t, Array)
            if not t.elements:
                if not t.after_extra.strip(_WS):
                    t.after_extra = b""
                continue
            for e in t.elements:
                a = e.after_extra
                if a is not None and not a.strip(_WS):
                    e.after_extra = None


def _add(line: int, s: tuple[int, int, bool], lines: list[int]) -> int:
    """Go's lineStats step: add a piece of width statistics *s* to the current *line*; return the new one."""
    if s[2]:  # the piece spans lines: the current line ends with its first
        lines.append(line + s[0])
        return s[1]
    return line + s[0]


def _expand(nodes: list[Value]) -> set[int]:
    """ids of the composites Go expands (one member per line); children are decided before parents."""
    expanded: set[int] = set()
    stats: dict[int, tuple[int, int, bool]] = {}
    extra_stats = _extra_stats
    for node in reversed(nodes):
        t = node.value
        if isinstance(t, Literal):
            continue
        expand = False
        line = 1
        lines: list[int] = []
        x: bytes | None
        pairs: list[tuple[Value | None, Value]] = (
            [(m.name, m.value) for m in t.members] if isinstance(t, Object) else [(None, e) for e in t.elements]
        )
        for nm, val in pairs:
            if nm is not None:
                x = nm.before_extra
                if b"\n" in x:
                    expand = True
                if b"\n" in x or b"/" in x:
                    line = _add(line, extra_stats(x), lines)
                line += len(nm.value.raw)  # type: ignore[union-attr]
                x = nm.after_extra
                if x and (b"\n" in x or b"/" in x):
                    line = _add(line, extra_stats(x), lines)
                line += 2
            x = val.before_extra
            if nm is None and b"\n" in x:
                expand = True
            if b"\n" in x or b"/" in x:
                line = _add(line, extra_stats(x), lines)
            iv = val.value
            if type(iv) is Literal:
                line += len(iv.raw)
            else:  # each composite's statistics are read once, by its parent
                line = _add(line, stats.pop(id(val)), lines)
            x = val.after_extra
            if x and (b"\n" in x or b"/" in x):
                line = _add(line, extra_stats(x), lines)
            line += 2
        line += 1
        if pairs:
            x = pairs[-1][1].after_extra
            if x and b"\n" in x:
                expand = True
        if b"\n" in t.after_extra:
            expand = True
        lines.append(line)
        if not expand:
            for width in lines:
                if width > PUNCH_CARD_WIDTH:
                    expand = True
                    break
        if expand:
            if pairs:
                first = pairs[0][0].before_extra if pairs[0][0] is not None else pairs[0][1].before_extra
            else:
                first = t.after_extra
            stats[id(node)] = (1 + extra_stats(first)[0], 1, True)
            expanded.add(id(t))
        else:
            stats[id(node)] = (lines[0], lines[-1], len(lines) > 1)
    return expanded


def _layout(root: Value, expanded: set[int], standard: bool, depth: int = 0) -> None:
    stack: list[tuple[Value, int]] = [(root, depth)]
    fx = format_extra
    while stack:
        node, depth = stack.pop()
        t = node.value
        if type(t) is Literal:
            continue
        expand = id(t) in expanded
        lead = LEAD_NL if expand else 0
        d1, d2 = depth + 1, depth + 2
        child = depth + 1 if expand else depth
        if type(t) is Object:
            for i, m in enumerate(t.members):
                nm, val = m.name, m.value
                nm.before_extra = fx(nm.before_extra, d1, lead | (RM_LEAD if i == 0 else SPACE_IF_EMPTY))
                if nm.after_extra is not None:
                    nm.after_extra = format_after(nm.after_extra, d2, RM_LEAD | RM_TRAIL)
                val.before_extra = fx(val.before_extra, d2, RM_LEAD | RM_TRAIL | SPACE_IF_EMPTY)
                if type(val.value) is not Literal:
                    deeper = (nm.after_extra is not None and b"\n" in nm.after_extra) or b"\n" in val.before_extra
                    stack.append((val, child + 1 if deeper else child))
                if val.after_extra is not None:
                    val.after_extra = format_after(val.after_extra, d2, RM_LEAD | RM_TRAIL)
            last = t.members[-1].value if t.members else None
            n = len(t.members)
        else:
            assert isinstance(t, Array)
            for i, e in enumerate(t.elements):
                e.before_extra = fx(e.before_extra, d1, lead | (RM_LEAD if i == 0 else SPACE_IF_EMPTY))
                if type(e.value) is not Literal:
                    stack.append((e, child))
                if e.after_extra is not None:
                    e.after_extra = format_after(e.after_extra, d2, RM_LEAD | RM_TRAIL)
            last = t.elements[-1] if t.elements else None
            n = len(t.elements)
        t.after_extra = fx(
            t.after_extra, d1, (TRAIL_NL if expand else 0) | (RM_LEAD if n == 0 else 0) | RM_TRAIL | UNINDENT
        )
        surrounded = last is not None and bool(last.after_extra) and bool(t.after_extra)
        if not expand and not surrounded:
            t.trailing_comma = False
        elif expand and not standard:
            t.trailing_comma = True


def _has_inner_newline(nodes: list[Value]) -> set[int]:
    """ids of the composites in which an extra of some value (names included) holds a newline.

    The composites' own before-bracket extras do not count (Go's ``hasNewline(false)``).
    """
    found: set[int] = set()
    for node in reversed(nodes):
        t = node.value
        if type(t) is Literal:
            continue
        for v in (x for m in t.members for x in (m.name, m.value)) if type(t) is Object else t.elements:  # type: ignore[union-attr]
            if (
                b"\n" in v.before_extra
                or (v.after_extra is not None and b"\n" in v.after_extra)
                or (type(v.value) is not Literal and id(v) in found)
            ):
                found.add(id(node))
                break
    return found


def _align(nodes: list[Value]) -> set[int]:
    """Align the values of object members in blocks; returns the ids of composites with an inner newline."""
    inner = _has_inner_newline(nodes)
    for node in nodes:
        t = node.value
        if type(t) is not Object:
            continue
        rows: list[tuple[Value, int]] = []
        blocks: list[list[tuple[Value, int]]] = []
        for m in t.members:
            nm, val = m.name, m.value
            if (
                b"\n" not in nm.before_extra
                or (nm.after_extra is not None and b"\n" in nm.after_extra)
                or b"\n" in val.before_extra
                or (type(val.value) is not Literal and id(val) in inner)
                or (val.after_extra is not None and b"\n" in val.after_extra)
            ):
                if rows:
                    blocks.append(rows)
                    rows = []
                continue
            if nm.before_extra.count(b"\n") > 1 and rows:
                blocks.append(rows)
                rows = []
            width = len(nm.value.raw) + len(nm.after_extra or b"") + 1 + len(val.before_extra)  # type: ignore[union-attr]
            rows.append((val, width))
        if rows:
            blocks.append(rows)
        for blk in blocks:
            widest = max(w for _, w in blk)
            for val, w in blk:
                if w < widest:
                    val.before_extra += b" " * (widest - w)
    return inner


def format_value(v: Value) -> None:
    """Format the tree in place (see :func:`format`)."""
    with no_gc():
        _format_tree(v)
        v.update_offsets()


def _format_tree(v: Value) -> None:
    try:
        _format_passes(v)
    finally:  # the caches help within one document; do not keep its extras alive afterwards
        clear_cache()
        _STATS.clear()


def _format_passes(v: Value) -> None:
    before = format_extra_uncached(v.before_extra, 0, 0)
    v.before_extra = before[ws_len(before, 0) :]
    nodes = list(v.all())
    standard = _is_standard(nodes)
    _normalize(nodes)
    expanded = _expand(nodes)
    _layout(v, expanded, standard)
    _align(nodes)
    after = format_extra_uncached(v.after_extra or b"", 0, 0)
    v.after_extra = rstrip_space(after) + b"\n"


def _format_inner(v: Value, depth: int, standard: bool) -> tuple[bool, bool]:
    """Lay out the composite *v* as a value at *depth* of a document (standard or not), leaving its own
    extras alone; for the line formatter. Returns whether *v* alone is standard and whether a value
    inside it has a newline around it."""
    nodes = list(v.all())
    alone = _is_standard(nodes)
    _normalize(nodes)
    _layout(v, _expand(nodes), standard, depth)
    inner = _align(nodes)
    return alone, id(v) in inner


def _is_standard(nodes: list[Value]) -> bool:
    """Go's ``IsStandard`` over the values of a tree (see :func:`is_standard_value`)."""
    for node in nodes:
        x = node.before_extra
        if x and x.strip(_WS):
            return False
        y = node.after_extra
        if y and y.strip(_WS):
            return False
        t = node.value
        if not isinstance(t, Literal) and (t.trailing_comma or t.after_extra.strip(_WS)):
            return False
    return True


def format(src: str | bytes) -> bytes:
    """Format HuJSON as Go's ``hujson.Format`` does; raises :class:`HuJSONError` for invalid text.

    Valid documents laid out one member per line are formatted without a tree
    (:mod:`derptool.hujson.lineformat`); anything else builds the tree.
    """
    b = as_bytes(src)
    # The line formatter checks ASCII text itself (anything invalid goes to the parser for Go's error);
    # other text (UTF-8 in comments) and text with carriage returns must be checked first.
    plain = b.isascii() and b"\r" not in b
    if plain or fast_loads(b, validate_only=True) is not None:
        with no_gc():  # the walk makes a tuple a step and no cycle
            out = format_lines(b, _format_inner, valid=not plain)
        if out is not None:
            return out
    v = parse_tree(b)
    with no_gc():
        _format_tree(v)  # offsets are not needed for the bytes
        return v.pack()
