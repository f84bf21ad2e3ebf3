"""Property tests and fuzzing: generated JSON with whitespace and comments injected at every legal place."""

from __future__ import annotations

import copy
import json
import random
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from derptool import hujson
from derptool.hujson import HuJSONError
from derptool.hujson.ast import Array, Literal, Object, Value
from derptool.hujson.decode import _fix_surrogates, _has_surrogate_escape
from derptool.hujson.parse import parse
from derptool.hujson.shallow import open_value, shallow_tree
from derptool.hujson.standard import standardize_value

SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=12),
)
json_data = st.recursive(
    scalars,
    lambda kids: st.one_of(st.lists(kids, max_size=5), st.dictionaries(st.text(max_size=8), kids, max_size=5)),
    max_leaves=25,
)
comment_text = st.text(st.characters(blacklist_categories=["Cs"], blacklist_characters="\n\r"), max_size=10)
extra_piece = st.one_of(
    st.sampled_from([" ", "\t", "\n", "\r\n", "\n\n", "    "]),
    comment_text.map(lambda t: f"//{t}\n"),
    comment_text.map(lambda t: "/*" + t.replace("*/", "* /") + "*/"),
    st.just("/*\n * multi\n   line\n */"),
)
extras = st.lists(extra_piece, max_size=3).map("".join)


def render(data: Any, draw: Any) -> str:
    """HuJSON text for *data* with random extras everywhere and random trailing commas."""

    def ex() -> str:
        return str(draw(extras))

    def lit(x: Any) -> str:
        return json.dumps(x, ensure_ascii=bool(draw(st.booleans())))

    def val(x: Any) -> str:
        if isinstance(x, dict):
            parts = [f"{ex()}{lit(k)}{ex()}:{ex()}{val(v)}{ex()}" for k, v in x.items()]
            comma = "," if parts and draw(st.booleans()) else ""
            return "{" + ",".join(parts) + comma + ex() + "}"
        if isinstance(x, list):
            parts = [f"{ex()}{val(v)}{ex()}" for v in x]
            comma = "," if parts and draw(st.booleans()) else ""
            return "[" + ",".join(parts) + comma + ex() + "]"
        return lit(x)

    return ex() + val(data) + ex()


@st.composite
def documents(draw: Any) -> tuple[Any, bytes]:
    data = draw(json_data)
    return data, render(data, draw).encode()


@SETTINGS
@given(documents())
def test_round_trip_and_decode(doc: tuple[Any, bytes]) -> None:
    data, src = doc
    v = parse(src)
    assert v.pack() == src
    assert hujson.loads(src) == data
    std = hujson.standardize(src)
    assert len(std) == len(src)
    assert json.loads(std) == hujson.loads(src)
    mini = hujson.minimize(src)
    assert json.loads(mini) == data
    assert hujson.is_standard(mini) and hujson.minimize(mini) == mini
    assert all(not x.before_extra and not x.after_extra for x in parse(mini).all())


@SETTINGS
@given(documents())
def test_format_properties(doc: tuple[Any, bytes]) -> None:
    data, src = doc
    out = hujson.format(src)
    assert hujson.format(out) == out
    assert hujson.loads(out) == data
    assert out.endswith(b"\n") and not out.endswith(b"\n\n") and not out[:1].isspace()
    assert b"\r" not in out


@SETTINGS
@given(json_data, st.sampled_from([None, 0, 1, 2, "\t"]))
def test_format_keeps_standard_json_standard(data: Any, indent: Any) -> None:
    src = json.dumps(data, indent=indent)
    out = hujson.format(src)
    assert hujson.is_standard(out)
    assert json.loads(out) == data


@SETTINGS
@given(documents())
def test_standardize_keeps_every_offset(doc: tuple[Any, bytes]) -> None:
    _, src = doc
    a, b = parse(src), parse(hujson.standardize(src))
    assert [(x.start_offset, x.end_offset) for x in a.all()] == [(x.start_offset, x.end_offset) for x in b.all()]


def _slow_standardize(src: bytes) -> bytes:
    v = parse(src)
    standardize_value(v)
    return v.pack()


def _outcome(f: Any, src: bytes) -> tuple[str, Any]:
    try:
        return "ok", f(src)
    except HuJSONError as err:
        return "error", str(err)


@st.composite
def mutated(draw: Any) -> bytes:
    _, src = draw(documents())
    b = bytearray(src)
    for _ in range(draw(st.integers(1, 4))):
        pos = draw(st.integers(0, len(b)))
        kind = draw(st.sampled_from(["insert", "delete", "replace"]))
        byte = draw(st.sampled_from(list(b',:[]{}"/*\n\\ 0-+.etn\xff\xc3\x0c')))
        if kind == "insert":
            b.insert(pos, byte)
        elif pos < len(b):
            if kind == "delete":
                del b[pos]
            else:
                b[pos] = byte
    return bytes(b)


