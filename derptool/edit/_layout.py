"""The layout half of :class:`~derptool.edit.document.Document`: after a patch, make what an edit added look like
its neighbours, and like ``hujson.format`` where the file was in that layout.

Three steps, each on the composites an edit touched (the ones on the way from the top to an edited member):

* :func:`lay_out_new` puts added members one per line in the file's indentation (expanding an inline parent
  that gains a comment) and leaves the comments at the end of an expanded object as they were written.
* :func:`reflow` gives an inline composite that format would now expand (a line past 80 bytes) format's
  layout, when it was in format's layout before the edit.
* :func:`align` pads the values of an object's members as format aligns them (consecutive one-line members
  share a value column), when the object was aligned that way before the edit.

"Was in format's layout before" is read from the tree before the patch (:class:`Tidy`), so a file laid out
by hand keeps its own spacing while a formatted file stays formatted (``derptool fmt --check`` passes).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from derptool import hujson
from derptool._types import JsonPath, json_pointer
from derptool.hujson import Array, Literal, Object, Value, find, parse


@dataclass
class New:
    """A member or element an edit adds, to lay out after patching."""

    parent: JsonPath
    key: str | None
    """Member name (``None`` for an array element appended at the end)."""
    commented: bool


def raw(node: Value) -> bytes | None:
    """The raw bytes of a composite not parsed yet (held as a literal), else ``None``."""
    t = node.value
    return t.raw if isinstance(t, Literal) and t.raw[:1] in (b"{", b"[") else None


def formatted_value(text: bytes, unit: bytes, depth: int) -> bytes:
    """*text* (one value) formatted as Tailscale's formatter lays it out inside a policy file, its lines after
    the first indented to *depth* in *unit*.

    It is formatted as an element of an array with a trailing comma, so that format sees a file that is not
    plain JSON (as a policy with comments is) and ends expanded composites with a trailing comma.
    """
    lines = hujson.format(b"[\n" + text + b",\n]").rstrip(b"\n").split(b"\n")[1:-1]
    lines[-1] = lines[-1].removesuffix(b",")
    out = [lines[0].removeprefix(b"\t")]
    for line in lines[1:]:
        body = line.lstrip(b"\t")
        out.append(unit * (depth + len(line) - len(body) - 1) + body if body else b"")
    return b"\n".join(out)


def would_expand(text: bytes) -> bool:
    """Would ``hujson.format`` put the one-line composite *text* on several lines (80-byte rule)?"""
    return b"\n" in hujson.format(text).rstrip(b"\n")


# -- format's view of a composite ------------------------------------------------------------------------


def is_expanded(comp: Any) -> bool:
    """Is the object or array one member per line (a newline before a member or the closing bracket)?"""
    befores = (
        [m.name.before_extra for m in comp.members]
        if isinstance(comp, Object)
        else [e.before_extra for e in comp.elements]
    )
    return any(b"\n" in b for b in befores) or b"\n" in comp.after_extra


def _spans_lines(v: Value) -> bool:
    """Does anything inside *v* (not the closing extra of *v* itself) hold a newline? A member whose value does
    is not aligned by format. A value still held raw counts by its bytes (in a formatted file the same)."""
    held = raw(v)
    if held is not None:
        return b"\n" in held
    stack = [(v.value, True)]
    while stack:
        t, top = stack.pop()
        if isinstance(t, Literal):
            continue
        if not top and b"\n" in t.after_extra:
            return True
        if isinstance(t, Object):
            for m in t.members:
                if b"\n" in m.name.before_extra + (m.name.after_extra or b"") + m.value.before_extra + (
                    m.value.after_extra or b""
                ):
                    return True
                stack.append((m.value.value, False))
        else:
            for e in t.elements:
                if b"\n" in e.before_extra + (e.after_extra or b""):
                    return True
                stack.append((e.value, False))
    return False


def aligned_befores(obj: Object) -> list[bytes]:
    """The extra after each member's colon as ``hujson.format`` would pad it: one space before the value, and
    in a block of consecutive one-line members (each name starting a line, no blank line or comment line
    between them) spaces so that their values share a column (widths in bytes, as Go counts them)."""
    out: list[bytes] = []
    widths: dict[int, int] = {}
    block: list[int] = []

    def close() -> None:
        if block:
            widest = max(widths[i] for i in block)
            for i in block:
                out[i] = b" " * (widest - widths[i]) + out[i]
            block.clear()

    for i, m in enumerate(obj.members):
        before = m.value.before_extra
        base = before if b"\n" in before else b" " + before.lstrip(b" ")
        out.append(base)
        one_line = b"\n" in m.name.before_extra and not (
            b"\n" in (m.name.after_extra or b"") + before + (m.value.after_extra or b"") or _spans_lines(m.value)
        )
        if not one_line:
            close()
            continue
        if m.name.before_extra.count(b"\n") > 1:
            close()
        assert isinstance(m.name.value, Literal)
        widths[i] = len(m.name.value.raw) + len(m.name.after_extra or b"") + 1 + len(base)
        block.append(i)
    close()
    return out


@dataclass
class Tidy:
    """The layout of the composites an edit touches, read before the edit (by JSON Pointer)."""

    aligned: set[str] = field(default_factory=set)
    """Objects whose values were padded exactly as format pads them."""
    inline: set[str] = field(default_factory=set)
    """One-line composites that format left as they were."""
    expanded: set[str] = field(default_factory=set)
    """Composites laid out one member per line."""
    trailing_comma: set[str] = field(default_factory=set)
    """Composites that ended with a trailing comma."""
    closing: dict[str, bytes] = field(default_factory=dict)
    """The extra before each composite's closing bracket."""

    def note(self, root: Value, pointers: set[str]) -> None:
        """Read the composites at *pointers* (parsed ones; those still held raw are not edited inside)."""
        for ptr in pointers:
            node = find(root, ptr)
            if node is None or raw(node) is not None or not isinstance(node.value, Object | Array):
                continue
            comp = node.value
            self.closing[ptr] = comp.after_extra
            if comp.trailing_comma:
                self.trailing_comma.add(ptr)
            if isinstance(comp, Object) and [m.value.before_extra for m in comp.members] == aligned_befores(comp):
                self.aligned.add(ptr)
            if is_expanded(comp):
                self.expanded.add(ptr)
            else:
                text = Value(comp).pack()
                if b"\n" not in text and _format_keeps(text):
                    self.inline.add(ptr)


