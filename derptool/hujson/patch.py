"""``patch``: RFC 6902 JSON Patch over the syntax tree, moving comments exactly as Go's hujson does.

The patch (HuJSON text, or Python data) is parsed and checked whole before anything is applied, and the
operations run in order with Go's semantics and messages. Unlike Go's ``Value.Patch`` (which leaves
earlier operations applied when a later one fails), :func:`patch` and :func:`patch_value` are all or
nothing: on any error they raise and change nothing, so a caller's file is never half patched.

Comment ownership (Go's ``classifyComments``): in the extra between items A and B, blank lines
("dividers") separate what A owns (before the first divider) from what B owns (from the last divider
on); without dividers A owns only a ``// c`` that ends A's line, and B the rest. Remove takes an item's
comments with it, insert and replace place the value's comments around it.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any

from derptool.hujson.ast import Array, Literal, Object, ObjectMember, Value, go_clone
from derptool.hujson.errors import HuJSONError
from derptool.hujson.gotext import decode_string, fix_surrogates, go_quote, go_text
from derptool.hujson.parse import as_bytes, comment_len, no_gc, parse_tree, ws_len
from derptool.hujson.pointer import NOT_FOUND, locate
from derptool.hujson.shallow import full_value, shallow_tree
from derptool.hujson.standard import standardize_value

_OPS = frozenset(("add", "remove", "replace", "move", "copy", "test"))
_WS = b" \t\r\n"
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


# --- comment ownership (on one extra) --------------------------------------------------------------------


def _has_comment(b: bytes) -> bool:
    return bool(b.strip(_WS))


def classify(b: bytes) -> tuple[int, int]:
    """``(prev_end, curr_start)``: ``b[:prev_end]`` belongs to the item before, ``b[curr_start:]`` after."""
    first = last = count = 0
    n = prev_nl = 0
    size = len(b)
    while n < size:
        nw = ws_len(b, n)
        if prev_nl + b.count(b"\n", n, n + nw) >= 2:
            if count == 0:
                first = n
            last = n
            count += 1
        n += nw
        nc = comment_len(b, n)
        if nc <= 0:
            break
        prev_nl = 1 if b[n + nc - 1] == 0x0A else 0
        n += nc
    if count == 0:
        nw = ws_len(b, 0)
        nc = max(comment_len(b, nw), 0)
        n = nw + nc
        if b.count(b"\n", 0, n) == 1 and b[:n].endswith(b"\n"):
            return n, n
        return 0, 0
    return first, last


def _extract_leading(b: bytes) -> tuple[bytes, bytes]:
    """``(leading comments, what stays)`` from the bottom of *b*."""
    _, cs = classify(b)
    keep = cs + ws_len(b, cs)
    return b[keep:], b[:keep]


def _extract_trailing(b: bytes) -> tuple[bytes, bytes]:
    """``(trailing comments, what stays)`` from the top of *b* (a newline that ends them stays too)."""
    pe, _ = classify(b)
    trailing = b[:pe]
    if trailing.endswith(b"\n"):
        pe -= 1
    return trailing, b[pe:]


def _inject_leading(b: bytes, leading: bytes) -> bytes:
    if not leading:
        return b
    _, cs = classify(b)
    b = b[: cs + ws_len(b, cs)]
    leading = leading[ws_len(leading, 0) :]
    if leading:
        i = b.rfind(b"\n")
        if i < 0 or _has_comment(b[i:]):
            b += b"\n"
        b += leading
    return b


def _inject_trailing(b: bytes, trailing: bytes) -> bytes:
    if not trailing:
        return b
    pe, _ = classify(b)
    if b[:pe].endswith(b"\n"):
        pe -= 1
    b = b[pe:]
    if _has_comment(trailing):
        if trailing.endswith(b"\n") and b.startswith(b"\n"):
            trailing = trailing[:-1]
        b = trailing + b
    return b


# --- items of a composite --------------------------------------------------------------------------------


def _before_at(comp: Object | Array, i: int) -> bytes:
    if type(comp) is Object:
        return comp.members[i].name.before_extra if i < len(comp.members) else comp.after_extra
    return comp.elements[i].before_extra if i < len(comp.elements) else comp.after_extra  # type: ignore[union-attr]


def _set_before_at(comp: Object | Array, i: int, b: bytes) -> None:
    if type(comp) is Object:
        if i < len(comp.members):
            comp.members[i].name.before_extra = b
            return
    elif i < len(comp.elements):  # type: ignore[union-attr]
        comp.elements[i].before_extra = b  # type: ignore[union-attr]
        return
    comp.after_extra = b


def _value_at(comp: Object | Array, i: int) -> Value:
    return comp.members[i].value if type(comp) is Object else comp.elements[i]  # type: ignore[union-attr]


@dataclass
class Item:
    """A value on the move with the comments that travel with it (Go: a Value's before/after extra)."""

    value: Any  # Literal | Object | Array
    leading: bytes = b""
    trailing: bytes = b""


def _copy_at(comp: Object | Array, i: int) -> Item:
    full_value(_value_at(comp, i))  # Go's Clone works on the whole tree
    leading, _ = _extract_leading(_before_at(comp, i))
    trailing = _before_at(comp, i + 1)[: classify(_before_at(comp, i + 1))[0]]
    return Item(go_clone(Value(_value_at(comp, i).value)).value, leading, trailing)


def _replace_at(comp: Object | Array, i: int, item: Item) -> None:
    _set_before_at(comp, i, _inject_leading(_before_at(comp, i), item.leading))
    _set_before_at(comp, i + 1, _inject_trailing(_before_at(comp, i + 1), item.trailing))
    _value_at(comp, i).value = item.value


def _insert_at(comp: Object | Array, i: int, item: Item, name: str | None = None) -> None:
    new = Value(item.value)
    if type(comp) is Object:
        assert name is not None
        comp.members.insert(i, ObjectMember(Value(Literal.string(name)), new))
    else:
        comp.elements.insert(i, new)  # type: ignore[union-attr]
    trailing, rest = _extract_trailing(_before_at(comp, i + 1))
    _set_before_at(comp, i + 1, rest)
    _set_before_at(comp, i, _inject_trailing(_before_at(comp, i), trailing))
    _set_before_at(comp, i, _inject_leading(_before_at(comp, i), item.leading))
    _set_before_at(comp, i + 1, _inject_trailing(_before_at(comp, i + 1), item.trailing))


def _remove_at(comp: Object | Array, i: int) -> Item:
    leading, stay = _extract_leading(_before_at(comp, i))
    _set_before_at(comp, i, stay)
    trailing, rest = _extract_trailing(_before_at(comp, i + 1))
    _set_before_at(comp, i + 1, rest)
    if _has_comment(stay):
        _set_before_at(comp, i + 1, stay + rest[ws_len(rest, 0) :])
    value = comp.members.pop(i).value.value if isinstance(comp, Object) else comp.elements.pop(i).value
    return Item(value, leading, trailing)


# --- reading the patch -----------------------------------------------------------------------------------


@dataclass
class Operation:
    """One checked patch operation."""

    op: str
    path: str
    from_: str
    value: Item | None


def _err(index: int, msg: str) -> HuJSONError:
    return HuJSONError(f"patch operation {index}: {msg}")


def _ops_from_tree(doc: Value) -> list[Operation]:
    arr = doc.value
    if not isinstance(arr, Array):
        raise HuJSONError("patch must be a JSON array")
    ops = []
    for i, elem in enumerate(arr.elements):
        obj = elem.value
        if not isinstance(obj, Object):
            raise _err(i, "must be a JSON object")
        seen: set[str] = set()
        op = Operation("", "", "", None)
        for j, m in enumerate(obj.members):
            name = decode_string(m.name.value.raw)  # type: ignore[union-attr]
            if name in seen:
                raise _err(i, f"duplicate name {go_quote(name)}")
            seen.add(name)
            if name in ("op", "path", "from"):
                lit = m.value.value
                if type(lit) is not Literal or lit.raw[:1] != b'"':
                    raise _err(i, f"member {go_quote(name)} must be a JSON string")
                text = decode_string(lit.raw)
                if name == "op":
                    if text not in _OPS:
                        raise _err(i, f"unknown operation {go_quote(text)}")
                    op.op = text
                elif name == "path":
                    op.path = text
                else:
                    op.from_ = text
            elif name == "value":
                leading, _ = _extract_leading(_before_at(obj, j))
                trailing = _before_at(obj, j + 1)[: classify(_before_at(obj, j + 1))[0]]
                op.value = Item(m.value.value, leading, trailing)
        if "op" not in seen:
            raise _err(i, 'missing required member "op"')
        if "path" not in seen:
            raise _err(i, 'missing required member "path"')
        if "from" not in seen and op.op in ("move", "copy"):
            raise _err(i, 'missing required member "from"')
        if "value" not in seen and op.op in ("add", "replace", "test"):
            raise _err(i, 'missing required member "value"')
        ops.append(op)
    return ops


def _data_text(ops: list[Any]) -> bytes:
    """A patch given as Python data, as compact JSON text (values keep no whitespace, as before)."""
    try:
        text = json.dumps(ops, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    except (TypeError, ValueError):
        for i, op in enumerate(ops):
            try:
                json.dumps(op, allow_nan=False)
            except (TypeError, ValueError) as err:
                raise _err(i, f"value is not JSON data: {err}") from None
        raise
    return text.encode("utf-8", "surrogatepass")


def read_patch(patch_doc: str | bytes | list[Any]) -> list[Operation]:
    """Parse and check a whole patch document (HuJSON text or a list of dicts); raises HuJSONError."""
    if isinstance(patch_doc, list):
        return _ops_from_tree(parse_tree(_data_text(patch_doc)))
    return _ops_from_tree(parse_tree(as_bytes(patch_doc)))


# --- applying it -----------------------------------------------------------------------------------------


def _decode_for_test(value: Any) -> Any:
    """Go's ``equalValue`` decoding: standardize, decode to generic data; ``None`` when that fails."""
    v = Value(value).clone()
    standardize_value(v)
    raw = v.pack()
    try:
        data = json.loads(go_text(raw), parse_int=float)
    except (ValueError, RecursionError):
        return None
    fix = _SURROGATE_ESCAPE.search(raw) is not None
    stack = [data]
    out_of_range = False
    while stack:
        x = stack.pop()
        if type(x) is float:
            if math.isinf(x):
                out_of_range = True
        elif type(x) is dict:
            if fix:
                items = list(x.items())
                x.clear()
                for k, val in items:
                    x[fix_surrogates(k)] = fix_surrogates(val) if type(val) is str else val
            stack.extend(x.values())
        elif type(x) is list:
            if fix:
                x[:] = [fix_surrogates(e) if type(e) is str else e for e in x]
            stack.extend(x)
    if out_of_range:
        return None
    return fix_surrogates(data) if fix and type(data) is str else data


def _deep_equal(a: Any, b: Any) -> bool:
    stack = [(a, b)]
    while stack:
        x, y = stack.pop()
        if type(x) is not type(y):
            return False
        if type(x) is dict:
            if x.keys() != y.keys():
                return False
            stack.extend((x[k], y[k]) for k in x)
        elif type(x) is list:
            if len(x) != len(y):
                return False
            stack.extend(zip(x, y, strict=True))
        elif x != y:
            return False
    return True


def _has_path_prefix(s: str, prefix: str) -> bool:
    return s.startswith(prefix) and (len(s) == len(prefix) or s[len(prefix)] == "/")


def _add(root: Value, i: int, path: str, item: Item) -> None:
    loc, err = locate(root, path)
    if err is not None and (err.reason != NOT_FOUND or not loc.complete):
        raise _err(i, err.reason)
    comp = loc.parent
    if comp is None:
        root.value, root.before_extra, root.after_extra = item.value, item.leading, item.trailing
    elif type(comp) is Object:
        if loc.index < len(comp.members):
            _replace_at(comp, loc.index, item)
        else:
            _insert_at(comp, loc.index, item, loc.name)
    else:
        _insert_at(comp, loc.index, item)


def _apply(root: Value, i: int, op: Operation) -> None:
    if op.op == "add":
        assert op.value is not None
        _add(root, i, op.path, Item(op.value.value, op.value.leading, op.value.trailing))
    elif op.op in ("remove", "replace"):
        loc, err = locate(root, op.path)
        if err is not None:
            raise _err(i, err.reason)
        if loc.parent is None:
            raise _err(i, f"cannot {op.op} root value")
        if op.op == "remove":
            _remove_at(loc.parent, loc.index)
        else:
            assert op.value is not None
            _replace_at(loc.parent, loc.index, op.value)
    elif op.op in ("move", "copy"):
        if op.from_ == "" or (op.op == "move" and _has_path_prefix(op.path, op.from_)):
            raise _err(i, f"cannot {op.op} {go_quote(op.from_)} into {go_quote(op.path)}")
        loc, err = locate(root, op.from_)
        if err is not None:
            raise _err(i, err.reason)
        assert loc.parent is not None
        item = _remove_at(loc.parent, loc.index) if op.op == "move" else _copy_at(loc.parent, loc.index)
        _add(root, i, op.path, item)
    else:
        loc, err = locate(root, op.path)
        if err is not None:
            raise _err(i, err.reason)
        assert op.value is not None and loc.found is not None
        full_value(loc.found)
        want, got = _decode_for_test(loc.found.value), _decode_for_test(op.value.value)
        if want is None or got is None or not _deep_equal(want, got):
            raise _err(i, f"values differ at {go_quote(op.path)}")


def apply_operations(v: Value, ops: list[Operation]) -> None:
    """Apply checked operations to *v* in place, Go's way: a failing operation leaves earlier ones applied.

    Each operation's value is inserted as is (not copied), so a list of operations is applied once.
    """
    for i, op in enumerate(ops):
        _apply(v, i, op)


def patch_value(v: Value, patch_doc: str | bytes | list[Any]) -> None:
    """Apply *patch_doc* to the tree in place, all or nothing. Offsets are not updated (as in Go)."""
    ops = read_patch(patch_doc)
    with no_gc():
        work = v.clone()
        apply_operations(work, ops)
    v.before_extra, v.value, v.after_extra = work.before_extra, work.value, work.after_extra


def patch(src: str | bytes, patch_doc: str | bytes | list[Any]) -> bytes:
    """Apply an RFC 6902 patch to HuJSON text, keeping comments; does not format the result.

    *patch_doc* is HuJSON text (comments and trailing commas allowed; the comments around a ``value``
    travel with it) or a list of operation dicts. Raises :class:`HuJSONError`
    (``hujson: patch operation N: ...``) and returns nothing when any operation fails.
    """
    b = as_bytes(src)
    with no_gc():
        v = shallow_tree(b) or parse_tree(b)  # only the levels on the operations' paths are built
        ops = read_patch(patch_doc)
        apply_operations(v, ops)
        return v.pack()
