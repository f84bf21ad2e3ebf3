"""Differential tests: derptool.hujson against Tailscale's Go hujson library (the pinned module).

Three sources of input: every vector of Go's own test suite (tests/data/hujson-go-vectors.json, with
the answers Go gave, so that part runs without Go too), every file in tests/data and examples/, and
generated HuJSON documents (comments everywhere, trailing commas, CRLF, tabs, unicode, deep nesting,
long and short members, patches on them, broken variants; a quarter of them policy-like, one member per
line, the layout ``format`` handles without a tree). derptool must give Go's bytes, and
reject exactly what Go rejects with Go's message (which carries line and column).

The live parts need the Go peer ``hujsonpeer`` (built by ``.ci/build-go-peers``) and skip without it.
``HUJSON_DIFF_EXAMPLES`` sets how many hypothesis examples run (one document each, shrunk on failure) and
``HUJSON_DIFF_DOCS`` how many seeded documents the bulk test sends (500 per round trip).
"""

from __future__ import annotations

import base64
import json
import os
import random
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from derptool import hujson
from derptool.hujson import HuJSONError, position
from tests.support.hujsonpeer import Answer, GoHuJSON, find_peer
from tests.support.prereq import missing_go_peer, need, needs
from tests.support.repo import REPO

ROOT = REPO
VECTORS = json.loads((ROOT / "tests" / "data" / "hujson-go-vectors.json").read_text(encoding="utf-8"))["vectors"]
TRANSFORMS = ("parse", "standardize", "minimize", "format")
EXAMPLES = int(os.environ.get("HUJSON_DIFF_EXAMPLES", "300"))
DOCS = int(os.environ.get("HUJSON_DIFF_DOCS", "100000"))  # the bar for "no difference" (about 3 min)


def _bytes(rec: dict[str, str]) -> bytes:
    return rec["text"].encode("utf-8") if "text" in rec else base64.b64decode(rec["base64"])


def ours(op: str, src: bytes, patch: bytes | None = None, pointer: str | None = None) -> Answer:
    """derptool's answer in the peer's terms."""
    try:
        if op == "find":
            found = hujson.find(src, pointer or "")
            if found is None:
                return Answer(True, None, "")
            return Answer(True, found.pack(), "", True, found.start_offset, found.end_offset)
        if op == "parse":
            out = hujson.parse(src).pack()
        elif op == "patch":
            assert patch is not None
            out = hujson.patch(src, patch)
        else:
            out = getattr(hujson, op)(src)
        return Answer(True, out, "")
    except HuJSONError as err:
        if err.offset is not None:  # the offset agrees with the line and column in the message
            assert (err.line, err.column) == position(src, err.offset)
        return Answer(False, None, str(err))


def same(go: Answer, py: Answer, op: str) -> bool:
    if op == "find":
        return go.found == py.found and (not go.found or (go.output, go.start, go.end) == (py.output, py.start, py.end))
    if go.ok != py.ok:
        return False
    return go.output == py.output if go.ok else go.error == py.error


def _vector_requests() -> Iterator[tuple[str, tuple[Any, ...], dict[str, Any]]]:
    for i, vec in enumerate(VECTORS):
        src = _bytes(vec["input"])
        for op, want in vec["go"].items():
            if op == "find":
                req: tuple[Any, ...] = ("find", src, None, vec["pointer"])
            elif op == "patch":
                req = ("patch", src, _bytes(vec["patch"]))
            else:
                req = (op, src)
            yield f"{vec['suite']}-{i}-{op}", req, want


VECTOR_CASES = list(_vector_requests())


def _recorded(want: dict[str, Any], op: str) -> Answer:
    if op == "find":
        if not want["found"]:
            return Answer(True, None, "")
        return Answer(True, _bytes(want["output"]), "", True, want["start"], want["end"])
    if "error" in want:
        return Answer(False, None, want["error"])
    return Answer(True, _bytes(want["output"]), "")


def test_vector_file_covers_go_suite() -> None:
    suites = {v["suite"] for v in VECTORS}
    assert suites == {"parse", "transform-error", "format", "patch", "line-separator", "find"}
    assert sum(v["suite"] == "format" for v in VECTORS) == 39
    assert sum(v["suite"] == "patch" for v in VECTORS) == 57


@pytest.mark.parametrize(("case", "req", "want"), VECTOR_CASES, ids=[c[0] for c in VECTOR_CASES])
def test_go_vector_recorded(case: str, req: tuple[Any, ...], want: dict[str, Any]) -> None:
    op = req[0]
    assert same(_recorded(want, op), ours(*req), op), case


