"""The one comment-keeping editor of policy files: open a document, queue ``add``/``remove`` edits, finish.

Every edit goes through :func:`derptool.hujson.patch` (RFC 6902 on the syntax tree), so every comment, blank
line and the layout outside the edited members stay byte for byte. Members an edit adds are then laid out like
their neighbours: one per line, indented with the file's own indentation unit (tabs or N spaces), comments
re-indented; an inline object that gains commented members is expanded.

* Member names are matched case-insensitively (``derpMap``/``DERPMap``), as Tailscale does; missing sections
  are created at the end of their object.
* Line endings: a file whose every line ends in CRLF stays CRLF (added lines too); any other file is written
  with LF for the added lines and its own bytes elsewhere.
* A second identical edit changes nothing: ``changed`` is False and the bytes are the input's.

The edits themselves live beside this module: :mod:`.omit`, :mod:`.region`, :mod:`.grants`. Everything here
is pure (bytes in, :class:`ApplyResult` out); the CLI reads and writes the file.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from derptool.errors import ApplyError, InputError

if TYPE_CHECKING:
    from derptool.derpmap import DERPMap
    from derptool.hujson import Array, Object, Value


@dataclass(frozen=True)
class ApplyResult:
    """The patched file and what changed."""

    new_bytes: bytes
    changed: bool
    summary: str
    notes: list[str] = field(default_factory=list)


# -- the document being edited ------------------------------------------------------------------


@dataclass
class NewMember:
    """A member or element the patch adds, to lay out afterwards."""

    parent: str
    """JSON pointer of the object or array that receives it."""
    key: str | None
    """Member name (``None`` for an array element appended at the end)."""
    depth: int
    """Nesting depth of the parent (the root object is 0)."""
    top_blank: bool = False
    """Put a blank line before it (new top-level sections)."""
    commented: bool = False
    """It comes with comments (an inline parent is then expanded)."""


@dataclass
class Document:
    file: str
    src: bytes
    text: bytes
    crlf: bool
    root: Value
    unit: str
    ops: list[str] = field(default_factory=list)
    new: list[NewMember] = field(default_factory=list)

    def add(self, path: str, value: str, *, lead: list[str] | None = None, trail: str | None = None,
            new: NewMember | None = None) -> None:
        """Queue an ``add`` op; *value* is HuJSON text, *lead*/*trail* comment texts (without ``//``).

        A multi-line *value* is put in ``hujson.format`` layout, indented for where it lands.
        """
        if "\n" in value:
            value = _formatted_value(value, self.unit, path.count("/"))
        parts = [f'{{"op": "add", "path": {json.dumps(path, ensure_ascii=False)},']
        parts += [f"// {c}" for c in lead or []]
        parts.append(f'"value": {value},' + (f" // {trail}" if trail else ""))
        parts.append("}")
        self.ops.append("\n".join(parts))
        if new is not None:
            new.commented = bool(lead or trail or "//" in value)
            self.new.append(new)

    def remove(self, path: str) -> None:
        """Queue a ``remove`` op."""
        self.ops.append(f'{{"op": "remove", "path": {json.dumps(path, ensure_ascii=False)}}}')


def _formatted_value(text: str, unit: str, depth: int) -> str:
    """*text* formatted like Tailscale's formatter, its lines after the first indented to *depth*."""
    from derptool import hujson

    lines = hujson.format(text.encode()).decode().rstrip("\n").split("\n")
    out = [lines[0]]
    for line in lines[1:]:
        body = line.lstrip("\t")
        out.append(unit * (depth + len(line) - len(body)) + body if body else "")
    return "\n".join(out)


def open_document(src: bytes, file: str) -> Document:
    from derptool import hujson

    crlf = b"\r\n" in src and src.count(b"\n") == src.count(b"\r\n")
    text = src.replace(b"\r\n", b"\n") if crlf else src
    try:
        root = hujson.parse(text)
    except hujson.HuJSONError as err:
        raise InputError(f"{file}:{err.line}:{err.column}: {err.reason}; fix the syntax first "
                         f"(derptool validate {file})") from None
    if not isinstance(root.value, hujson.Object):
        raise ApplyError(f"{file}: a policy file is a JSON object {{...}}; this file holds something else")
    return Document(file, src, text, crlf, root, _indent_unit(root.value))


def _indent_unit(obj: Object) -> str:
    """The file's indentation unit, read from the top-level members (default a tab)."""
    for m in obj.members:
        before = m.name.before_extra
        if b"\n" in before:
            ws = before.rsplit(b"\n", 1)[1]
            if ws and ws.strip(b" \t") == b"":
                return ws.decode()
    return "\t"


def pointer(*parts: str) -> str:
    return "".join("/" + p.replace("~", "~0").replace("/", "~1") for p in parts)


def member(obj: Object, name: str) -> tuple[str, Value] | None:
    """The first member whose name matches *name* case-insensitively: ``(actual name, value)``."""
    want = name.lower()
    for m in obj.members:
        key = member_name(m.name)
        if key.lower() == want:
            return key, m.value
    return None


def member_name(v: Value) -> str:
    from derptool.hujson import Literal

    assert isinstance(v.value, Literal)
    decoded = v.value.decode()
    return str(decoded)


def data_of(v: Value) -> Any:
    from derptool import hujson

    return hujson.loads(v.pack())


def _is_expanded(comp: Any) -> bool:
    from derptool.hujson import Object

    befores = [m.name.before_extra for m in comp.members] if isinstance(comp, Object) else [
        e.before_extra for e in comp.elements]
    return any(b"\n" in b for b in befores) or b"\n" in comp.after_extra


# -- finishing: patch, lay out the added members, line endings -------------------------------------


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


def _layout(root: Value, new: list[NewMember], unit: bytes, inline: set[str]) -> None:
    """Lay out added members like their neighbours (see the module docstring); *inline* parents stay on one
    line when nothing added to them carries a comment."""
    from derptool.hujson import Array, Object, find

    by_parent: dict[str, list[NewMember]] = {}
    for n in new:
        by_parent.setdefault(n.parent, []).append(n)
    for parent, items in by_parent.items():
        target = find(root, parent)
        if target is None or not isinstance(target.value, Object | Array):
            continue
        comp = target.value
        depth = items[0].depth
        pad, inner = unit * depth, unit * (depth + 1)
        if isinstance(comp, Object):
            names = {n.key for n in items}
            slots = [(m.name, member_name(m.name) in names) for m in comp.members]
            values = [m.value for m in comp.members if member_name(m.name) in names]
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
        tops = {n.key for n in items if n.top_blank}
        for i, (holder, is_new) in enumerate(slots):
            if not is_new:
                if b"\n" not in holder.before_extra:
                    kept = holder.before_extra.strip(b" \t")
                    holder.before_extra = (b" " + kept if kept else b"") + b"\n" + inner
                continue
            head, rest = _split_same_line(holder.before_extra)
            body = _reindent(rest, inner)
            blank = b"\n" if (isinstance(comp, Object) and member_name(holder) in tops and i > 0) else b""
            holder.before_extra = (head or b"\n") + blank + body + inner
        head, rest = _split_same_line(comp.after_extra)
        tail = _reindent(rest, inner)
        comp.after_extra = (head or b"\n") + (b"\n" + tail if tail else b"") + pad


def _expand(comp: Object | Array, depth: int, unit: bytes) -> None:
    """Put each member of an inline object (or element of an array) on its own line."""
    from derptool.hujson import Object

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


def _expand_ancestors(root: Value, pointer: str, unit: bytes, inline: set[str]) -> None:
    """Expand the inline objects that contain *pointer* (up to the first expanded one)."""
    from derptool.hujson import Array, Object, find

    parts = pointer.split("/")[1:]
    for depth in range(len(parts) - 1, -1, -1):
        ancestor = "".join("/" + p for p in parts[:depth])
        if ancestor not in inline:
            break
        target = find(root, ancestor)
        if target is not None and isinstance(target.value, Object | Array):
            _expand(target.value, depth, unit)


def finish(doc: Document, summary: str, notes: list[str], *, unchanged: str) -> ApplyResult:
    from derptool import hujson

    if not doc.ops:
        return ApplyResult(doc.src, False, unchanged, notes)
    patch_text = "[\n" + ",\n".join(doc.ops) + "\n]"
    try:
        patched = hujson.patch(doc.text, patch_text)
    except hujson.HuJSONError as err:  # pragma: no cover - the ops are built from the file itself
        raise ApplyError(f"{doc.file}: cannot patch the file: {err}") from None
    inline = set()
    for n in doc.new:
        parts = n.parent.split("/")[1:]
        for depth in range(len(parts) + 1):
            pointer = "".join("/" + p for p in parts[:depth])
            before = hujson.find(doc.root, pointer)
            if before is not None and not _is_expanded(before.value):
                inline.add(pointer)
    root = hujson.parse(patched)
    _layout(root, doc.new, doc.unit.encode(), inline)
    out = root.pack()
    hujson.loads(out)  # the result must parse; a failure here is a bug, not the user's
    if doc.crlf:
        out = out.replace(b"\n", b"\r\n")
    if out == doc.src:
        return ApplyResult(doc.src, False, unchanged, notes)
    return ApplyResult(out, True, summary, notes)


# -- derpMap --------------------------------------------------------------------------------------


def derp_parts(doc: Document) -> tuple[str | None, Value | None, str | None, Value | None]:
    """``(derpMap name, value, Regions name, value)`` as far as they exist, checking their types."""
    from derptool.hujson import Literal, Object

    assert isinstance(doc.root.value, Object)
    found = member(doc.root.value, "derpMap")
    if found is None:
        return None, None, None, None
    dname, dval = found
    if not isinstance(dval.value, Object):
        if isinstance(dval.value, Literal) and dval.value.raw == b"null":
            raise ApplyError(f"{doc.file}: \"{dname}\" is null; remove that line or make it an object {{}}")
        raise ApplyError(f"{doc.file}: \"{dname}\" must be an object, it is not")
    regions = member(dval.value, "Regions")
    if regions is None:
        return dname, dval, None, None
    rname, rval = regions
    if not isinstance(rval.value, Object):
        raise ApplyError(f"{doc.file}: \"{dname}\".\"{rname}\" must be an object of regions, it is not")
    return dname, dval, rname, rval


def policy_overlay(src: bytes, *, file: str = "<policy>") -> DERPMap | None:
    """The policy's ``derpMap`` as a (validated) overlay map, or ``None`` when it has none."""
    from derptool.derpmap import parse_derpmap

    doc = open_document(src, file)
    dname, dval, _, _ = derp_parts(doc)
    if dval is None:
        return None
    return parse_derpmap(data_of(dval), source=f"{file}: {dname}")


def object_text(members: Sequence[tuple[str, str, str | None]], unit: str, depth: int,
                 lead: dict[str, list[str]] | None = None) -> str:
    """An expanded object: ``(name, value text, same-line comment)`` members, closing brace at *depth*."""
    pad, inner = unit * depth, unit * (depth + 1)
    lines = ["{"]
    for name, value, comment in members:
        lines += [f"{inner}// {c}" for c in (lead or {}).get(name, [])]
        lines.append(f"{inner}{json.dumps(name, ensure_ascii=False)}: {value}," + (f" // {comment}" if comment else ""))
    lines.append(pad + "}")
    return "\n".join(lines)


def check_derpmap(result: ApplyResult, file: str) -> None:
    """The edited derpMap must still be a valid DERP map (a failure is reported, never written)."""
    if result.changed:
        policy_overlay(result.new_bytes, file=file)


Editor = Callable[[bytes, str], ApplyResult]
"""What the CLI runs on a file's bytes and name."""