def _format_keeps(text: bytes) -> bool:
    try:
        return hujson.format(text) == text + b"\n"
    except hujson.HuJSONError:  # pragma: no cover - the text comes from a parsed tree
        return False


# -- the three steps ---------------------------------------------------------------------------------------


def reflow(root: Value, paths: list[JsonPath], tidy: Tidy, unit: bytes) -> None:
    """Give format's layout to the outermost one-line composite on each path that format would now change
    (e.g. an inline object grown past 80 bytes), where it was in format's layout before the edit."""
    done: set[str] = set()
    for path in paths:
        for depth in range(len(path) + 1):
            ptr = json_pointer(path[:depth])
            node = find(root, ptr)
            if node is None or not isinstance(node.value, Object | Array):
                break
            if is_expanded(node.value):
                continue
            if ptr in tidy.inline and ptr not in done:
                done.add(ptr)
                text = Value(node.value).pack()
                if not _format_keeps(text):
                    new = parse(formatted_value(text, unit, depth)).value
                    assert isinstance(new, Object | Array)
                    node.value = new
            break


def align(root: Value, pointers: set[str], tidy: Tidy) -> None:
    """Pad the member values of each touched object that was aligned before the edit, as format does."""
    for ptr in pointers & tidy.aligned:
        node = find(root, ptr)
        if node is None or not isinstance(node.value, Object):
            continue
        for m, before in zip(node.value.members, aligned_befores(node.value), strict=True):
            m.value.before_extra = before


def keep_lines(root: Value, pointers: set[str], before: Tidy) -> None:
    """An expanded composite keeps one member per line, and its closing bracket on a line of its own where it
    was, after an edit removed members; one left empty is written ``{}``/``[]``."""
    for ptr in pointers & before.expanded:
        node = find(root, ptr)
        if node is None or not isinstance(node.value, Object | Array):
            continue
        comp = node.value
        holders = [m.name for m in comp.members] if isinstance(comp, Object) else comp.elements
        for h in holders:
            if b"\n" not in h.before_extra:
                h.before_extra = b"\n" + h.before_extra
        if not holders and not comp.after_extra.strip(b" \t\n"):
            comp.after_extra = b""  # emptied: {} as format writes it
        elif holders and b"\n" not in comp.after_extra:
            comp.after_extra = b"\n" + comp.after_extra
        was = before.closing.get(ptr, b"").rpartition(b"\n")
        head, nl, indent = comp.after_extra.rpartition(b"\n")
        if holders and nl and was[1] and not indent.strip(b" \t") and indent != was[2]:
            comp.after_extra = head + nl + was[2]  # the bracket's own indentation, not a removed member's


_LINE = re.compile(rb"^[ \t]*(//.*|/\*.*)$")


def _reindent(body: bytes, pad: bytes) -> bytes:
    """Comment lines of *body* re-indented with *pad*; at most one blank line kept."""
    out: list[bytes] = []
    for line in body.split(b"\n"):
        stripped = line.strip(b" \t")
        if not stripped:
            if out and out[-1] != b"":
                out.append(b"")
            continue
        out.append(pad + stripped if _LINE.match(line) else line.rstrip(b" \t"))
    while out and out[-1] == b"":
        out.pop()
    return b"".join(x + b"\n" for x in out)


