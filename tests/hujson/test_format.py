"""Format: Go hujson.Format rules and quirks from the reference, plus its guarantees."""

from __future__ import annotations

import pytest

from derptool import hujson
from derptool.hujson import HuJSONError, format, loads

CASES = [
    # scalars and the top level: no leading whitespace, exactly one final newline
    ("null", "null\n"),
    ("  \n\n null \n\n\n", "null\n"),
    ("// head\n\n\n{}", "// head\n\n{}\n"),
    ("1 // tail\n", "1 // tail\n"),
    ("1 /* tail */  \n\n", "1 /* tail */\n"),
    # strings: re-encoded only when they contain a backslash; numbers untouched
    ('"\\u000F\\u000a\\/\\ud83d\\ude02"', '"\\u000f\\n/😂"\n'),
    ('"\\u00e9\\u2028\\t"', '"é\u2028\\t"\n'),
    ('"/raw\\u0000"', '"/raw\\u0000"\n'),
    ('["\\ud800"]', '["\ufffd"]\n'),
    ('"no escapes \x7f"', '"no escapes \x7f"\n'),
    ("[1.0E+2, -0, 3.14159E+435]", "[1.0E+2, -0, 3.14159E+435]\n"),
    # empty composites
    ("{ \n\t }", "{}\n"),
    ("[\n\n]", "[]\n"),
    ("[ /* c */ ]", "[ /* c */ ]\n"),
    ("[\n\n\n// c\n\n\n]", "[\n\t// c\n]\n"),
    # inline layout
    ('{"a":1,"b":[1,2,3],"c":{}}', '{"a": 1, "b": [1, 2, 3], "c": {}}\n'),
    ('{ "a" : 1 , "b" : 2 }', '{"a": 1, "b": 2}\n'),
    ("[1,2,]", "[1, 2]\n"),
    ("[1, /*x*/]", "[1 /*x*/ ]\n"),
    ("[ /**/ null /**/ , /**/ ]", "[ /**/ null /**/ , /**/ ]\n"),
    ("[1 /*x*/ ,]", "[1 /*x*/ ]\n"),
    ('{"a": /*c*/ 1}', '{"a": /*c*/ 1}\n'),
    ('{"a" /*c*/ : 1}', '{"a" /*c*/ : 1}\n'),
    # expansion follows the author's newlines; standard input stays standard (no trailing comma added)
    ('{\n"a":1}', '{\n\t"a": 1\n}\n'),
    ('{"a":1\n}', '{\n\t"a": 1\n}\n'),
    ('{"a":1,\n"b":2}', '{\n\t"a": 1,\n\t"b": 2\n}\n'),
    ('{\n"a":1,}', '{\n\t"a": 1,\n}\n'),
    ("[\n1, // c\n2]", "[\n\t1, // c\n\t2,\n]\n"),
    # the never-firing "multi-line object with more than one member" rule
    ('{"a": [\n1], "b": 2}', '{"a": [\n\t1\n], "b": 2}\n'),
    ('{"a": [\n1,], "b": 2}', '{"a": [\n\t1,\n], "b": 2}\n'),
    # newlines between name and value do not expand by themselves; the value goes one level deeper
    ('{"k":\n1}', '{"k":\n\t\t1}\n'),  # newline after the colon: one level deeper, plus the member level
    ('{\n"k":\n[1,\n2]}', '{\n\t"k":\n\t\t[\n\t\t\t1,\n\t\t\t2\n\t\t]\n}\n'),
    # CRLF
    ('{\r\n"a": 1,\r\n}\r\n', '{\n\t"a": 1,\n}\n'),
    ("[\r\n1 // c\r\n]", "[\n\t1, // c\n]\n"),
    # blank lines: at most one kept, none after "{" or before "}"
    ("[\n\n\n1,\n\n\n\n2,\n\n\n]", "[\n\t1,\n\n\t2,\n]\n"),
    # comments on their own line are indented; elsewhere one space before them
    ("[\n      // a\n   1,    /* b */  2   // c\n]", "[\n\t// a\n\t1,\n\t/* b */ 2, // c\n]\n"),
    ('{\n  "a": {\n  // x\n    "b": 1}}', '{\n\t"a": {\n\t\t// x\n\t\t"b": 1,\n\t},\n}\n'),
    # multi-line block comments are re-indented
    ("[\n  /*\n   * hello\n   * world\n   */\n  1\n]", "[\n\t/*\n\t * hello\n\t * world\n\t */\n\t1,\n]\n"),
    ("[\n   /* one\n      two\n\n      three\n   */\n1]", "[\n\t/* one\n\ttwo\n\n\tthree\n\t*/\n\t1,\n]\n"),
    ("/* a  \n    b   \n*/ 1", "/* a\nb\n*/ 1\n"),
]