@pytest.fixture(scope="module")
def go() -> Iterator[GoHuJSON]:
    need(missing_go_peer("hujsonpeer"))
    path = find_peer()
    assert path is not None
    with GoHuJSON(path) as peer:
        yield peer


def _differences(go: GoHuJSON, requests: list[tuple[Any, ...]]) -> list[str]:
    answers = go.batch(requests)
    diffs = []
    for req, ans in zip(requests, answers, strict=True):
        mine = ours(*req)
        if not same(ans, mine, req[0]):
            diffs.append(f"{req[0]} {req[1:]!r}\n  go: {ans}\n  py: {mine}")
    return diffs


def test_go_vectors_live(go: GoHuJSON) -> None:
    """The recorded answers are still what the pinned Go library says, and derptool agrees."""
    requests = [req for _, req, _ in VECTOR_CASES]
    answers = go.batch(requests)
    for (case, req, want), ans in zip(VECTOR_CASES, answers, strict=True):
        assert same(_recorded(want, req[0]), ans, req[0]), f"recorded answer is stale: {case}"
    assert _differences(go, requests) == []


def _corpus() -> list[Path]:
    files = [p for d in ("tests/data", "examples") for p in sorted((ROOT / d).rglob("*")) if p.is_file()]
    return [p for p in files if p.stat().st_size < 5_000_000]


def test_go_corpus_files(go: GoHuJSON) -> None:
    files = _corpus()
    assert len(files) >= 5
    requests = [(op, p.read_bytes()) for p in files for op in TRANSFORMS]
    assert _differences(go, requests) == []


# --- generated documents ---------------------------------------------------------------------------------
# One generator, two sources of choices: hypothesis (shrinks a failure to a small case) and a seeded
# random.Random (cheap enough for the bulk run of HUJSON_DIFF_DOCS documents in batches).

_EXTRA_PIECES = [" ", "  ", "\t", "\t\t", "\n", "\r\n", "\n\n", "\n\n\n", "\r", "\n\r", " \t \n\t", "\n\t\t", "\n\t"]
_BLOCKS = [
    "/*\n * multi\n * line\n */",
    "/*\n\t\t * star\n\t\t */",
    "/* a\n   b\n     c */",
    "/*\n*/",
    "/*\n   */",
    "/* x\n\n   y\n */",
    "/**\n  ** doc\n  **/",
    "/* é\n\t ü */",
    "/*\r\n * crlf\r\n */",
    "/* trailing   \n   spaces   \n*/",
    "/*/ odd */",
    "/***/",
    "/*\n\t\tindented\n\t\t\tmore\n\t*/",
]
_COMMENT_WORDS = [
    "",
    "x",
    "note",
    "TODO: fix",
    "é ü",
    "😂",
    "a  ",
    "tab\there",
    "\u00a0nbsp\u00a0",
    "*/x",
    "//",
    "\x85next",
    "long comment " * 6,
]
_STRING_BODIES = [
    "",
    "a",
    "bb",
    "name",
    "\\n",
    "\\u00e9",
    "\\ud83d\\ude02",
    "\\/",
    "\\\\",
    '\\"',
    "\\u000F",
    "\\t\\r",
    "\\ud800",
    "é😂",
    "\u2028",
    "x" * 40,
    "tag:web-servers-in-the-eu",
    "a\\u0066b",
    "group:engineering-team-with-a-long-name",
    "\x7f",
    "a/b",
    "m~n",
    "ü",
    " ",
]
_NAMES = [
    '"a"',
    '"bb"',
    '"name"',
    '"a/b"',
    '"m~n"',
    '"é"',
    '"long-member-name-for-alignment"',
    '""',
    '"ACLs"',
    '"derpMap"',
    '"k\\u0041"',
]
_NUMBERS = ["0", "-0", "1.5", "-2.25e10", "1E+2", "3.14159E+435", "1e-7", "123456789012345678901234", "42", "-7"]
_PATCH_VALUES = ['{"x": [1, 2]}', "[]", "{}", "[\n// c\n1,\n]", '"new"', "null", "3", '{\n\t"a": 1, // c\n}']
_BREAKERS = [
    b",",
    b":",
    b"{",
    b"}",
    b"[",
    b"]",
    b'"',
    b"/",
    b"/*",
    b"//",
    b"\x00",
    b"\xff",
    b"\xe2\x80\xa8",
    b"\\",
    b"x",
    b"-",
    b"\t",
    b"\x0c",
    b"\xc3",
    b"*/",
]


