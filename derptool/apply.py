"""Editing a tailnet policy file in place: ``omit``, ``region add`` and ``grants`` with ``--apply``.

Every function here is pure: it takes the file's bytes and returns an :class:`ApplyResult` with the new
bytes; the CLI reads and writes (atomically). Edits go through :func:`derptool.hujson.patch` (RFC 6902
on the syntax tree), so every comment, blank line and the layout outside the edited members stay byte
for byte. Members the edit adds are then laid out like their neighbours: one per line, indented with
the file's own indentation unit (tabs or N spaces), comments re-indented; an inline object that gains
commented members is expanded.

Rules:

* ``omit``: each omitted region becomes ``"<id>": null, // <code> (region <id>): <city>, <country>``.
  Existing ``null`` entries are kept (``--replace`` removes those not omitted now), and regions the policy
  defines itself are never replaced by ``null`` (a note says so). When the policy sets
  ``OmitDefaultRegions``, Tailscale's regions are gone already and nothing is added.
* ``region add``: the region is added, or replaces the policy's region with the same ID (its comments
  kept); ``--omit-default`` sets ``OmitDefaultRegions: true``.
* ``grants``: the grant is appended unless an equal one is present; missing ``tagOwners`` entries are
  added, existing ones are left as they are.
* Missing sections (``derpMap``, ``Regions``, ``grants``, ``tagOwners``) are created at the end of their
  object. Member names are matched case-insensitively (``derpMap``/``DERPMap``), as Tailscale does.
* Line endings: a file whose every line ends in CRLF stays CRLF (added lines too); any other file is
  written with LF for the added lines and its own bytes elsewhere.
* A second identical run changes nothing: ``changed`` is False and the bytes are the input's.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from derptool.errors import DerptoolError, InputError

if TYPE_CHECKING:
    from derptool.derpmap import DERPMap
    from derptool.grants import EgressPlan
    from derptool.hujson import Array, Object, Value
    from derptool.snippets import OmitPlan, RegionPlan


@dataclass(frozen=True)
class ApplyResult:
    """The patched file and what changed."""

    new_bytes: bytes
    changed: bool
    summary: str
    notes: list[str] = field(default_factory=list)


class ApplyError(DerptoolError):
    """The file cannot be edited as asked (its shape does not allow it); exit 2."""


# -- the document being edited ------------------------------------------------------------------


@dataclass
class _New:
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
class _Doc:
    file: str
    src: bytes
    text: bytes
    crlf: bool
    root: Value
    unit: str
    ops: list[str] = field(default_factory=list)
    new: list[_New] = field(default_factory=list)

    def add(self, path: str, value: str, *, lead: list[str] | None = None, trail: str | None = None,
            new: _New | None = None) -> None:
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


def _open(src: bytes, file: str) -> _Doc:
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
    return _Doc(file, src, text, crlf, root, _indent_unit(root.value))


def _indent_unit(obj: Object) -> str:
    """The file's indentation unit, read from the top-level members (default a tab)."""
    for m in obj.members:
        before = m.name.before_extra
        if b"\n" in before:
            ws = before.rsplit(b"\n", 1)[1]
            if ws and ws.strip(b" \t") == b"":
                return ws.decode()
    return "\t"


def _ptr(*parts: str) -> str:
    return "".join("/" + p.replace("~", "~0").replace("/", "~1") for p in parts)


def _member(obj: Object, name: str) -> tuple[str, Value] | None:
    """The first member whose name matches *name* case-insensitively: ``(actual name, value)``."""
    want = name.lower()
    for m in obj.members:
        key = _name(m.name)
        if key.lower() == want:
            return key, m.value
    return None


def _name(v: Value) -> str:
    from derptool.hujson import Literal

    assert isinstance(v.value, Literal)
    decoded = v.value.decode()
    return str(decoded)


def _data(v: Value) -> Any:
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


def _layout(root: Value, new: list[_New], unit: bytes, inline: set[str]) -> None:
    """Lay out added members like their neighbours (see the module docstring); *inline* parents stay on one
    line when nothing added to them carries a comment."""
    from derptool.hujson import Array, Object, find

    by_parent: dict[str, list[_New]] = {}
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
        tops = {n.key for n in items if n.top_blank}
        for i, (holder, is_new) in enumerate(slots):
            if not is_new:
                if b"\n" not in holder.before_extra:
                    kept = holder.before_extra.strip(b" \t")
                    holder.before_extra = (b" " + kept if kept else b"") + b"\n" + inner
                continue
            head, rest = _split_same_line(holder.before_extra)
            body = _reindent(rest, inner)
            blank = b"\n" if (isinstance(comp, Object) and _name(holder) in tops and i > 0) else b""
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


