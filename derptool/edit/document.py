"""The one comment-keeping editor of policy files: open a document, look members up, queue edits, finish.

::

    doc = Document.open(src, "policy.hujson")
    regions = doc.get("derpMap")                 # case-insensitive lookup: Member(name as written, path, ...)
    doc.add(("derpMap", "Regions", "7"), "null", trail="tok (region 7)")
    doc.remove(("derpMap", "Regions", "9"))
    result = doc.finish(summary="...", notes=[], unchanged="... already up to date")   # -> ApplyResult

The contract:

* **Comments and layout kept byte for byte.** Edits go through :func:`derptool.hujson.patch_value` (RFC 6902
  on the syntax tree), so every comment, blank line and byte outside the edited members stays as it was.
* **Added members look like their neighbours**: one per line, indented with the file's own unit (tabs or N
  spaces), a blank line before a new top-level section; an inline object that gains commented members is
  expanded. A value that is multi-line, or that format would spread over lines, is put in ``hujson.format``
  layout first. Comments before the closing bracket of an object that was already expanded stay as written.
* **A formatted file stays formatted** (``derptool fmt --check`` passes after an edit): where an object's values
  were aligned as format aligns them, they are aligned again after the edit, and a one-line composite that
  grew past format's 80-byte rule is laid out as format lays it out (:mod:`._layout`). A file laid out by hand
  keeps its own spacing. (A file of plain JSON with no comment is the exception: format adds no trailing
  commas to such a file, and the comments an edit adds end that.)
* **Names** are matched in any letter case (``derpMap``/``DERPMap``), as Tailscale reads them; the first
  match wins. Paths are tuples of member names as written (:attr:`Member.path` gives them).
* **Line endings**: a file whose every line ends in CRLF stays CRLF (added lines too); any other file keeps
  its own bytes and gets LF on the added lines.
* **Idempotent**: an edit that changes nothing gives ``changed=False`` and the input bytes, unchanged.
* **Pure and single pass**: bytes in, :class:`ApplyResult` out; the CLI reads and writes the file. The file is
  checked once (``hujson.standardize``, no syntax tree) and only the top-level members an edit looks into
  are parsed into trees; the others stay raw bytes. After :meth:`Document.finish`, lookups read the edited
  document (e.g. to validate the part that was edited).

The edits themselves live beside this module: :mod:`.omit`, :mod:`.region`, :mod:`.grants`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from derptool import hujson
from derptool._types import JsonPath, json_pointer
from derptool.edit._layout import (
    New,
    Tidy,
    align,
    formatted_value,
    keep_lines,
    lay_out_new,
    reflow,
    would_expand,
)
from derptool.edit._layout import raw as _raw
from derptool.errors import ApplyError, InputError
from derptool.hujson import Array, Literal, Object, ObjectMember, Value, find, parse


@dataclass(frozen=True)
class ApplyResult:
    """The patched file and what changed."""

    new_bytes: bytes
    changed: bool
    summary: str
    notes: list[str] = field(default_factory=list)


Editor = Callable[[bytes, str], ApplyResult]
"""An edit as the CLI runs it: the file's bytes and name in, the result out."""


# -- looking members up -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Member:
    """A member of the document found by name: its name as written, its path and its value."""

    name: str
    path: JsonPath
    node: Value = field(repr=False)
    doc: Document = field(repr=False, compare=False)

    @property
    def is_object(self) -> bool:
        return self.doc._kind(self.node) == "{"

    @property
    def is_array(self) -> bool:
        return self.doc._kind(self.node) == "["

    @property
    def is_null(self) -> bool:
        return self.doc._kind(self.node) == "n"

    def data(self) -> Any:
        """The value as plain Python data."""
        return hujson.loads(self.node.pack())

    def get(self, name: str) -> Member | None:
        """The first member of this object named *name* in any letter case (``None`` if not an object)."""
        obj = self.doc._tree(self.node)
        if not isinstance(obj, Object):
            return None
        return self.doc._find(obj, self.path, name)

    def names(self) -> list[str]:
        """The member names of this object, as written (empty if not an object)."""
        obj = self.doc._tree(self.node)
        return [_name(m.name) for m in obj.members] if isinstance(obj, Object) else []


def _name(v: Value) -> str:
    assert isinstance(v.value, Literal)
    return str(v.value.decode())


# -- the document ---------------------------------------------------------------------------------