T = TypeVar("T")


class _Choices:
    """Where the generator's choices come from."""

    def __init__(self, draw: Any = None, rnd: random.Random | None = None) -> None:
        self.draw, self.rnd = draw, rnd

    def pick(self, seq: Sequence[T]) -> T:
        chosen: T = self.draw(st.sampled_from(seq)) if self.draw else self.rnd.choice(seq)  # type: ignore[union-attr]
        return chosen

    def int(self, lo: int, hi: int) -> int:
        return self.draw(st.integers(lo, hi)) if self.draw else self.rnd.randint(lo, hi)  # type: ignore[union-attr]


def _extra(ch: _Choices) -> str:
    out = []
    for _ in range(ch.int(0, 3)):
        k = ch.int(0, 5)
        if k <= 2:
            out.append(ch.pick(_EXTRA_PIECES))
        elif k == 3:
            out.append("//" + ch.pick(_COMMENT_WORDS) + "\n")
        elif k == 4:
            out.append("/*" + ch.pick(_COMMENT_WORDS).replace("*/", "*") + "*/")
        else:
            out.append(ch.pick(_BLOCKS))
    return "".join(out)


def _literal(ch: _Choices) -> str:
    k = ch.int(0, 4)
    if k == 0:
        return ch.pick(["null", "true", "false"])
    if k == 1:
        return ch.pick(_NUMBERS) if ch.int(0, 1) else str(ch.int(-(10**6), 10**6))
    return '"' + "".join(ch.pick(_STRING_BODIES) for _ in range(ch.int(1, 2))) + '"'


def _document(ch: _Choices, depth: int = 0) -> tuple[str, list[str]]:
    """HuJSON text (without top-level extras) and the JSON pointers of its values."""
    kind = ch.int(0, 3) if depth < 4 else 0
    if kind <= 1:
        return _literal(ch), [""]
    is_obj = kind == 2
    n = ch.int(0, 5)
    pointers = [""]
    parts = []
    for i in range(n):
        child, sub = _document(ch, depth + 1)
        if is_obj:
            name = ch.pick(_NAMES) if ch.int(0, 2) else _literal(ch).replace("null", '"n"')
            if not name.startswith('"'):
                name = '"' + name + '"'
            key = hujson.loads(name.encode("utf-8", "surrogatepass"))
            seg = "/" + key.replace("~", "~0").replace("/", "~1")
            parts.append(
                _extra(ch)
                + name
                + (_extra(ch) if ch.int(0, 3) == 0 else "")
                + ":"
                + _extra(ch)
                + child
                + (_extra(ch) if ch.int(0, 3) == 0 else "")
            )
        else:
            seg = f"/{i}"
            parts.append(_extra(ch) + child + (_extra(ch) if ch.int(0, 3) == 0 else ""))
        pointers += [seg + p for p in sub]
    body = ",".join(parts) + ("," + _extra(ch) if n and ch.int(0, 1) else "")
    if n == 0:
        body = _extra(ch)
    return ("{" if is_obj else "[") + body + ("}" if is_obj else "]"), pointers


def _deep(ch: _Choices) -> tuple[str, list[str]]:
    opens = [ch.pick(["[", "[\n", '{"k":', '{\n\t"k": ', "[// c\n"]) for _ in range(ch.int(20, 300))]
    closes = "".join("]" if o.startswith("[") else "}" for o in reversed(opens))
    return "".join(opens) + _literal(ch) + closes, [""]


def _patch(ch: _Choices, pointers: list[str]) -> str:
    ops = []
    for _ in range(ch.int(1, 3)):
        op = ch.pick(["add", "remove", "replace", "move", "copy", "test"])
        k = ch.int(0, 3)
        path = (
            ch.pick(pointers)
            if k <= 1
            else (ch.pick(pointers) + "/-" if k == 2 else ch.pick(["/-", "/0", "/new", "/a/-", "/zz/1", "/0/00", "x"]))
        )
        fields = [f'"op": "{op}"', f'"path": {json.dumps(path)}']
        if op in ("move", "copy"):
            fields.append(f'"from": {json.dumps(ch.pick(pointers))}')
        if op in ("add", "replace", "test"):
            lead = ch.pick(["", "// lead\n", "/* lead */ ", "\n// a\n\n// b\n"])
            tail = ch.pick(["", " // tail\n", "\n// after\n", "\n\n// orphan\n"])
            value = ch.pick(_PATCH_VALUES) if ch.int(0, 1) else _document(ch, 2)[0]
            fields.append(f'{lead}"value": {value},{tail}')
        ops.append("{" + ", ".join(fields) + "}")
    return "[\n" + ",\n".join(ops) + "\n]"


