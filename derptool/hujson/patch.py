"""``patch``: RFC 6902 JSON Patch over the syntax tree, keeping comments the way Go's hujson does.

The patch (HuJSON text, or Python data) is parsed and checked whole before anything is applied; the
operations then run in order on a copy. Unlike Go's ``Value.Patch`` (which leaves earlier operations
applied when a later one fails), :func:`patch` is all or nothing: on any error it raises and returns
nothing, so a caller's file is never half patched.

Comment ownership: in the extra between items A and B, blank lines ("dividers") separate what A owns
(before the first divider) from what B owns (after the last); without dividers A owns a ``// c`` on its
own line and B the rest. Remove takes an item's comments with it, insert places the patch value's
comments around the new item, replace swaps them only when the patch supplies some.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any

from derptool.hujson.ast import Array, Literal, Object, ObjectMember, Value
from derptool.hujson.errors import HuJSONError
from derptool.hujson.parse import as_bytes, parse
from derptool.hujson.pointer import locate, member_index, split_pointer
from derptool.hujson.standard import standardize_value

_TOKENS = re.compile(rb"(?P<ws>[ \t\r\n]+)|(?P<line>//[^\n]*)|(?P<block>/\*.*?\*/)", re.S)
_OPS = ("add", "remove", "replace", "move", "copy", "test")


def _split(extra: bytes) -> tuple[int, int]:
    """Ownership split ``(a_end, b_start)``: ``extra[:a_end]`` is A's, ``extra[b_start:]`` is B's."""
    toks = [(m.lastgroup, m.start(), m.end()) for m in _TOKENS.finditer(extra)]
    dividers = [(s, e) for k, s, e in toks if k == "ws" and extra.count(b"\n", s, e) >= 2]
    if dividers:
        a_end = dividers[0][0]
        if any(k == "line" and e == a_end for k, _, e in toks):
            a_end += 1  # a line comment keeps its newline
        return a_end, dividers[-1][1]
    i = 0
    if toks and toks[0][0] == "ws":
        i = 1
    if i < len(toks) and toks[i][0] != "ws":
        end = toks[i][2]
        if toks[i][0] == "line":
            end += 1  # the comment's newline
        prefix = extra[:end]
        if prefix.count(b"\n") == 1 and prefix.endswith(b"\n"):
            return end, end
    return 0, 0


def _has_comment(b: bytes) -> bool:
    return bool(b.strip(b" \t\r\n"))


def _close_line(extra: bytes) -> bytes:
    """*extra* with a newline added if it ends inside a ``//`` comment."""
    last = None
    for m in _TOKENS.finditer(extra):
        if m.lastgroup != "ws" or b"\n" in m.group():
            last = m.lastgroup
    return extra + b"\n" if last == "line" else extra


def _leading(extra: bytes) -> bytes:
    """The comments *extra*'s next item owns, from the first comment on (leading whitespace skipped)."""
    _, b = _split(extra)
    part = extra[b:]
    k = len(part) - len(part.lstrip(b" \t\r\n"))
    return part[k:] if _has_comment(part) else b""


def _trailing(extra: bytes) -> bytes:
    """The comments *extra*'s previous item owns."""
    a, _ = _split(extra)
    return _close_line(extra[:a]) if _has_comment(extra[:a]) else b""


@dataclass
class _Item:
    """A value to insert, with the comments that travel with it."""

    value: Value
    leading: bytes = b""
    trailing: bytes = b""


@dataclass
class _Op:
    index: int
    op: str
    path: str
    from_: str | None
    value: _Item | None


# --- reading the patch ---------------------------------------------------------------------------------

def _err(index: int, msg: str) -> HuJSONError:
    return HuJSONError(f"patch operation {index}: {msg}")


def _ops_from_tree(doc: Value) -> list[_Op]:
    arr = doc.value
    if not isinstance(arr, Array):
        raise HuJSONError("patch must be a JSON array")
    ops = []
    for i, elem in enumerate(arr.elements):
        obj = elem.value
        if not isinstance(obj, Object):
            raise _err(i, "must be a JSON object")
        fields: dict[str, Any] = {}
        value: _Item | None = None
        for k, m in enumerate(obj.members):
            assert isinstance(m.name.value, Literal)
            name = m.name.value.decode()
            if name in fields:
                raise _err(i, f"duplicate name {json.dumps(name, ensure_ascii=False)}")
            if name in ("op", "path", "from"):
                if m.value.kind != '"':
                    raise _err(i, f'member "{name}" must be a JSON string')
                assert isinstance(m.value.value, Literal)
                fields[name] = m.value.value.decode()
            elif name == "value":
                nxt = obj.members[k + 1].name.before_extra if k + 1 < len(obj.members) else obj.after_extra
                value = _Item(Value(m.value.clone().value), _leading(m.name.before_extra), _trailing(nxt))
                fields[name] = value
            else:
                fields[name] = None
        ops.append(_check(i, fields, value))
    return ops