class Document:
    """A policy file opened for editing (see the module docstring). Use :meth:`open`."""

    def __init__(self, file: str, src: bytes, crlf: bool, root: Value) -> None:
        self.file = file
        self._src = src
        self._crlf = crlf
        self._root = root
        self.indent = _indent_unit(root)
        """The file's indentation unit (a tab or N spaces), read from the top-level members."""
        self._ops: list[str] = []
        self._new: list[New] = []
        self._paths: list[JsonPath] = []
        """The parent of every edited member: the composites on the way to them are laid out again."""
        self._parents: set[str] = set()
        """Pointers of the objects and arrays the queued edits change."""
        self._replaced = 0
        """How many values were replaced in place (not through the patch)."""
        self._before = Tidy()
        """The layout of the composites on the way to the edits, read before the first edit touched them."""
        self._read: set[str] = set()
        self._finished = False

    @classmethod
    def open(cls, src: bytes, file: str) -> Document:
        """Open *src* (the bytes of *file*). Raises :class:`InputError` for a HuJSON syntax error and
        :class:`ApplyError` when the file is not a JSON object."""
        crlf = b"\r\n" in src and src.count(b"\n") == src.count(b"\r\n")
        text = src.replace(b"\r\n", b"\n") if crlf else src
        try:
            std = hujson.standardize(text)
        except hujson.HuJSONError as err:
            raise InputError(
                f"{file}:{err.line}:{err.column}: {err.reason}; fix the syntax first (derptool validate {file})"
            ) from None
        root = _skeleton(text, std)
        if root is None:
            raise ApplyError(f"{file}: a policy file is a JSON object {{...}}; this file holds something else")
        return cls(file, src, crlf, root)

    # -- lookups

    def get(self, name: str) -> Member | None:
        """The first top-level member named *name* in any letter case."""
        assert isinstance(self._root.value, hujson.Object)
        return self._find(self._root.value, (), name)

    def _find(self, obj: Object, path: JsonPath, name: str) -> Member | None:
        want = name.lower()
        for m in obj.members:
            key = _name(m.name)
            if key.lower() == want:
                return Member(key, (*path, key), m.value, self)
        return None

    def _kind(self, node: Value) -> str:
        raw = _raw(node)
        return node.kind if raw is None else chr(raw[0])

    def _tree(self, node: Value) -> Literal | Object | Array:
        """The node's tree, parsing a member still held as raw bytes."""
        if _raw(node) is not None:
            assert isinstance(node.value, hujson.Literal)
            node.value = hujson.parse(node.value.raw).value
        return node.value

    def _materialize(self, path: JsonPath) -> None:
        """Parse the members along *path* that are still raw, so that a patch can reach into them."""
        node = self._root
        for seg in path:
            t = self._tree(node)
            if not isinstance(t, Object):
                return
            found = next((m.value for m in t.members if _name(m.name) == seg), None)
            if found is None:
                return
            node = found
        self._tree(node)

    # -- edits

    def add(self, path: Sequence[str | int], value: str, *, lead: Sequence[str] = (), trail: str | None = None) -> None:
        """Set the member at *path* to *value* (HuJSON text): replace it if it exists, else add it at the end
        of its object (``path[-1] == "-"`` appends to an array). *lead* are comment lines put before a new
        member, *trail* a comment after it on its line (texts without ``//``)."""
        if self._finished:
            raise RuntimeError("the document is finished")
        path = tuple(path)
        self._note(path[:-1])
        if "\n" in value or (value[:1] in "{[" and would_expand(value.encode())):
            value = formatted_value(value.encode(), self.indent.encode(), len(path)).decode()
        existing = None if path[-1] == "-" else find(self._root, json_pointer(path))
        if existing is not None:
            # Replace the value in place: the comments and spacing around it stay the member's own (a patch
            # "add" would replace them with the new value's).
            existing.value = parse(value.encode()).value
            self._replaced += 1
            return
        parts = [f'{{"op": "add", "path": {json.dumps(json_pointer(path), ensure_ascii=False)},']
        parts += [f"// {c}" for c in lead]
        parts.append(f'"value": {value},' + (f" // {trail}" if trail else ""))
        parts.append("}")
        self._ops.append("\n".join(parts))
        if path[-1] == "-" or find(self._root, json_pointer(path)) is None:
            key = None if path[-1] == "-" else str(path[-1])
            self._new.append(New(path[:-1], key, bool(lead or trail or "//" in value)))

    def set_comment_line(self, name: str, marker: str, text: str) -> bool:
        """Own one comment line before the top-level member *name*: the line ``// <marker> ...`` there is
        replaced by ``// <text>`` (which starts with *marker*), or added as the last line before the member.
        ``False`` when there is no such member (put the line in ``lead`` when adding it)."""
        if self._finished:
            raise RuntimeError("the document is finished")
        assert isinstance(self._root.value, hujson.Object)
        want = name.lower()
        member = next((m for m in self._root.value.members if _name(m.name).lower() == want), None)
        if member is None:
            return False
        before = member.name.before_extra
        line = f"// {text}".encode()
        found = re.search(rb"(?m)^([ \t]*)//[ \t]*" + re.escape(marker.encode()) + rb"\b[^\n]*", before)
        if found is not None:
            new = before[: found.start()] + found.group(1) + line + before[found.end() :]
        else:
            head, newline, pad = before.rpartition(b"\n")
            if not newline:  # the member starts on the line of the brace: give it a line of its own
                head, pad = before, self.indent.encode()
            new = head + b"\n" + pad + line + b"\n" + pad
        if new != before:
            member.name.before_extra = new
            self._replaced += 1
        return True

    def remove(self, path: Sequence[str | int]) -> None:
        """Remove the member at *path*, with the comments it owns."""
        if self._finished:
            raise RuntimeError("the document is finished")
        self._note(tuple(path)[:-1])
        self._ops.append(f'{{"op": "remove", "path": {json.dumps(json_pointer(path), ensure_ascii=False)}}}')

    def _note(self, parent: JsonPath) -> None:
        """Before an edit under *parent*: parse the members on the way and read the layout of the composites
        there, as it was before any edit (the layout steps of :meth:`finish` compare with it)."""
        self._materialize(parent)
        self._paths.append(parent)
        self._parents.add(json_pointer(parent))
        fresh = {json_pointer(parent[:depth]) for depth in range(len(parent) + 1)} - self._read
        self._before.note(self._root, fresh)
        self._read |= fresh

    def object_text(
        self, members: Sequence[tuple[str, str, str | None]], depth: int, lead: dict[str, list[str]] | None = None
    ) -> str:
        """An expanded object in the file's indentation: ``(name, value text, same-line comment)`` members,
        *lead* comment lines before some of them, the closing brace at *depth*."""
        pad, inner = self.indent * depth, self.indent * (depth + 1)
        lines = ["{"]
        for name, value, comment in members:
            lines += [f"{inner}// {c}" for c in (lead or {}).get(name, [])]
            lines.append(
                f"{inner}{json.dumps(name, ensure_ascii=False)}: {value}," + (f" // {comment}" if comment else "")
            )
        lines.append(pad + "}")
        return "\n".join(lines)

    def finish(self, *, summary: str, notes: Sequence[str] = (), unchanged: str) -> ApplyResult:
        """Apply the queued edits, lay out what they added and give the new bytes.

        *summary* describes a change, *unchanged* the result when the bytes come out as they went in.
        """
        self._finished = True
        kept = list(notes)
        if not self._ops and not self._replaced:
            return ApplyResult(self._src, False, unchanged, kept)
        before = self._before
        inline = {
            json_pointer(n.parent[:depth]) for n in self._new for depth in range(len(n.parent) + 1)
        } - before.expanded
        paths = list(dict.fromkeys(self._paths))
        try:
            if self._ops:
                hujson.patch_value(self._root, "[\n" + ",\n".join(self._ops) + "\n]")
        except hujson.HuJSONError as err:  # pragma: no cover - the ops are built from the file itself
            raise ApplyError(f"{self.file}: cannot patch the file: {err}") from None
        for ptr in self._parents & before.trailing_comma:  # Go's patch drops a trailing comma where it appends
            target = hujson.find(self._root, ptr)
            comp = None if target is None else target.value
            if isinstance(comp, hujson.Object | hujson.Array) and (
                comp.members if isinstance(comp, hujson.Object) else comp.elements
            ):
                comp.trailing_comma = True
        unit = self.indent.encode()
        keep_lines(self._root, self._read, before)
        lay_out_new(self._root, self._new, unit, inline, before.closing)
        reflow(self._root, paths, before, unit)
        align(self._root, self._read, before)
        out = self._root.pack()
        hujson.standardize(out)  # the result must parse; a failure here is a bug, not the user's
        if self._crlf:
            out = out.replace(b"\n", b"\r\n")
        if out == self._src:
            return ApplyResult(self._src, False, unchanged, kept)
        return ApplyResult(out, True, summary, kept)


