"""The line formatter (``derptool/hujson/lineformat.py``): the tree formatter's bytes without a tree.

``hujson.format`` sends documents written one member per line through the line formatter and anything
else through the tree. These tests hold the two to the same output on the project's files and on
generated policy-like documents (their Go counterparts are in test_go_differential.py), and check that the line
formatter, which validates as it goes, lets nothing invalid through: broken documents must fail with the
parser's error, exactly as before.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from derptool import hujson
from derptool.hujson import HuJSONError
from derptool.hujson.format import _format_inner, _format_tree
from derptool.hujson.lineformat import _STEPS, format_lines
from derptool.hujson.parse import parse_tree
from tests.hujson.test_go_differential import _BREAKERS, _Choices, policy_like
from tests.support.repo import REPO

ROOT = REPO


def tree_format(src: bytes) -> bytes:
    """The tree formatter alone (the reference: it matches Go on every vector)."""
    v = parse_tree(src)
    _format_tree(v)
    return v.pack()


def outcome(f: object, src: bytes) -> tuple[bool, bytes | str]:
    try:
        return True, f(src)  # type: ignore[operator]
    except HuJSONError as err:
        return False, str(err)


POLICY_FILES = sorted(p for d in ("examples", "tests/data") for p in (ROOT / d).rglob("*.hujson"))


@pytest.mark.parametrize("path", POLICY_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_policy_files_take_the_line_path_with_the_same_bytes(path: Path) -> None:
    src = path.read_bytes()
    out = format_lines(src, _format_inner)
    want = tree_format(src)
    assert out is not None, "laid out one member per line, yet the line path gave up"
    assert out == want
    assert hujson.format(src) == want


def test_example_policies_take_the_line_path() -> None:
    taken = [p for p in POLICY_FILES if format_lines(p.read_bytes(), _format_inner) is not None]
    assert len(POLICY_FILES) >= 4
    assert taken == POLICY_FILES


def _captured_policies() -> list[bytes]:
    """Tailscale's recorded policies, written as ``json.dumps(indent=2)`` writes them."""
    out = []
    for path in sorted((ROOT / "tests" / "data" / "tailscale-captures").glob("*.json")):
        for case in json.loads(path.read_text(encoding="utf-8"))["cases"]:
            policy = case.get("policy")
            if isinstance(policy, str):
                try:
                    policy = json.loads(policy)
                except ValueError:
                    continue  # a policy Tailscale rejected as text
            if isinstance(policy, dict):
                out.append(json.dumps(policy, indent=2).encode("utf-8"))
    return out


def test_captured_policies_take_the_line_path_with_the_same_bytes() -> None:
    """Standard JSON indented with spaces, its formatted form, and that form re-indented by hand."""
    policies = _captured_policies()
    assert len(policies) > 200
    for src in policies:
        once = tree_format(src)
        assert format_lines(src, _format_inner) == once
        assert format_lines(once, _format_inner) == once
        spaced = once.replace(b"\t", b"   ").replace(b": ", b" :  ").replace(b"\n}", b"\n\n}")
        assert format_lines(spaced, _format_inner) == once == tree_format(spaced)


def test_broken_documents_fail_as_the_parser_fails() -> None:
    """Every byte-level break of a policy: the same error (message, line, column) or the same bytes."""
    rnd = random.Random(11)
    failed = 0
    for _ in range(1500):
        src = policy_like(_Choices(rnd=rnd)).encode("utf-8")
        for _ in range(3):
            k = rnd.randrange(5)
            i = rnd.randrange(len(src) + 1)
            closers = [j for j, c in enumerate(src) if c in b"]}"]
            if k == 4 and closers:  # a bracket of the other kind
                j = rnd.choice(closers)
                src = src[:j] + (b"}" if src[j] == 0x5D else b"]") + src[j + 1 :]
            elif k == 0:
                src = src[:i] + rnd.choice(_BREAKERS) + src[i:]
            elif k == 1:
                src = src[:i] + src[i + rnd.randint(1, 3) :]
            elif k == 2:
                src = src[:i] + rnd.choice(_BREAKERS) + src[i + 1 :]
            else:
                src = src[:i]
            got = outcome(hujson.format, src)
            assert got == outcome(tree_format, src), src
            failed += not got[0]
    assert failed > 2000


