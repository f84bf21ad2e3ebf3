"""HuJSON grammar: round trips, every error message and position, offsets, deep nesting."""

from __future__ import annotations

import pytest

from derptool import hujson
from derptool.errors import DerptoolError
from derptool.hujson import Array, HuJSONError, Literal, Object, parse, position

VALID = [
    b"null",
    b"true",
    b"false",
    b"0",
    b"-0",
    b"3.14159E+435",
    b"-1.5e-3",
    b"1E5",
    b'""',
    b'"a"',
    b'"\\u00e9\\n\\/\\"\\\\"',
    b"[]",
    b"{}",
    b"[ ]",
    b"{ }",
    b" \t\r\n null \t\r\n",
    b"[1,]",
    b"[1 , ]",
    b'{"a":1,}',
    b'{"a":1 , /**/ }',
    b'{"a":1,"a":2}',
    b"// c\nnull",
    b"null // c\n",
    b"/**/null/**/",
    b"/* a\n b */ [ /*x*/ 1 /*y*/ , /*z*/ 2 /*w*/ ]",
    b'{ // c\n "k" /*1*/ : /*2*/ "v" /*3*/ , // d\n }',
    b"/*/ */0",
    b'"\xff"',
    b'"\\ud800"',
    b'"\x7f"',
    b"[[[[]]]]",
    b'{"a":{"b":{"c":[1,{"d":null}]}}}',
    "/* héllo 😂 */ {}".encode(),
    b"[\r\n1\r\n]",
    b"[-0.0e-0]",
    b'"tab\there"'.replace(b"\t", b" "),
]


@pytest.mark.parametrize("src", VALID)
def test_round_trip(src: bytes) -> None:
    assert parse(src).pack() == src
    assert bytes(parse(src)) == src


def test_str_input_is_utf8() -> None:
    assert parse('["é"] // ü\n').pack() == '["é"] // ü\n'.encode()


ERRORS = [
    # (input, line, column, message)
    (b"", 1, 1, "parsing value: unexpected EOF"),
    (b"   ", 1, 4, "parsing value: unexpected EOF"),
    (b"null//", 1, 5, "parsing comment: unexpected EOF"),
    (b"null /* x", 1, 6, "parsing comment: unexpected EOF"),
    (b"/*/", 1, 1, "parsing comment: unexpected EOF"),
    (b"[1,\n//", 2, 1, "parsing comment: unexpected EOF"),
    (b"/*\xff*/1", 1, 1, "invalid UTF-8 in comment"),
    (b"1 //ok\n /* \xc3 */", 2, 2, "invalid UTF-8 in comment"),
    (b"// \xe2\x82\n1", 1, 1, "invalid UTF-8 in comment"),
    ("\ufeff{}".encode(), 1, 1, "invalid character '\\ufeff' at start of value"),
    (b"\x0c{}", 1, 1, "invalid character '\\u000c' at start of value"),
    ("\u00a0{}".encode(), 1, 1, "invalid character '\\u00a0' at start of value"),
    (b"\x01", 1, 1, "invalid character '\\u0001' at start of value"),
    (b"\xff", 1, 1, "invalid character '\\xff' at start of value"),
    ("\U0001f602".encode(), 1, 1, "invalid character '😂' at start of value"),
    ("\U000e0001".encode(), 1, 1, "invalid character '\\U000e0001' at start of value"),
    (b"'a'", 1, 1, "invalid character '\\'' at start of value"),
    (b"/", 1, 1, "invalid character '/' at start of value"),
    (b"[/x]", 1, 2, "invalid character '/' at start of value"),
    (b"+1000", 1, 1, "invalid literal: +1000"),
    (b"01", 1, 1, "invalid literal: 01"),
    (b"-", 1, 1, "invalid literal: -"),
    (b"True", 1, 1, "invalid literal: True"),
    (b"NaN", 1, 1, "invalid literal: NaN"),
    (b"Infinity", 1, 1, "invalid literal: Infinity"),
    (b"[.5]", 1, 2, "invalid literal: .5"),
    (b"1.", 1, 1, "invalid literal: 1."),
    (b"nul", 1, 1, "invalid literal: nul"),
    (b'"\\xff"', 1, 1, 'invalid literal: "\\xff"'),
    (b'["a\x01"]', 1, 2, 'invalid literal: "a\x01"'),
    (b'"\\u12"', 1, 1, 'invalid literal: "\\u12"'),
    (b'"abc', 1, 5, "parsing string: unexpected EOF"),
    (b'"abc\\"', 1, 7, "parsing string: unexpected EOF"),
    (b'{null:"v"}', 1, 2, "invalid character 'n' at start of object name"),
    (b"{1:2}", 1, 2, "invalid character '1' at start of object name"),
    (b'{"a"', 1, 5, "parsing object after name: unexpected EOF"),
    (b'{"a" 1}', 1, 6, "invalid character '1' after object name"),
    (b'{"a":', 1, 6, "parsing value: unexpected EOF"),
    (b'{"a":}', 1, 6, "invalid character '}' at start of value"),
    (b'{"a":1', 1, 7, "parsing object after value: unexpected EOF"),
    (b'{"a":1 "b":2}', 1, 8, "invalid character '\"' after object value (expecting ',' or '}')"),
    (b'{"a":1]', 1, 7, "invalid character ']' after object value (expecting ',' or '}')"),
    (b"{", 1, 2, "parsing value: unexpected EOF"),
    (b'{"a":1,', 1, 8, "parsing value: unexpected EOF"),
    (b"{,}", 1, 2, "invalid character ',' at start of value"),
    (b"[,]", 1, 2, "invalid character ',' at start of value"),
    (b"[1,,]", 1, 4, "invalid character ',' at start of value"),
    (b"[,1]", 1, 2, "invalid character ',' at start of value"),
    (b'{"a":1,,}', 1, 8, "invalid character ',' at start of value"),
    (b"[", 1, 2, "parsing value: unexpected EOF"),
    (b"[1", 1, 3, "parsing array after value: unexpected EOF"),
    (b"[1 2]", 1, 4, "invalid character '2' after array value (expecting ',' or ']')"),
    (b"[1}", 1, 3, "invalid character '}' after array value (expecting ',' or ']')"),
    (b"null,", 1, 5, "invalid character ',' after top-level value"),
    (b"{} {}", 1, 4, "invalid character '{' after top-level value"),
    (b"1 2", 1, 3, "invalid character '2' after top-level value"),
    (b"[\n\t1,\n\t\xc3\xa9x]", 3, 2, "invalid character 'é' at start of value"),
    (b'{\n  "a": tru\n}', 2, 8, "invalid literal: tru"),
    (b"\n\n   ]", 3, 4, "invalid character ']' at start of value"),
]