# --- policy-like documents: one member per line, as people and Tailscale's formatter write them (the
# layout hujson.format handles without a tree, see derptool/hujson/lineformat.py), with the small
# departures hand edits make: wrong indentation, spacing, long one-line arrays, comments after commas.

_POLICY_NAMES = [
    '"src"',
    '"dst"',
    '"ip"',
    '"action"',
    '"users"',
    '"group:eng"',
    '"tag:web"',
    '"autogroup:admin"',
    '"a"',
    '"x-very-long-member-name-here"',
    '"k\\u0041"',
    '"derpMap"',
    '"OmitDefaultRegions"',
    '""',
]
_POLICY_STRINGS = [
    '"tag:web"',
    '"group:eng"',
    '"alice@example.com"',
    '"tcp:443"',
    '"*:*"',
    '"autogroup:member"',
    '"10.0.0.0/8:22"',
    '"caf\\u00e9"',
    '"a, b"',
    '"x]"',
    '"// not a comment"',
    '"\\"quoted\\""',
    '"user-with-a-rather-long-address@example.com"',
    '"é"',
]
_POLICY_SCALARS = ["true", "false", "null", "0", "-1.5e3", "443", "12345678901234567890"]


def _policy_scalar(ch: _Choices) -> str:
    return ch.pick(_POLICY_STRINGS) if ch.int(0, 3) else ch.pick(_POLICY_SCALARS)


def _sp(ch: _Choices) -> str:
    return ch.pick(["", "", "", " ", "  ", "\t"])


def _policy_inline(ch: _Choices, level: int) -> str:
    """A value on one line: a scalar, or a composite that may hold composites (long ones included)."""
    k = ch.int(0, 9)
    if k <= 3 or level > 2:
        return _policy_scalar(ch)
    n = ch.int(0, 9 if k <= 7 else 3)
    comma = "," + _sp(ch) if n and ch.int(0, 5) == 0 else ""
    if k <= 6:
        items = [_policy_scalar(ch) if ch.int(0, 6) else _policy_inline(ch, level + 1) for _ in range(n)]
        return "[" + _sp(ch) + ("," + ch.pick([" ", "", "  "])).join(items) + comma + _sp(ch) + "]"
    members = [ch.pick(_POLICY_NAMES) + _sp(ch) + ":" + _sp(ch) + _policy_inline(ch, level + 1) for _ in range(n)]
    return "{" + _sp(ch) + ("," + ch.pick([" ", ""])).join(members) + comma + _sp(ch) + "}"


def _policy_comment(ch: _Choices) -> str:
    return ch.pick(["// " + ch.pick(_COMMENT_WORDS[:6]), "/* reviewed */", "//", "/* a */ /* b */"])


def _policy_body(ch: _Choices, is_obj: bool, depth: int, standard: bool) -> str:
    """The members of an expanded composite, each on its own line, and its closing line."""
    indent = "\t" * depth if ch.int(0, 5) else ch.pick(["", "  " * depth, "\t" * (depth + 1), " \t"])
    lines = []
    n = ch.int(0 if ch.int(0, 6) == 0 else 1, 6)
    for i in range(n):
        if not standard and ch.int(0, 5) == 0:
            lines.append(indent + _policy_comment(ch) + ("\n" if ch.int(0, 3) else "\n\n"))
        elif not standard and ch.int(0, 12) == 0:
            lines.append(indent + ch.pick(_BLOCKS[:3]) + "\n")
        if ch.int(0, 8) == 0:
            lines.append("\n" * ch.int(1, 2))
        head = indent + (ch.pick(_POLICY_NAMES) + _sp(ch) + ":" + ch.pick([" ", "", "  ", "\t"]) if is_obj else "")
        last = i == n - 1
        comma = "," if not last or (not standard and ch.int(0, 1)) else ""
        tail = " " + _policy_comment(ch) if not standard and comma and ch.int(0, 4) == 0 else ""
        k = ch.int(0, 9)
        if k <= 1 and depth < 5:
            inner_obj = ch.int(0, 1) == 1
            opener = ("{" if inner_obj else "[") + (" " + _policy_comment(ch) if not standard and k == 0 else "")
            lines.append(head + opener + "\n" + _policy_body(ch, inner_obj, depth + 1, standard) + comma + tail + "\n")
        elif k == 2:
            lines.append(head + ch.pick(["{}", "[]", "{ }", "[\n" + indent + "]", "{\n}"]) + comma + tail + "\n")
        else:
            lines.append(head + _policy_inline(ch, 0) + _sp(ch) + comma + tail + "\n")
    if not standard and ch.int(0, 8) == 0:
        lines.append(indent + _policy_comment(ch) + "\n")
    close = ("\t" * (depth - 1) if ch.int(0, 5) else ch.pick(["", "  ", "\t" * depth])) + ("}" if is_obj else "]")
    return "".join(lines) + close