@pytest.mark.parametrize(
    "src",
    [
        b'{\n\t"a": 1\n\t"b": 2\n}\n',  # a missing comma
        b'{\n\t"a": 1 2,\n}\n',
        b'{\n\t"a": [1 2],\n}\n',
        b'{\n\t"a": 01,\n}\n',
        b'{\n\t"a": tru,\n}\n',
        b'{\n\t"a": "\\x",\n}\n',
        b'{\n\t"a": "tab\there",\n}\n',
        b'{\n\t"a": 1,\n},\n',
        b'{\n\t"a": 1,\n}\n}\n',
        b'{\n\t"a": 1,\n}\n// end',
        b"{\n\t1: 1,\n}\n",
        b'[\n\t"a": 1,\n]\n',
        b'{\n\t"a": {"b" 1},\n}\n',
        b'{\n\t"a": 1, /* open\n}\n',
        b'{\r\n\t"a": "carriage\rreturn",\r\n}\r\n',  # a raw CR inside a string
        b'{\r\n\t"a": 1\r\n\t"b": 2\r\n}\r\n',
        # a bracket of the other kind closing a composite
        b"[\n\t1,\n}\n",
        b'{\n\t"a": 1,\n]\n',
        b'{\n\t"a": [\n\t\t1,\n\t},\n}\n',
        b'{\n\t"a": {\n\t\t"b": 1,\n\t],\n}\n',
        b"[\n\t[\n\t},\n]\n",
        b'{\n\t"a": {\n\t]\n}\n',
    ],
)
def test_invalid_documents_get_the_parsers_error(src: bytes) -> None:
    with pytest.raises(HuJSONError) as err:
        hujson.format(src)
    with pytest.raises(HuJSONError) as want:
        parse_tree(src)
    assert str(err.value) == str(want.value)


def test_a_document_that_goes_wrong_early_costs_one_step_for_the_rest() -> None:
    """Past the first byte that fits nowhere, the rest of the text is one step, not one per byte."""
    src = b'{\n\t"a": 1, /* never closed\n' + b"word " * 100_000 + b"\n}\n"
    steps = _STEPS.findall(src)
    junk = [step[8] for step in steps if step[8]]
    assert len(steps) < 10 and len(junk) == 1 and junk[0].endswith(b"word \n}\n")
    with pytest.raises(HuJSONError, match="parsing comment: unexpected EOF"):
        hujson.format(src)


def test_windows_line_ends_take_the_line_path() -> None:
    rnd = random.Random(17)
    taken = 0
    for i in range(300):
        text = policy_like(_Choices(rnd=rnd))
        src = text.replace("\n", ("\r\n", "\n\r", "\r\n\r")[i % 3]).encode("utf-8")
        want = tree_format(src)
        assert hujson.format(src) == want
        if i % 10 == 0:
            assert format_lines(src, _format_inner) is None  # not known to be valid: left to the tree
        out = format_lines(src, _format_inner, valid=True)
        if out is not None:
            taken += 1
            assert out == want
    assert taken >= 270


def test_a_standard_document_gets_no_trailing_commas() -> None:
    src = b'{\n  "a": [1, 2],\n  "bb": {"c": 3},\n  "long": ["' + b"x" * 90 + b'"]\n}\n'
    out = format_lines(src, _format_inner)
    assert out == tree_format(src)
    assert out is not None and b'\t"a":  [1, 2],\n\t"bb": {"c": 3},\n' in out  # aligned; "long" spans lines
    assert out.endswith(b'x"\n\t]\n}\n')  # no comma after the last item or member


ONE_LINE_RULES = [
    '{"action": "accept", "src": ["group:eng"], "dst": ["tag:web:443"]}',
    '{"action": "accept", "src": ["group:team1", "user1@example.com"], "dst": ["tag:svc1:443", "tag:db:5432"]}',
    '{"src": ["autogroup:member"], "dst": ["autogroup:self"], "users": ["autogroup:nonroot", "root"], '
    '"action": "check"}',
    '["tag:a", {"k": "v"}, [], {}, [ "x" ,"y" ], {"n": 1e3, "t": true}]',
    '[1, [2, 3], {"a\\u00e9": "b\\/c"}, "' + "w" * 70 + '"]',
    '{ "a" : [ ] , "b":{ } }',
]


@pytest.mark.parametrize("comments", [False, True])
def test_one_line_rules_are_written_without_the_tree(comments: bool) -> None:
    """A policy's one-line rules (composites of one-line composites of scalars) take the line path whole:
    the tree formatter is not called, and the bytes are its bytes."""
    end = ", // a rule" if comments else ","
    src = (
        '{\n\t"acls": [\n'
        + ",\n".join(f"\t\t{r}" for r in ONE_LINE_RULES)
        + end
        + "\n"
        + '\t],\n\t"x": '
        + ONE_LINE_RULES[2]
        + "\n}\n"
    ).encode()

    def no_tree(*_: object) -> tuple[bool, bool]:
        raise AssertionError("the tree formatter was used")

    assert format_lines(src, no_tree) == tree_format(src)
    assert hujson.format(src) == tree_format(src)