def _finish(doc: _Doc, summary: str, notes: list[str], *, unchanged: str) -> ApplyResult:
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


def _derp_parts(doc: _Doc) -> tuple[str | None, Value | None, str | None, Value | None]:
    """``(derpMap name, value, Regions name, value)`` as far as they exist, checking their types."""
    from derptool.hujson import Literal, Object

    assert isinstance(doc.root.value, Object)
    found = _member(doc.root.value, "derpMap")
    if found is None:
        return None, None, None, None
    dname, dval = found
    if not isinstance(dval.value, Object):
        if isinstance(dval.value, Literal) and dval.value.raw == b"null":
            raise ApplyError(f"{doc.file}: \"{dname}\" is null; remove that line or make it an object {{}}")
        raise ApplyError(f"{doc.file}: \"{dname}\" must be an object, it is not")
    regions = _member(dval.value, "Regions")
    if regions is None:
        return dname, dval, None, None
    rname, rval = regions
    if not isinstance(rval.value, Object):
        raise ApplyError(f"{doc.file}: \"{dname}\".\"{rname}\" must be an object of regions, it is not")
    return dname, dval, rname, rval


def policy_overlay(src: bytes, *, file: str = "<policy>") -> DERPMap | None:
    """The policy's ``derpMap`` as a (validated) overlay map, or ``None`` when it has none."""
    from derptool.derpmap import parse_derpmap

    doc = _open(src, file)
    dname, dval, _, _ = _derp_parts(doc)
    if dval is None:
        return None
    return parse_derpmap(_data(dval), source=f"{file}: {dname}")


def omit_universe(base: DERPMap, src: bytes, *, file: str = "<policy>") -> DERPMap:
    """The map to select regions from when omitting into *src*: *base* plus the regions the policy defines.

    Regions the policy sets to ``null`` stay in (they are still regions of the base map, so ``--keep`` and
    ``--replace`` see them); regions the policy defines in full replace the base's.
    """
    from derptool.derpmap import DERPMap as _Map

    overlay = policy_overlay(src, file=file)
    regions = {k: r for k, r in base.regions.items() if r is not None}
    if overlay is not None:
        regions.update({k: r for k, r in overlay.regions.items() if r is not None})
    return _Map(HomeParams=base.home_params, Regions=dict(sorted(regions.items())))


def _object_text(members: Sequence[tuple[str, str, str | None]], unit: str, depth: int,
                 lead: dict[str, list[str]] | None = None) -> str:
    """An expanded object: ``(name, value text, same-line comment)`` members, closing brace at *depth*."""
    pad, inner = unit * depth, unit * (depth + 1)
    lines = ["{"]
    for name, value, comment in members:
        lines += [f"{inner}// {c}" for c in (lead or {}).get(name, [])]
        lines.append(f"{inner}{json.dumps(name, ensure_ascii=False)}: {value}," + (f" // {comment}" if comment else ""))
    lines.append(pad + "}")
    return "\n".join(lines)


def _region_list(ids: list[int], labels: dict[int, str]) -> str:
    shown = ", ".join(labels.get(i, str(i)).split(":")[0] for i in ids[:8])
    return shown + (f" and {len(ids) - 8} more" if len(ids) > 8 else "")