def _ops_from_data(data: list[Any]) -> list[_Op]:
    ops = []
    for i, obj in enumerate(data):
        if not isinstance(obj, dict):
            raise _err(i, "must be a JSON object")
        for name in ("op", "path", "from"):
            if name in obj and not isinstance(obj[name], str):
                raise _err(i, f'member "{name}" must be a JSON string')
        value = None
        if "value" in obj:
            try:
                text = json.dumps(obj["value"], ensure_ascii=False, allow_nan=False, separators=(",", ":"))
            except (TypeError, ValueError) as err:
                raise _err(i, f"value is not JSON data: {err}") from None
            value = _Item(Value(parse(text.encode("utf-8", "surrogatepass")).value))
        ops.append(_check(i, dict(obj), value))
    return ops


def _check(i: int, fields: dict[str, Any], value: _Item | None) -> _Op:
    if "op" not in fields:
        raise _err(i, 'missing required member "op"')
    op = fields["op"]
    if op not in _OPS:
        raise _err(i, f"unknown operation {json.dumps(op, ensure_ascii=False)}")
    required = ["path"] + (["from"] if op in ("move", "copy") else []) + (
        ["value"] if op in ("add", "replace", "test") else [])
    for name in required:
        if name not in fields:
            raise _err(i, f'missing required member "{name}"')
    path = fields["path"]
    try:
        split_pointer(path)
        if "from" in fields and op in ("move", "copy"):
            split_pointer(fields["from"])
    except HuJSONError as err:
        raise _err(i, err.reason) from None
    return _Op(i, op, path, fields.get("from") if op in ("move", "copy") else None, value)


# --- tree edits ----------------------------------------------------------------------------------------

def _before(comp: Object | Array, i: int) -> bytes:
    return comp.members[i].name.before_extra if isinstance(comp, Object) else comp.elements[i].before_extra


def _set_before(comp: Object | Array, i: int, extra: bytes) -> None:
    if isinstance(comp, Object):
        comp.members[i].name.before_extra = extra
    else:
        comp.elements[i].before_extra = extra


def _next_extra(comp: Object | Array, i: int) -> bytes:
    n = len(comp.members) if isinstance(comp, Object) else len(comp.elements)
    return _before(comp, i + 1) if i + 1 < n else comp.after_extra


def _set_next_extra(comp: Object | Array, i: int, extra: bytes) -> None:
    n = len(comp.members) if isinstance(comp, Object) else len(comp.elements)
    if i + 1 < n:
        _set_before(comp, i + 1, extra)
    else:
        comp.after_extra = extra


def _join_kept(kept: bytes, rest: bytes, rest_at_line_start: bool) -> bytes:
    """Put what stays of a removed item's before-extra in front of the next extra."""
    body = _close_line(kept.rstrip(b" \t\r\n"))
    if body.endswith(b"\n"):
        if not rest_at_line_start and rest.lstrip(b" \t").startswith(b"\n"):
            rest = rest[rest.index(b"\n") + 1:]
    elif rest and rest[:1] not in (b" ", b"\t", b"\n", b"\r"):
        body += b" "
    return body + rest


def _remove(comp: Object | Array, i: int) -> _Item:
    """Remove item *i* with its comments; return it with them."""
    before = _before(comp, i)
    _a, b = _split(before)
    kept = before[:b]
    leading = _leading(before)
    nxt = _next_extra(comp, i)
    na, _ = _split(nxt)
    trailing = _close_line(nxt[:na]) if _has_comment(nxt[:na]) else b""
    rest = nxt[na:] if trailing else nxt
    if _has_comment(kept):
        rest = _join_kept(kept, rest, trailing.endswith(b"\n"))
    val = comp.members.pop(i).value if isinstance(comp, Object) else comp.elements.pop(i)
    n = len(comp.members) if isinstance(comp, Object) else len(comp.elements)
    if i < n:
        _set_before(comp, i, rest)
    else:
        comp.after_extra = rest
        if n == 0:
            comp.trailing_comma = False
    return _Item(Value(val.value), leading, trailing)