@SETTINGS
@given(mutated())
def test_fast_path_agrees_with_parser(src: bytes) -> None:
    """The regex fast path of standardize/loads accepts and rejects exactly what the parser does."""
    assert _outcome(hujson.standardize, src) == _outcome(_slow_standardize, src)
    kind, data = _outcome(hujson.loads, src)
    assert kind == _outcome(parse, src)[0]
    if kind == "ok":  # and the data is what the parser's standardized text decodes to
        assert data == _slow_loads(src)


def _slow_loads(src: bytes) -> Any:
    data = json.loads(_slow_standardize(src).decode("utf-8", "replace"))
    return _fix_surrogates(data) if _has_surrogate_escape(src) else data


def _shape(v: Value) -> list[tuple[Any, ...]]:
    """Everything of a tree but its offsets, value by value."""
    out: list[tuple[Any, ...]] = []
    for x in v.all():
        t = x.value
        inner = t.raw if isinstance(t, Literal) else (t.kind, t.after_extra)
        out.append((x.before_extra, x.after_extra, inner))
    return out


def _open_all(v: Value) -> Value:
    stack = [v]
    while stack:
        x = stack.pop()
        open_value(x)
        t = x.value
        if isinstance(t, Object):
            stack.extend(m.value for m in t.members)
        elif isinstance(t, Array):
            stack.extend(t.elements)
    return v


ROOT_LEVEL = [
    b'{"a": 01}',
    b'{"a": tru}',
    b'{"a": NaN}',
    b"[-Infinity]",
    b'{"a\\x": 1}',
    b'{"a": "\x01"}',
    b"[1,,2]",
    b'{"a" 1}',
    b'{"a": 1 "b": 2}',
    b"[1 2]",
    b"{1: 2}",
    b'["a",]x',
    b'{"a": -}',
    b"[,]",
    b"{,}",
    b'{"a":}',
    b'{"a": [1,]}',
    b"[1, 2,]",
    b"[/*x*/]",
    b'{"a": {"b": [1, 2,],},} // c\n',
    b'"x" 1',
    b"1 // c",
    b"[1]]",
    b'{"a": 1}, ',
    b'{"a": 1e}',
    b'["\xff"]',
    b"  ",
    b"",
]


def test_shallow_tree_opens_an_ordinary_policy() -> None:
    """The shallow tree hands only unusual text to the parser: an ordinary commented policy opens at once."""
    src = b'{\n\t// owners\n\t"tagOwners": {"tag:a": []},\n\t"acls": [{"action": "accept"}], // last\n}\n'
    shallow = shallow_tree(src)
    assert shallow is not None
    assert shallow.pack() == src
    assert _shape(_open_all(shallow)) == _shape(parse(src))


@pytest.mark.parametrize("src", ROOT_LEVEL)
def test_shallow_tree_on_root_level_cases(src: bytes) -> None:
    test_shallow_tree_is_the_parsers_tree.hypothesis.inner_test(src)  # type: ignore[attr-defined]


@SETTINGS
@given(st.one_of(documents().map(lambda d: d[1]), mutated()))
def test_shallow_tree_is_the_parsers_tree(src: bytes) -> None:
    """The tree patch starts from refuses what the parser refuses, and opens into the parser's tree."""
    shallow = shallow_tree(src)
    try:
        full = parse(src)
    except HuJSONError:
        assert shallow is None
        return
    if shallow is not None:  # None only hands the text to the parser
        assert shallow.pack() == src
        assert _shape(_open_all(shallow)) == _shape(full)


@SETTINGS
@given(st.one_of(st.binary(max_size=64), mutated()))
def test_fuzz_only_hujson_errors(src: bytes) -> None:
    for f in (hujson.parse, hujson.standardize, hujson.minimize, hujson.loads, hujson.format, hujson.is_standard):
        try:
            f(src)
        except HuJSONError as err:
            assert err.offset is not None and err.line is not None and err.column is not None
            assert 0 <= err.offset <= len(src)
            assert str(err).startswith(f"hujson: line {err.line}, column {err.column}: ")


# --- patch against a plain-data model of RFC 6902 (with Go's quirks) -----------------------------------


def _segments(path: str) -> list[str]:
    return [s.replace("~1", "/").replace("~0", "~") for s in path[1:].split("/")] if path else []


def _get(doc: Any, segs: list[str]) -> Any:
    for s in segs:
        doc = doc[s] if isinstance(doc, dict) else doc[int(s)]
    return doc