def apply_omit(src: bytes, plan: OmitPlan, *, replace: bool = False, file: str = "<policy>") -> ApplyResult:
    """Set the plan's omitted regions to ``null`` in the policy's ``derpMap`` (see the module docstring)."""
    from derptool.snippets import region_label

    doc = _open(src, file)
    dname, dval, rname, rval = _derp_parts(doc)
    notes: list[str] = []
    labels = {r.region_id: region_label(r) for r in plan.omitted}
    existing: dict[str, Any] = {}
    omit_default = False
    if dval is not None:
        data = _data(dval)
        omit_default = any(k.lower() == "omitdefaultregions" and v is True for k, v in data.items())
    if rval is not None:
        existing = {}
        for m in rval.value.members:  # type: ignore[union-attr]
            existing.setdefault(_name(m.name), _data(m.value))
    if omit_default:
        notes.append(f"{file} sets OmitDefaultRegions: Tailscale's regions are all dropped already, "
                     "so no region is set to null")
        return ApplyResult(src, False, f"{file}: unchanged (OmitDefaultRegions is set)", notes)
    defined = [r.region_id for r in plan.omitted if existing.get(str(r.region_id)) is not None]
    if defined:
        notes.append(f"left {len(defined)} region(s) the policy defines itself as they are "
                     f"({', '.join(map(str, defined))}): omit does not replace a definition with null")
    to_null = [r.region_id for r in plan.omitted if str(r.region_id) not in existing]
    already = [r.region_id for r in plan.omitted if str(r.region_id) in existing and existing[str(r.region_id)] is None]
    wanted = {str(r.region_id) for r in plan.omitted}
    to_drop = [k for k, v in existing.items() if v is None and k not in wanted] if replace else []
    unit = doc.unit
    if dval is None:
        members = [(str(i), "null", labels[i]) for i in to_null]
        regions_text = _object_text(members, unit, 2) if members else "{}"
        doc.add("/derpMap", _object_text([("Regions", regions_text, None)], unit, 1),
                lead=["DERP relays: regions set to null are removed from Tailscale's map (derptool omit)."],
                new=_New("", "derpMap", 0, top_blank=True))
    elif rval is None:
        assert dname is not None
        members = [(str(i), "null", labels[i]) for i in to_null]
        doc.add(_ptr(dname, "Regions"), _object_text(members, unit, 2) if members else "{}",
                new=_New(_ptr(dname), "Regions", 1))
    else:
        assert dname is not None and rname is not None
        for key in to_drop:
            doc.remove(_ptr(dname, rname, key))
        for i in to_null:
            doc.add(_ptr(dname, rname, str(i)), "null", trail=labels[i], new=_New(_ptr(dname, rname), str(i), 2))
    parts = []
    if to_null:
        parts.append(f"{len(to_null)} region(s) set to null ({_region_list(to_null, labels)})")
    if to_drop:
        parts.append(f"{len(to_drop)} null entr{'y' if len(to_drop) == 1 else 'ies'} removed "
                     f"({', '.join(to_drop)}): those regions come back")
    if already:
        parts.append(f"{len(already)} already null")
    summary = f"{file}: derpMap: " + "; ".join(parts) if parts else f"{file}: derpMap unchanged"
    unchanged = f"{file}: already up to date" + (f" ({len(already)} region(s) already null)" if already else "")
    result = _finish(doc, summary, notes, unchanged=unchanged)
    _check_derpmap(result, file)
    return result


def _check_derpmap(result: ApplyResult, file: str) -> None:
    """The edited derpMap must still be a valid DERP map (a failure is reported, never written)."""
    if result.changed:
        policy_overlay(result.new_bytes, file=file)


def apply_region(src: bytes, plan: RegionPlan, *, file: str = "<policy>") -> ApplyResult:
    """Add (or replace) the plan's region in the policy's ``derpMap``; set ``OmitDefaultRegions`` if asked."""
    from derptool.snippets import OMIT_DEFAULT_COMMENT, region_title, region_value_hujson

    doc = _open(src, file)
    dname, dval, rname, rval = _derp_parts(doc)
    region = plan.region
    rid = str(region.region_id)
    unit = doc.unit
    notes: list[str] = []
    done: list[str] = []
    if dval is None:
        members: list[tuple[str, str, str | None]] = []
        lead: dict[str, list[str]] = {}
        if plan.omit_default:
            members.append(("OmitDefaultRegions", "true", None))
            lead["OmitDefaultRegions"] = [OMIT_DEFAULT_COMMENT]
        region_text = _object_text([(rid, region_value_hujson(plan, unit, 2), None)], unit, 2,
                                   lead={rid: [region_title(region)]})
        members.append(("Regions", region_text, None))
        doc.add("/derpMap", _object_text(members, unit, 1, lead=lead),
                lead=["DERP relays: self-hosted regions (derptool region add)."],
                new=_New("", "derpMap", 0, top_blank=True))
        done.append(f"derpMap created with region {rid}")
    else:
        assert dname is not None
        if rval is None:
            region_text = _object_text([(rid, region_value_hujson(plan, unit, 2), None)], unit, 2,
                                       lead={rid: [region_title(region)]})
            doc.add(_ptr(dname, "Regions"), region_text, new=_New(_ptr(dname), "Regions", 1))
            done.append(f"region {rid} added")
        else:
            assert rname is not None
            current = _member(rval.value, rid)  # type: ignore[arg-type]
            if current is None:
                doc.add(_ptr(dname, rname, rid), region_value_hujson(plan, unit, 3), lead=[region_title(region)],
                        new=_New(_ptr(dname, rname), rid, 2))
                done.append(f"region {rid} added")
            elif _same_region(_data(current[1]), region.to_data()):
                pass
            else:
                doc.add(_ptr(dname, rname, current[0]), region_value_hujson(plan, unit, 3))
                was = "a null entry" if _data(current[1]) is None else "the existing definition"
                done.append(f"region {rid} replaced ({was})")
        if plan.omit_default:
            assert dval is not None
            flag = _member(dval.value, "OmitDefaultRegions")  # type: ignore[arg-type]
            if flag is None:
                doc.add(_ptr(dname, "OmitDefaultRegions"), "true", lead=[OMIT_DEFAULT_COMMENT],
                        new=_New(_ptr(dname), "OmitDefaultRegions", 1))
                done.append("OmitDefaultRegions set")
            elif _data(flag[1]) is not True:
                doc.add(_ptr(dname, flag[0]), "true")
                done.append("OmitDefaultRegions set")
            nulls = [k for k, v in (_data(rval) or {}).items() if v is None] if rval is not None else []
            if nulls:
                notes.append(f"with OmitDefaultRegions the null entries ({', '.join(nulls)}) have no effect; "
                             "you may delete them")
    summary = f"{file}: derpMap: " + "; ".join(done)
    result = _finish(doc, summary, notes, unchanged=f"{file}: already up to date (region {rid} is there as given)")
    _check_derpmap(result, file)
    return result