def _split_same_line(extra: bytes) -> tuple[bytes, bytes]:
    """``(head, rest)``: head is the previous item's same-line comment with its newline, if any."""
    first, nl, rest = extra.partition(b"\n")
    if nl and first.strip(b" \t"):
        return first.rstrip(b" \t") + b"\n", rest
    if nl:
        return b"", rest
    if first.strip(b" \t"):
        return first.rstrip(b" \t") + b"\n", b""
    return b"", b""


def lay_out_new(root: Value, new: list[New], unit: bytes, inline: set[str], closing: dict[str, bytes]) -> None:
    """Lay out added members like their neighbours (see the module docstring); *inline* parents (one-line
    before the edit) stay on one line when nothing added to them carries a comment. *closing* holds the
    parents' closing extras before the patch (:func:`closing_extras`)."""
    by_parent: dict[JsonPath, list[New]] = {}
    for n in new:
        by_parent.setdefault(n.parent, []).append(n)
    for parent_path, items in by_parent.items():
        parent = json_pointer(parent_path)
        target = find(root, parent)
        if target is None or not isinstance(target.value, Object | Array):
            continue
        comp = target.value
        depth = len(parent_path)
        pad, inner = unit * depth, unit * (depth + 1)
        if isinstance(comp, Object):
            names = {n.key for n in items}
            slots = [(m.name, _name(m.name) in names) for m in comp.members]
            values = [m.value for m in comp.members if _name(m.name) in names]
        else:
            count = len(items)
            slots = [(e, i >= len(comp.elements) - count) for i, e in enumerate(comp.elements)]
            values = []
        for v in values:
            if not v.before_extra:
                v.before_extra = b" "
        if parent in inline and not any(n.commented for n in items):
            for i, (holder, is_new) in enumerate(slots):
                if is_new and i > 0 and not holder.before_extra:
                    holder.before_extra = b" "
            continue
        _expand_ancestors(root, parent, unit, inline)
        if parent in inline or all(is_new for _, is_new in slots):
            comp.trailing_comma = True
        for i, (holder, is_new) in enumerate(slots):
            if not is_new:
                if b"\n" not in holder.before_extra:
                    kept = holder.before_extra.strip(b" \t")
                    holder.before_extra = (b" " + kept if kept else b"") + b"\n" + inner
                continue
            head, rest = _split_same_line(holder.before_extra)
            body = _reindent(rest, inner)
            blank = b"\n" if (isinstance(comp, Object) and depth == 0 and i > 0) else b""
            holder.before_extra = (head or b"\n") + blank + body + inner
        if parent in inline:
            head, rest = _split_same_line(comp.after_extra)
            tail = _reindent(rest, inner)
            comp.after_extra = (head or b"\n") + (b"\n" + tail if tail else b"") + pad
        else:  # the comments before the closing bracket stay as the author wrote them
            comp.after_extra = _closing_kept(comp.after_extra, closing.get(parent, b""), pad)


def _closing_kept(extra: bytes, old: bytes, pad: bytes) -> bytes:
    """The closing extra of an expanded composite after members were appended before it: its lines as the
    author wrote them. The patch moved the last old member's same-line comment (with its newline) to the new
    member, so what is left of *old* starts a line."""
    at_line_start = extra != old and old.endswith(extra) and old[len(old) - len(extra) - 1 :][:1] == b"\n"
    if at_line_start or extra.startswith(b"\n"):
        head, rest = b"", extra.removeprefix(b"\n")
    else:
        head, rest = _split_same_line(extra)
    return (head or b"\n") + (rest or pad)


def _name(v: Value) -> str:
    assert isinstance(v.value, Literal)
    return str(v.value.decode())


def _expand(comp: Object | Array, depth: int, unit: bytes) -> None:
    """Put each member of an inline object (or element of an array) on its own line."""
    inner = unit * (depth + 1)
    holders = [m.name for m in comp.members] if isinstance(comp, Object) else comp.elements
    for h in holders:
        if b"\n" not in h.before_extra:
            kept = h.before_extra.strip(b" \t")
            h.before_extra = (b" " + kept if kept else b"") + b"\n" + inner
    if b"\n" not in comp.after_extra:
        kept = comp.after_extra.strip(b" \t")
        comp.after_extra = (b" " + kept if kept else b"") + b"\n" + unit * depth
    comp.trailing_comma = True


def _expand_ancestors(root: Value, ptr: str, unit: bytes, inline: set[str]) -> None:
    """Expand the inline objects that contain *ptr* (up to the first expanded one)."""
    parts = ptr.split("/")[1:]
    for depth in range(len(parts) - 1, -1, -1):
        ancestor = "".join("/" + p for p in parts[:depth])
        if ancestor not in inline:
            break
        target = find(root, ancestor)
        if target is not None and isinstance(target.value, Object | Array):
            _expand(target.value, depth, unit)