def _attach_trailing(trailing: bytes, rest: bytes) -> bytes:
    """*trailing* comments followed by *rest*, without doubling the newline between them."""
    if not trailing:
        return rest
    trailing = _close_line(trailing)
    if trailing.endswith(b"\n") and rest.lstrip(b" \t").startswith(b"\n"):
        rest = rest[rest.index(b"\n") + 1:]
    return trailing + rest


def _insert(comp: Object | Array, i: int, item: _Item, name: str | None = None) -> None:
    """Insert *item* as item *i* of *comp* (for objects, a member named *name*)."""
    n = len(comp.members) if isinstance(comp, Object) else len(comp.elements)
    extra = _before(comp, i) if i < n else comp.after_extra
    a, _b = _split(extra)
    prev_own, rest = extra[:a], extra[a:]
    before = prev_own + (b"\n" + item.leading if item.leading else b"")
    after_rest = _attach_trailing(item.trailing, rest)
    new = Value(item.value.value)
    if isinstance(comp, Object):
        assert name is not None
        lit = Literal.string(name)
        comp.members.insert(i, ObjectMember(Value(lit, before), new))
    else:
        new.before_extra = before
        comp.elements.insert(i, new)
    if i + 1 <= n:
        _set_before(comp, i + 1, after_rest)
    else:
        comp.after_extra = after_rest


def _replace(parent: Object | Array | None, root: Value, key: str | int | None, target: Value,
             item: _Item) -> None:
    target.value = item.value.value
    if parent is None:
        if item.leading:
            root.before_extra = _close_line(item.leading)
        if item.trailing:
            root.after_extra = item.trailing
        return
    if isinstance(parent, Object):
        assert isinstance(key, str)
        i = member_index(parent, key)
    else:
        assert isinstance(key, int)
        i = key
    assert i is not None
    if item.leading:
        before = _before(parent, i)
        _, b = _split(before)
        part = before[b:]
        ws = part[: len(part) - len(part.lstrip(b" \t\r\n"))]
        tail = part[len(part.rstrip(b" \t\r\n")):] if _has_comment(part) else ws
        body = item.leading.rstrip(b" \t\r\n")
        if b"\n" not in tail:
            body = _close_line(body)
        _set_before(parent, i, before[:b] + ws + body + tail)
    if item.trailing:
        nxt = _next_extra(parent, i)
        na, _ = _split(nxt)
        _set_next_extra(parent, i, _attach_trailing(item.trailing, nxt[na:]))


def _decode_for_test(v: Value) -> Any:
    c = v.clone()
    standardize_value(c)
    text = c.pack().decode("utf-8", "replace")

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        return dict(items)

    try:
        data = json.loads(text, parse_int=float, object_pairs_hook=pairs)
    except (ValueError, RecursionError):
        return None
    stack = [data]
    while stack:
        x = stack.pop()
        if isinstance(x, float) and math.isinf(x):
            return None
        if isinstance(x, dict):
            stack.extend(x.values())
        elif isinstance(x, list):
            stack.extend(x)
    return data


def _deep_equal(a: Any, b: Any) -> bool:
    stack = [(a, b)]
    while stack:
        x, y = stack.pop()
        if type(x) is not type(y):
            return False
        if isinstance(x, dict):
            if x.keys() != y.keys():
                return False
            stack.extend((x[k], y[k]) for k in x)
        elif isinstance(x, list):
            if len(x) != len(y):
                return False
            stack.extend(zip(x, y, strict=True))
        elif x != y:
            return False
    return True


def _is_prefix(prefix: str, path: str) -> bool:
    return path == prefix or path.startswith(prefix + "/")