def _model(doc: Any, ops: list[dict[str, Any]]) -> Any:
    doc = copy.deepcopy(doc)
    for op in ops:
        segs = _segments(op["path"])
        if op["op"] in ("add", "move", "copy"):
            if op["op"] == "add":
                value = copy.deepcopy(op["value"])
            else:
                fsegs = _segments(op["from"])
                parent = _get(doc, fsegs[:-1])
                key: Any = fsegs[-1] if isinstance(parent, dict) else int(fsegs[-1])
                value = copy.deepcopy(parent[key])
                if op["op"] == "move":
                    del parent[key]
            if not segs:
                doc = value
                continue
            parent = _get(doc, segs[:-1])
            if isinstance(parent, dict):
                parent[segs[-1]] = value
            else:
                idx = len(parent) if segs[-1] == "-" else min(int(segs[-1]), len(parent))
                parent.insert(idx, value)
        elif op["op"] == "remove":
            parent = _get(doc, segs[:-1])
            del parent[segs[-1] if isinstance(parent, dict) else int(segs[-1])]
        elif op["op"] == "replace":
            parent = _get(doc, segs[:-1])
            parent[segs[-1] if isinstance(parent, dict) else int(segs[-1])] = copy.deepcopy(op["value"])
    return doc


def _paths(doc: Any, prefix: str = "") -> list[str]:
    out = [prefix]
    if isinstance(doc, dict):
        for k, v in doc.items():
            out += _paths(v, f"{prefix}/{k.replace('~', '~0').replace('/', '~1')}")
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            out += _paths(v, f"{prefix}/{i}")
    return out


@st.composite
def patched(draw: Any) -> tuple[Any, bytes, list[dict[str, Any]]]:
    data = draw(st.dictionaries(st.text(max_size=4), json_data, min_size=1, max_size=5))
    src = render(data, draw).encode()
    rnd = random.Random(draw(st.integers(0, 2**32)))
    ops: list[dict[str, Any]] = []
    model = data
    for _ in range(draw(st.integers(1, 4))):
        paths = [p for p in _paths(model) if p]
        if not paths:
            break
        kind = rnd.choice(["add", "remove", "replace", "move", "copy", "add-new"])
        path = rnd.choice(paths)
        value = draw(json_data)
        if kind == "add-new":
            containers = [p for p in _paths(model) if isinstance(_get(model, _segments(p)), (dict, list))]
            base = rnd.choice(containers)
            target = _get(model, _segments(base))
            key = "-" if isinstance(target, list) else f"new{len(ops)}"
            op: dict[str, Any] = {"op": "add", "path": f"{base}/{key}", "value": value}
        elif kind in ("add", "replace"):
            op = {"op": kind, "path": path, "value": value}
        elif kind == "remove":
            op = {"op": "remove", "path": path}
        else:
            dest_parent = rnd.choice([p for p in _paths(model) if isinstance(_get(model, _segments(p)), dict)])
            dest = f"{dest_parent}/moved{len(ops)}"
            if kind == "move" and (dest == path or dest.startswith(path + "/")):
                continue
            op = {"op": kind, "from": path, "path": dest}
        try:
            model = _model(model, [op])
        except (KeyError, IndexError, TypeError, ValueError):
            continue  # e.g. a move whose destination moved with the removal: not a valid case
        ops.append(op)
    return data, src, ops


@SETTINGS
@given(patched())
def test_patch_matches_model_and_keeps_text_valid(case: tuple[Any, bytes, list[dict[str, Any]]]) -> None:
    data, src, ops = case
    out = hujson.patch(src, ops)
    assert hujson.loads(out) == _model(data, ops)
    assert hujson.format(hujson.format(out)) == hujson.format(out)
    patch_text = json.dumps(ops, separators=(",", ":"), ensure_ascii=False)
    assert hujson.patch(src, patch_text) == out


@pytest.mark.parametrize("seed", range(3))
def test_patch_with_commented_patch_text(seed: int) -> None:
    src = b'{\n\t// groups\n\t"groups": {\n\t\t"group:a": ["x"], // a\n\t},\n\t"acls": [], // none yet\n}\n'
    ops = (
        b'[\n\t// add a group\n\t{"op": "add", "path": "/groups/group:b",\n\t\t// team b\n\t\t"value": ["y"],'
        b" // b\n\t},\n]"
    )
    out = hujson.patch(src, ops)
    assert hujson.loads(out)["groups"] == {"group:a": ["x"], "group:b": ["y"]}
    assert b"// team b" in out and b"// b\n" in out
    assert hujson.parse(out).pack() == out
    del seed


ops_data = st.lists(
    st.dictionaries(
        st.sampled_from(["op", "path", "from", "value", "x"]),
        st.one_of(
            st.sampled_from(
                [
                    "add",
                    "remove",
                    "replace",
                    "move",
                    "copy",
                    "test",
                    "",
                    "/",
                    "/a",
                    "/0",
                    "/a/0",
                    "/-",
                    "/a/-",
                    "/b/c",
                    "~",
                    "/~1",
                ]
            ),
            json_data,
        ),
        max_size=5,
    ),
    max_size=4,
)


@SETTINGS
@given(documents(), st.one_of(st.binary(max_size=40), ops_data))
def test_fuzz_patch_only_hujson_errors(doc: tuple[Any, bytes], ops: Any) -> None:
    _, src = doc
    try:
        out = hujson.patch(src, ops)
    except HuJSONError:
        return
    assert hujson.parse(out).pack() == out