@pytest.mark.parametrize(("src", "line", "column", "message"), ERRORS)
def test_errors(src: bytes, line: int, column: int, message: str) -> None:
    with pytest.raises(HuJSONError) as info:
        parse(src)
    err = info.value
    assert (err.line, err.column, err.reason) == (line, column, message)
    assert str(err) == f"hujson: line {line}, column {column}: {message}"
    assert position(src, err.offset or 0) == (line, column)
    assert isinstance(err, ValueError)
    assert not isinstance(err, DerptoolError)  # the HuJSON library stands alone


def test_error_with_file() -> None:
    with pytest.raises(HuJSONError) as info:
        parse(b"[1,\n2 3]")
    assert str(info.value.with_file("p.hujson")) == (
        "p.hujson:2:3: invalid character '3' after array value (expecting ',' or ']')"
    )


def test_error_pickles() -> None:
    import pickle

    err = HuJSONError.at(b"ab\ncd", 4, "boom")
    again = pickle.loads(pickle.dumps(err))
    assert (again.line, again.column, again.offset, str(again)) == (2, 2, 4, str(err))


def test_position_counts_bytes() -> None:
    src = "é\t😂x".encode()
    assert position(src, src.index(b"x")) == (1, 8)
    assert position(b"a\nb\n", 4) == (3, 1)


def test_ast_shape_and_extras() -> None:
    src = b' /*a*/ { "k" /*b*/ : /*c*/ 1 /*d*/ , "l":[2 /*e*/ ] /*f*/ } /*g*/ '
    v = parse(src)
    assert v.before_extra == b" /*a*/ " and v.after_extra == b" /*g*/ "
    obj = v.value
    assert isinstance(obj, Object) and not obj.trailing_comma
    k, l_ = obj.members
    assert k.name.value == Literal(b'"k"')
    assert (k.name.before_extra, k.name.after_extra) == (b" ", b" /*b*/ ")
    assert (k.value.before_extra, k.value.after_extra) == (b" /*c*/ ", b" /*d*/ ")
    assert l_.value.after_extra is None  # Go's nil: moved into the object's after-extra
    assert obj.after_extra == b" /*f*/ "
    arr = l_.value.value
    assert isinstance(arr, Array) and arr.after_extra == b" /*e*/ " and arr.elements[0].after_extra is None
    assert [x.kind for x in v.all()] == ["{", '"', "0", '"', "[", "0"]