def _apply(root: Value, op: _Op) -> None:
    i = op.index
    try:
        if op.op in ("add", "replace", "test"):
            assert op.value is not None
            item = _Item(op.value.value.clone(), op.value.leading, op.value.trailing)
            if op.op == "add":
                _add(root, op.path, item, i)
            elif op.op == "replace":
                if op.path == "":
                    raise _err(i, "cannot replace root value")
                loc = locate(root, op.path)
                if loc.found is None:
                    raise _err(i, "value not found")
                assert loc.parent is not None and not isinstance(loc.parent.value, Literal)
                _replace(loc.parent.value, root, loc.key, loc.found, item)
            else:
                loc = locate(root, op.path)
                if loc.found is None:
                    raise _err(i, "value not found")
                want, got = _decode_for_test(item.value), _decode_for_test(loc.found)
                if want is None or got is None or not _deep_equal(want, got):
                    raise _err(i, f"values differ at {json.dumps(op.path, ensure_ascii=False)}")
        elif op.op == "remove":
            if op.path == "":
                raise _err(i, "cannot remove root value")
            _take(root, op.path, i)
        else:
            assert op.from_ is not None
            if op.from_ == "":
                raise _err(i, f"cannot {op.op} root value")
            if op.op == "move":
                if _is_prefix(op.from_, op.path):
                    raise _err(i, f"cannot move {json.dumps(op.from_)} into {json.dumps(op.path)}")
                item = _take(root, op.from_, i)
            else:
                loc = locate(root, op.from_)
                if loc.found is None:
                    raise _err(i, "value not found")
                item = _owned_copy(loc)
            _add(root, op.path, item, i)
    except HuJSONError as err:
        if err.reason.startswith("patch operation"):
            raise
        raise _err(i, err.reason) from None


def _owned_copy(loc: Any) -> _Item:
    found: Value = loc.found
    parent = loc.parent.value
    if isinstance(parent, Object):
        k = member_index(parent, loc.key)
        assert k is not None
    else:
        k = loc.key
    return _Item(Value(found.clone().value), _leading(_before(parent, k)), _trailing(_next_extra(parent, k)))


def _take(root: Value, path: str, i: int) -> _Item:
    loc = locate(root, path)
    if loc.found is None:
        raise _err(i, "value not found")
    assert loc.parent is not None
    parent = loc.parent.value
    assert not isinstance(parent, Literal)
    if isinstance(parent, Object):
        assert isinstance(loc.key, str)
        k = member_index(parent, loc.key)
        assert k is not None
    else:
        assert isinstance(loc.key, int)
        k = loc.key
    return _remove(parent, k)


def _add(root: Value, path: str, item: _Item, i: int) -> None:
    if path == "":
        root.value = item.value.value
        if item.leading:
            root.before_extra = _close_line(item.leading)
        if item.trailing:
            root.after_extra = item.trailing
        return
    loc = locate(root, path)
    if loc.parent_missing or loc.parent is None:
        raise _err(i, "value not found")
    parent = loc.parent.value
    if isinstance(parent, Object):
        assert isinstance(loc.key, str)
        if loc.found is not None:
            _replace(parent, root, loc.key, loc.found, item)
        else:
            _insert(parent, len(parent.members), item, loc.key)
    elif isinstance(parent, Array):
        assert isinstance(loc.key, int)
        _insert(parent, min(loc.key, len(parent.elements)), item)
    else:
        raise _err(i, "value not found")


# --- entry points --------------------------------------------------------------------------------------

def read_patch(patch_doc: str | bytes | list[Any]) -> list[_Op]:
    """Parse and check a whole patch document; raises :class:`HuJSONError`."""
    if isinstance(patch_doc, list):
        return _ops_from_data(patch_doc)
    return _ops_from_tree(parse(as_bytes(patch_doc)))


def patch_value(v: Value, patch_doc: str | bytes | list[Any]) -> None:
    """Apply *patch_doc* to the tree in place, all or nothing. Offsets are not updated (as in Go)."""
    ops = read_patch(patch_doc)
    work = v.clone()
    for op in ops:
        _apply(work, op)
    v.before_extra, v.value, v.after_extra = work.before_extra, work.value, work.after_extra


def patch(src: str | bytes, patch_doc: str | bytes | list[Any]) -> bytes:
    """Apply an RFC 6902 patch to HuJSON text, keeping comments; does not format the result.

    *patch_doc* is HuJSON text (comments and trailing commas allowed; the comments around a ``value``
    travel with it) or a list of operation dicts. Raises :class:`HuJSONError`
    (``hujson: patch operation N: ...``) and applies nothing when any operation fails.
    """
    v = parse(as_bytes(src))
    patch_value(v, patch_doc)
    return v.pack()