def _same_region(current: Any, wanted: dict[str, Any]) -> bool:
    from pydantic import ValidationError

    from derptool.derpmap import DERPRegion

    if not isinstance(current, dict):
        return False
    try:
        return DERPRegion.model_validate(current).to_data() == wanted
    except ValidationError:
        return False


# -- grants ---------------------------------------------------------------------------------------


def _grant_key(grant: Any) -> Any:
    if not isinstance(grant, dict):
        return grant
    return {str(k).lower(): v for k, v in grant.items()}


def apply_grants(src: bytes, plan: EgressPlan, *, file: str = "<policy>") -> ApplyResult:
    """Append the plan's grant (unless present) and the ``tagOwners`` entries missing from the policy."""
    from derptool.grants import grant_hujson
    from derptool.hujson import Array, Object

    doc = _open(src, file)
    root = doc.root.value
    assert isinstance(root, Object)
    unit = doc.unit
    done: list[str] = []
    notes: list[str] = []
    owners = _member(root, "tagOwners")
    if owners is not None and not isinstance(owners[1].value, Object):
        raise ApplyError(f"{file}: \"{owners[0]}\" must be an object of tag: [owners], it is not")
    grants = _member(root, "grants")
    if grants is not None and not isinstance(grants[1].value, Array):
        raise ApplyError(f"{file}: \"{grants[0]}\" must be an array of grants, it is not")
    present = set()
    if owners is not None:
        present = {_name(m.name) for m in owners[1].value.members}  # type: ignore[union-attr]
    missing = {t: o for t, o in plan.tag_owners.items() if t not in present}
    if missing:
        if owners is None:
            members = [(t, json.dumps(o, ensure_ascii=False), None) for t, o in missing.items()]
            doc.add("/tagOwners", _object_text(members, unit, 1),
                    lead=["Tags must have owners: who may apply them to devices."],
                    new=_New("", "tagOwners", 0, top_blank=True))
        else:
            for tag, who in missing.items():
                doc.add(_ptr(owners[0], tag), json.dumps(who, ensure_ascii=False), new=_New(_ptr(owners[0]), tag, 1))
        done.append(f"tagOwners: {', '.join(missing)} added")
    wanted = _grant_key(plan.grant)
    if grants is None:
        inner = unit * 2
        lines = ["["] + [f"{inner}// {c}" for c in plan.comment] + [f"{inner}{grant_hujson(plan.grant)},", unit + "]"]
        doc.add("/grants", "\n".join(lines), new=_New("", "grants", 0, top_blank=True))
        done.append("grants: 1 grant added")
    elif any(_grant_key(g) == wanted for g in _data(grants[1]) or []):
        pass
    else:
        doc.add(_ptr(grants[0], "-"), grant_hujson(plan.grant), lead=plan.comment,
                new=_New(_ptr(grants[0]), None, 1))
        done.append("grants: 1 grant added")
    groups = _member(root, "groups")
    defined = set(_data(groups[1]) or {}) if groups is not None and isinstance(groups[1].value, Object) else set()
    undefined = [s for s in plan.grant["src"] if s.startswith("group:") and s not in defined]
    if undefined:
        notes.append(f"{', '.join(undefined)} not defined in {file}'s groups section; define before using")
    summary = f"{file}: " + "; ".join(done)
    return _finish(doc, summary, notes, unchanged=f"{file}: already up to date (the grant and its tags are there)")


Editor = Callable[[bytes, str], ApplyResult]
"""What the CLI runs on a file's bytes and name."""