def refuse_new_errors(before: bytes, after: bytes, file: str) -> None:
    """Raise :class:`ApplyError` when *after* (an edit of *before*) has a validation error *before* had not.

    Every ``--apply`` edit is checked this way before anything is shown or written (``cli._apply``): derptool
    never writes a policy its own
    ``validate`` (and so Tailscale) would refuse because of the edit. Errors the file already had are its own.
    """
    from collections import Counter

    from derptool.policy.validate import error_messages

    def errors(src: bytes) -> Counter[str]:
        return Counter(error_messages(src))

    found = errors(after)
    new = found - errors(before) if found else found
    if new:
        first = next(iter(new))
        more = sum(new.values()) - 1
        raise ApplyError(
            f"{file}: the edit would make the policy invalid ({first}"
            + (f"; and {more} more" if more else "")
            + "); nothing was written"
        )


# -- opening: the top-level members, each value kept as raw bytes until an edit needs its tree --------------

_WS = re.compile(rb"[ \t\r\n]*+")
_EXTRA = re.compile(rb"(?:[ \t\r\n]++|//[^\n]*+\n|/\*(?s:.*?)\*/)*+")
_STRING = re.compile(rb'"(?:[^"\\]++|\\(?s:.))*+"')
_LITERAL = re.compile(rb"[-+.A-Za-z0-9]++")
_END_FINDER = json.JSONDecoder(object_pairs_hook=len)