def test_trailing_comma_flag() -> None:
    v = parse(b"[1 /*x*/ , /*y*/ ]")
    arr = v.value
    assert isinstance(arr, Array) and arr.trailing_comma
    assert arr.elements[0].after_extra == b" /*x*/ " and arr.after_extra == b" /*y*/ "
    arr.trailing_comma = False
    assert v.pack() == b"[1 /*x*/  /*y*/ ]"


def test_offsets() -> None:
    src = b'// head\n{\n\t"acls": [\n\t\t{"action": "accept"}, // c\n\t],\n}\n'
    v = parse(src)
    for ptr, node, name in v.walk():
        raw = src[node.start_offset : node.end_offset]
        assert hujson.loads(raw) == hujson.loads(node.pack())
        if name is not None:
            assert src[name.start_offset : name.end_offset] == b'"' + ptr.rsplit("/", 1)[1].encode() + b'"'
    act = hujson.find(v, "/acls/0/action")
    assert act is not None
    assert position(src, act.start_offset) == (4, 14)
    name = hujson.find_name(v, "/acls/0/action")
    assert name is not None and position(src, name.start_offset) == (4, 4)
    assert [p for p, _, _ in v.walk()] == ["", "/acls", "/acls/0", "/acls/0/action"]
    v2 = v.clone()
    v2.update_offsets()
    assert [(x.start_offset, x.end_offset) for x in v2.all()] == [(x.start_offset, x.end_offset) for x in v.all()]


def test_clone_is_deep() -> None:
    v = parse(b'{"a": [1, {"b": 2}]}')
    c = v.clone()
    node = hujson.find(c, "/a/1/b")
    assert node is not None
    node.value = Literal(b"3")
    assert v.pack() == b'{"a": [1, {"b": 2}]}' and c.pack() == b'{"a": [1, {"b": 3}]}'


def test_deep_nesting_never_recursion_error() -> None:
    depth = 100_000
    src = b"[" * depth + b"]" * depth
    v = parse(src)
    assert v.pack() == src
    assert len(list(v.all())) == depth
    data = hujson.loads(src)
    for _ in range(depth - 1):
        data = data[0]
    assert data == []
    src = b'{"a":' * 20_000 + b"null" + b"}" * 20_000
    assert hujson.parse(src).pack() == src
    assert hujson.standardize(src) == src
    assert hujson.minimize(src) == src
    assert hujson.loads(src)["a"]["a"] is not None
    with pytest.raises(HuJSONError) as info:
        parse(b"[" * depth)
    assert info.value.column == depth + 1


def test_literal_helpers() -> None:
    assert Literal.string('a"\\\x01\n/é\u2028').raw == '"a\\"\\\\\\u0001\\n/é\u2028"'.encode()
    assert Literal.string("\ud800").raw == '"\ufffd"'.encode()
    assert Literal.from_python(float("nan")).raw == b'"NaN"'
    assert Literal.from_python(float("-inf")).raw == b'"-Infinity"'
    assert Literal.from_python(12345678901234567890123).raw == b"12345678901234567890123"
    assert Literal(b'"\\ud800x"').decode() == "\ufffdx"
    assert Literal(b"1e2").decode() == 100.0
    assert [Literal(x).kind for x in (b"null", b"true", b"false", b'""', b"-1")] == ["n", "t", "f", '"', "0"]


def test_value_functions_edit_in_place() -> None:
    v = parse(b"[1, /*c*/ 2,]")
    hujson.standardize_value(v)
    assert v.pack() == b"[1,       2 ]" and hujson.is_standard_value(v)
    v = parse(b"[1, /*c*/ 2,]")
    hujson.minimize_value(v)
    assert v.pack() == b"[1,2]"
    v = parse(b'{"a":1}')
    hujson.format_value(v)
    assert v.pack() == b'{"a": 1}\n'
    hujson.patch_value(v, [{"op": "add", "path": "/b", "value": 2}])
    assert hujson.loads(v.pack()) == {"a": 1, "b": 2}