@pytest.mark.parametrize(("src", "want"), CASES)
def test_format(src: str, want: str) -> None:
    out = format(src)
    assert out.decode() == want
    assert format(out) == out
    assert loads(out) == loads(src)


def test_alignment() -> None:
    src = '{\n"a": 1,\n"bbb": 2, // c\n"cc": {"x": 1},\n\n"dddd": 4,\n"e": 5,\n// own line\n"ffffff": 6,\n"g": 7}'
    assert format(src).decode() == (
        "{\n"
        '\t"a":   1,\n'
        '\t"bbb": 2, // c\n'
        '\t"cc":  {"x": 1},\n'
        "\n"
        '\t"dddd": 4,\n'
        '\t"e":    5,\n'
        "\t// own line\n"
        '\t"ffffff": 6,\n'
        '\t"g":      7,\n'
        "}\n"
    )


def test_alignment_breaks_at_multiline_values_and_counts_bytes() -> None:
    src = '{\n"a": 1,\n"bb": [\n1],\n"ccc": 3,\n"é": 4}'
    assert format(src).decode() == ('{\n\t"a": 1,\n\t"bb": [\n\t\t1\n\t],\n\t"ccc": 3,\n\t"é":  4\n}\n')


def test_inline_objects_are_not_aligned() -> None:
    assert format('{"a": {"x": 1, "yyy": 2}}') == b'{"a": {"x": 1, "yyy": 2}}\n'


def test_eighty_byte_rule() -> None:
    # estimate: 2 for the brackets + (1 + 2) per element -> 26 elements = 80 (inline), 27 = 83
    inline = "[" + ",".join(["1"] * 26) + "]"
    assert format(inline).count(b"\n") == 1
    expanded = "[" + ",".join(["1"] * 27) + "]"
    assert format(expanded).decode() == "[\n" + "\t1,\n" * 26 + "\t1\n]\n"
    # objects count 2 for ": " and 2 for ", " per member
    obj = "{" + ",".join(f'"{k}":1' for k in "abcdefghijk") + "}"  # 2 + 11 * (3 + 2 + 1 + 2) = 90
    assert format(obj).startswith(b"{\n\t")
    # comments count: a 70-byte block comment pushes a short array over
    assert format("[1, /*" + "x" * 70 + "*/ 2]").startswith(b"[\n")
    assert format("[1, /*" + "x" * 60 + "*/ 2]").count(b"\n") == 1


def test_expanded_child_counts_as_brackets() -> None:
    src = '{"acls": [{"action": "accept", "src": ["group:admins", "tag:server", "autogroup:member"]}]}'
    assert format(src).decode() == (
        '{"acls": [{\n\t"action": "accept",\n\t"src":    ["group:admins", "tag:server", "autogroup:member"]\n}]}\n'
    )


def test_guarantees_on_a_policy() -> None:
    src = """// Tailnet policy
{
  "groups": {
    "group:admins": ["alice@example.com", "bob@example.com",],  // admins
    /* engineering */ "group:eng": ["carol@example.com"],
  },
  "acls": [
    {"action": "accept", "src": ["group:admins"], "dst": ["*:*"]},
    // eng reaches servers
    {"action": "accept", "src": ["group:eng"], "dst": ["tag:server:22,443", "tag:db:5432", "tag:web:80"]},
  ],
  "derpMap": {"OmitDefaultRegions": false, "Regions": {"900": null}}
}
"""
    out = format(src)
    assert format(out) == out
    assert loads(out) == loads(src)
    assert hujson.parse(out).pack() == out
    assert not out.startswith((b" ", b"\n")) and out.endswith(b"}\n")


def test_standard_in_standard_out() -> None:
    src = '{\n  "a": [\n    1,\n    2\n  ],\n  "b": {\n    "c": null\n  }\n}'
    out = format(src)
    assert hujson.is_standard(out)
    assert out == b'{\n\t"a": [\n\t\t1,\n\t\t2\n\t],\n\t"b": {\n\t\t"c": null\n\t}\n}\n'


def test_format_error() -> None:
    with pytest.raises(HuJSONError) as info:
        format(b"[1,\n2")
    assert (info.value.line, info.value.column) == (2, 2)


def test_deep_format() -> None:
    depth = 20_000
    src = b"[" * depth + b"]" * depth
    out = format(src)
    assert out.replace(b"\t", b"").replace(b"\n", b"") == src
    assert format(out) == out
    assert all(len(line.lstrip(b"\t")) <= 80 for line in out.splitlines())