def _skeleton(text: bytes, std: bytes) -> Value | None:
    """The tree :func:`hujson.parse` gives for *text*, down to the top-level members, whose composite values
    stay raw bytes (see :func:`_raw`). *std* is ``hujson.standardize(text)``: valid JSON with every byte
    offset of *text*, so it tells where values end while *text* gives the comments around them.
    ``None`` when the document is not an object."""

    def ws(pos: int) -> int:
        m = _WS.match(std, pos)
        assert m is not None
        return m.end()

    start = ws(0)
    if std[start : start + 1] != b"{":
        return None
    latin: str | None = None
    obj = Object()
    i = start + 1
    j = ws(i)
    while std[j] != 0x7D:  # "}"
        name_end = _STRING.match(std, j).end()  # type: ignore[union-attr]  # valid JSON: a name is here
        colon = ws(name_end)
        name = Value(Literal(text[j:name_end]), text[i:j], text[name_end:colon])
        v0 = ws(colon + 1)
        c = std[v0]
        if c == 0x22:  # a string
            v1 = _STRING.match(std, v0).end()  # type: ignore[union-attr]
        elif c in (0x7B, 0x5B):  # an object or array: the JSON decoder finds its end
            latin = std.decode("latin-1") if latin is None else latin  # one character per byte
            v1 = _END_FINDER.raw_decode(latin, v0)[1]
        else:
            v1 = _LITERAL.match(std, v0).end()  # type: ignore[union-attr]
        value = Value(Literal(text[v0:v1]), text[colon + 1 : v0])
        obj.members.append(ObjectMember(name, value))
        n = ws(v1)
        if std[n] == 0x2C:  # ","
            value.after_extra = text[v1:n]
            i = n + 1
            j = ws(i)
            continue
        comma = _EXTRA.match(text, v1).end()  # type: ignore[union-attr]
        if comma < n and text[comma] == 0x2C:  # a trailing comma (standardize blanked it)
            value.after_extra = text[v1:comma]
            obj.trailing_comma = True
            obj.after_extra = text[comma + 1 : n]
        else:
            obj.after_extra = text[v1:n]
        j = n
        break
    else:
        obj.after_extra = text[i:j]
    return Value(obj, text[:start], text[j + 1 :])


def _indent_unit(root: Value) -> str:
    """The file's indentation unit, read from the top-level members (default a tab)."""
    assert isinstance(root.value, Object)
    for m in root.value.members:
        before = m.name.before_extra
        if b"\n" in before:
            ws = before.rsplit(b"\n", 1)[1]
            if ws and ws.strip(b" \t") == b"":
                return ws.decode()
    return "\t"
