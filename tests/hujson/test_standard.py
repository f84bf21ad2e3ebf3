"""standardize, minimize, is_standard, loads and find."""

from __future__ import annotations

import importlib
import json
from typing import Any

import pytest

from derptool import hujson
from derptool.hujson import HuJSONError, find, loads, minimize, standardize


@pytest.mark.parametrize(
    ("src", "want"),
    [
        (b' { "k" : "v" , } ', b' { "k" : "v"   } '),
        (b"[1,2,/*c*/]", b"[1,2      ]"),
        (b"// \xf0\x9f\x98\x82\nnull", b"       \nnull"),
        (b"/* a\r\n\tb */ 1", b"    \r\n\t     1"),
        (b'["//not a comment", "/*nor this*/",]', b'["//not a comment", "/*nor this*/" ]'),
        (b'{"a":[1,],"b":{},}', b'{"a":[1 ],"b":{} }'),
        (b"[1 /*x*/ , /*y*/ ]", b"[1       ,       ]".replace(b",", b" ")),
        (b'"\xff" // \xc3\xa9\n', b'"\xff"      \n'),
        (b"null", b"null"),
    ],
)
def test_standardize(src: bytes, want: bytes) -> None:
    out = standardize(src)
    assert out == want
    assert len(out) == len(src)
    assert hujson.is_standard(out)


def test_standardize_keeps_positions() -> None:
    src = b'{ // c\n  "a": /* \xc3\xa9 */ [1, 2,], /* x */ "b": "c",\n}'
    out = standardize(src)
    v1, v2 = hujson.parse(src), hujson.parse(out)
    assert [(x.start_offset, x.end_offset) for x in v1.all()] == [(x.start_offset, x.end_offset) for x in v2.all()]


@pytest.mark.parametrize(
    "src",
    [
        b"[,]",
        b"{,}",
        b"[1,,]",
        b"[1,]x",
        b"NaN",
        b"[Infinity]",
        b"\xef\xbb\xbf{}",
        b"/*\xff*/{}",
        b"[1/*x*/2]",
        b"tr/**/ue",
        b'{"a":,}',
        b"/ 1",
        b'"\\x"',
        b"1 //",
    ],
)
def test_fast_path_rejects_what_go_rejects(src: bytes) -> None:
    with pytest.raises(HuJSONError) as a:
        standardize(src)
    with pytest.raises(HuJSONError) as b:
        hujson.parse(src)
    with pytest.raises(HuJSONError):
        loads(src)
    assert str(a.value) == str(b.value)


def test_minimize() -> None:
    src = b' [ null , false , true , "string" , 0 , { } , [ ] , ] // x\n'
    assert minimize(src) == b'[null,false,true,"string",0,{},[]]'
    assert minimize(b'{"a" : 1.0E+2, "\\u0041": "\\/"}') == b'{"a":1.0E+2,"\\u0041":"\\/"}'


def test_is_standard() -> None:
    assert hujson.is_standard(b' {"a": [1, 2]} \n')
    assert not hujson.is_standard(b"[1,]")
    assert not hujson.is_standard(b"1 // c\n")
    assert not hujson.is_standard(b"{/**/}")
    assert hujson.is_standard_value(hujson.parse(b"[1]"))


def test_loads() -> None:
    src = """// policy
    {
        "groups": {"group:a": ["x@example.com",],}, /* c */
        "big": 123456789012345678901234567890,
        "f": 1.5, "e": 1E2, "t": true, "n": null,
        "dup": 1, "dup": 2,
        "s": "\\u00e9\\ud83d\\ude02",
    }
    """
    assert loads(src) == {
        "groups": {"group:a": ["x@example.com"]},
        "big": 123456789012345678901234567890,
        "f": 1.5,
        "e": 100.0,
        "t": True,
        "n": None,
        "dup": 2,
        "s": "é😂",
    }
    assert isinstance(loads("1e2"), float)
    assert loads(b'"\xff"') == "\ufffd"
    assert loads(b'// \xc3\xa9\n"\xff"') == "\ufffd"
    assert loads(b"[1,]") == [1]
    assert loads(hujson.parse(b"[1, /*x*/ 2,]").pack()) == [1, 2]


def test_loads_matches_json_for_plain_json() -> None:
    doc = {"a": [1, 2.5, None, True, 'x"y\\z\n'], "b": {"c": {}}, "d": -0.0}
    text = json.dumps(doc, indent=2)
    assert loads(text) == json.loads(text)