def policy_like(ch: _Choices) -> str:
    """A whole document laid out one member per line (standard JSON one time in eight)."""
    standard = ch.int(0, 7) == 0
    head = "" if standard else ch.pick(["", "// Tailnet policy\n", "/*\n * Policy\n */\n", "\n// a\n\n"])
    root_obj = ch.int(0, 7) != 0
    tail = "" if standard else ch.pick(["", "\n", "\n// end\n", "  \n\n"])
    return head + ("{" if root_obj else "[") + "\n" + _policy_body(ch, root_obj, 1, standard) + "\n" + tail


def generated_case(ch: _Choices) -> list[tuple[Any, ...]]:
    """One generated document (sometimes broken) and the requests to make with it."""
    if ch.int(0, 3) == 0:
        text, pointers = policy_like(ch), [""]
        src = text.encode("utf-8", "surrogatepass")
    else:
        text, pointers = _deep(ch) if ch.int(0, 15) == 0 else _document(ch)
        src = (_extra(ch) + text + _extra(ch)).encode("utf-8", "surrogatepass")
    mode = ch.pick(["ok", "ok", "ok", "ok", "break", "cut", "swap"])
    closers = [i for i, c in enumerate(src) if c in b"]}"]
    if mode == "break" and src:
        i = ch.int(0, len(src))
        src = src[:i] + ch.pick(_BREAKERS) + src[i + ch.int(0, 1) :]
    elif mode == "swap" and closers:  # a bracket of the other kind closes a composite
        i = ch.pick(closers)
        src = src[:i] + (b"}" if src[i] == 0x5D else b"]") + src[i + 1 :]
    elif mode == "cut" and src:
        src = src[: ch.int(0, len(src) - 1)]
    reqs: list[tuple[Any, ...]] = [(op, src) for op in TRANSFORMS]
    if mode == "ok":
        reqs.append(("patch", src, _patch(ch, pointers).encode("utf-8", "surrogatepass")))
        reqs.append(("find", src, None, ch.pick(pointers)))
    return reqs


@st.composite
def _case(draw: Any) -> list[tuple[Any, ...]]:
    return generated_case(_Choices(draw=draw))


def test_generator_makes_valid_documents_and_patches() -> None:
    rnd = random.Random(1)
    ok = broken = 0
    for _ in range(300):
        reqs = generated_case(_Choices(rnd=rnd))
        try:
            hujson.parse(reqs[0][1])
            ok += 1
        except HuJSONError:
            broken += 1
        if len(reqs) > 4:
            hujson.parse(reqs[4][2])  # the patch text always parses
    assert ok > 150 and broken > 30


@needs(missing_go_peer("hujsonpeer"))
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
)
@given(_case())
def test_go_generated_hypothesis(case: list[tuple[Any, ...]]) -> None:
    path = find_peer()
    assert path is not None
    peer = _PEER.get(path)
    if peer is None:
        peer = _PEER[path] = GoHuJSON(path)
    _checked["hypothesis"] += 1
    assert _differences(peer, case) == []


def test_go_generated_bulk(go: GoHuJSON) -> None:
    """HUJSON_DIFF_DOCS seeded documents (default 100 000), 500 per round trip to Go."""
    rnd = random.Random(int(os.environ.get("HUJSON_DIFF_SEED", "13")))
    total = DOCS
    while total > 0:
        n = min(total, 500)
        requests = [r for _ in range(n) for r in generated_case(_Choices(rnd=rnd))]
        assert _differences(go, requests) == []
        total -= n
        _checked["bulk"] += n


_PEER: dict[str, GoHuJSON] = {}
_checked = {"hypothesis": 0, "bulk": 0}


def teardown_module() -> None:
    for peer in _PEER.values():
        peer.close()
    _PEER.clear()
    if any(_checked.values()):
        print(
            f"\nhujson differential: {_checked['hypothesis']} hypothesis examples and "
            f"{_checked['bulk']} seeded documents checked against Go, no difference"
        )