def test_find() -> None:
    doc = b"""{
        "foo": ["bar", "baz"], "": 0, "a/b": 1, "c%d": 2, "e^f": 3, "g|h": 4, "i\\\\j": 5,
        "k\\"l": 6, " ": 7, "m~n": 8, "\\u0066izz": 9, "dup": 10, "dup": 11, "lit": "x",
    }"""
    v = hujson.parse(doc)

    def get(ptr: str) -> object:
        node = find(v, ptr)
        return None if node is None else loads(node.pack())

    assert get("") == loads(doc)
    assert get("/foo") == ["bar", "baz"]
    assert get("/foo/0") == "bar"
    assert get("/foo/01") == "baz"  # Go accepts a leading zero
    assert get("/foo/00") is None  # invalid index
    assert get("/foo/-1") is None
    assert get("/foo/") is None
    assert get("/foo/-") is None
    assert get("/foo/2") is None
    assert get("/") == 0
    assert get("/a~1b") == 1
    assert get("/c%d") == 2
    assert get("/e^f") == 3
    assert get("/g|h") == 4
    assert get("/i\\j") == 5
    assert get('/k"l') == 6
    assert get("/ ") == 7
    assert get("/m~0n") == 8
    assert get("/fizz") == 9
    assert get("/dup") == 10  # first one wins
    assert get("/foo ") is None
    assert get("foo") is None  # no leading slash: invalid, nil as in Go
    assert get("/lit/0") is None  # cannot index into a literal
    assert get("/////") is None
    assert find(doc, "/foo/1") is not None
    assert hujson.find(hujson.parse(b'{"~x": 1}'), "/~x") is not None  # unknown ~ sequence kept


def test_pointer_errors() -> None:
    from derptool.hujson.pointer import locate

    v = hujson.parse(b'{"a": "x", "b": [1]}')
    for ptr, msg in [
        ("a", "invalid pointer: lacks a forward slash prefix"),
        ("/b/00", "invalid array index: 00"),
        ("/b/-1", "invalid array index: -1"),
        ("/b/", "invalid array index: "),
        ("/a/0", "invalid pointer: cannot index into literal at /a"),
    ]:
        _, err = locate(v, ptr)
        assert err is not None and str(err) == f"hujson: {msg}"
        assert err.line is None


TRICKY = [
    b'["http://example.com", "a/*b", "*/", "c, ]"] // real\n',
    b'{"a": "x\\" // not a comment", "b": 1, /* real */ "c": "y",\n}',
    b'["\\\\", // comment after an escaped backslash\n 1,\n]',
    b'["a,\n]"]',  # raw newline in a string: invalid
    b'["a\n//", "b"]',
    b'["a/*", "*/", 1,]',
    b'{"k": [1, 2 ,\n],}',
    b"[1 /* , ] */ ,\n]",
    b'["//", /* "x" */ "y" // "z"\n]',
    b"[1,\n/**/,\n]",
    b'{"a":1,\n//c\n}',
    b'// c "\n["\\"", "//"]',
    # a block comment's line decides whether it might sit in a string (loads drops comments whole)
    b'[/* " */ "a /* b */"]',
    b'["a", "b /* x */ c"]',
    b'["a\n/* x */ b"]',
    b'["x\\"/*", "*/"]',
    b'["x\\\\", /* y */ "z"]',
    b'// "\n/* c */ ["a", /* d */ "e"]',
    b'["a", /* x */\n "b /* y */"]',
    b'[1, // "\n "/*", "*/"]',
    b'["https://example.com", /* x */ 1]',
    b'{"a": "b"} /* tail "',
    b"[1] // no newline at the end",
]


@pytest.mark.parametrize("src", TRICKY)
def test_fast_path_on_tricky_strings(src: bytes) -> None:
    from derptool.hujson.standard import standardize_value

    try:
        v = hujson.parse(src)
    except HuJSONError as err:
        with pytest.raises(HuJSONError) as info:
            standardize(src)
        assert str(info.value) == str(err)
        with pytest.raises(HuJSONError):
            loads(src)
        return
    standardize_value(v)
    assert standardize(src) == v.pack()
    assert loads(src) == json.loads(v.pack())


@pytest.mark.parametrize(
    ("src", "want"),
    [
        (
            b'{\n\t"url": "https://example.com/a", // c\n\t"b": [1, 2,],\n}\n',
            {"url": "https://example.com/a", "b": [1, 2]},
        ),
        (b'["a/*b", /* c */ "*/", "//",]', ["a/*b", "*/", "//"]),
        (b'{"path": "/x//y", "n": 1 /* "quoted" */}', {"path": "/x//y", "n": 1}),
    ],
)
def test_comment_marks_inside_strings_stay_on_the_fast_path(
    src: bytes, want: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A "//" or "/*" inside a string (a URL) is sorted out without the parser, which is 10x slower."""

    def no_parser(*_: Any) -> None:
        raise AssertionError("the full parser was used")

    for module, name in (("decode", "parse"), ("lazy", "parse_tree")):
        monkeypatch.setattr(importlib.import_module(f"derptool.hujson.{module}"), name, no_parser)
    patch_module = importlib.import_module("derptool.hujson.patch")
    shallow_tree = patch_module.shallow_tree

    def shallow_or_fail(b: bytes) -> Any:
        tree = shallow_tree(b)
        assert tree is not None, "patch would build the whole tree"
        return tree

    monkeypatch.setattr(patch_module, "shallow_tree", shallow_or_fail)
    assert loads(src) == want
    assert hujson.parse(src).pack() == src
    after: Any
    if isinstance(want, list):
        op, after = '[{"op": "add", "path": "/0", "value": 0}]', [0, *want]
    else:
        op, after = '[{"op": "add", "path": "/z", "value": 0}]', {**want, "z": 0}
    assert loads(hujson.patch(src, op)) == after
