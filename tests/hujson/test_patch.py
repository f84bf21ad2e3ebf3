"""Patch: RFC 6902 operations, Go's error texts and quirks, comment ownership, all-or-nothing."""

from __future__ import annotations

import pytest

from derptool import hujson
from derptool.hujson import HuJSONError, loads, patch
from derptool.hujson.patch import patch_value

DOC = b"""{
\t"a": 1, // A
\t// lead B
\t"b": 2, // B

\t// orphan

\t// lead C
\t"c": [1, 2, 3], // C
}
"""


def test_add_new_member_appends_without_whitespace() -> None:
    assert patch(b'{ "foo": "bar"}', '[{"op": "add", "path": "/baz", "value": "qux"}]') == (
        b'{ "foo": "bar","baz":"qux"}'
    )
    assert patch(b'{ "foo": "bar" }', [{"op": "add", "path": "/baz", "value": "qux"}]) == (
        b'{ "foo": "bar","baz":"qux" }'
    )
    assert patch(b"{}", [{"op": "add", "path": "/a~1b", "value": "é\n"}]) == '{"a/b":"é\\n"}'.encode()


def test_add_existing_member_replaces_in_place() -> None:
    assert patch(b'{"a": /*x*/ 1 /*y*/, "b": 2}', [{"op": "add", "path": "/a", "value": [3]}]) == (
        b'{"a": /*x*/ [3] /*y*/, "b": 2}'
    )


def test_add_array_positions() -> None:
    src = b"[1, 2]"
    assert patch(src, [{"op": "add", "path": "/0", "value": 0}]) == b"[0,1, 2]"
    assert patch(src, [{"op": "add", "path": "/1", "value": 9}]) == b"[1,9, 2]"
    assert patch(src, [{"op": "add", "path": "/-", "value": 3}]) == b"[1, 2,3]"
    assert patch(src, [{"op": "add", "path": "/2", "value": 3}]) == b"[1, 2,3]"
    assert patch(src, [{"op": "add", "path": "/99", "value": 3}]) == b"[1, 2,3]"  # quirk: appends
    assert patch(b"[]", [{"op": "add", "path": "/-", "value": 1}]) == b"[1]"
    assert patch(b"[1,]", [{"op": "add", "path": "/-", "value": 2}]) == b"[1,2]"


def test_add_root_replaces_document() -> None:
    # Go replaces the whole root Value: its comments come from the patch (none here)
    assert patch(b"// c\n{}", [{"op": "add", "path": "", "value": [1]}]) == b"[1]"


def test_remove_takes_owned_comments() -> None:
    out = patch(DOC, [{"op": "remove", "path": "/b"}])
    # Go keeps the blank line that followed B with B's comments: only one survives, after the orphan
    assert out == b'{\n\t"a": 1, // A\n\t// orphan\n\n\t// lead C\n\t"c": [1, 2, 3], // C\n}\n'
    out = patch(DOC, [{"op": "remove", "path": "/c"}])
    # the new last member has no comma after it: Go drops the trailing comma (format adds it back)
    assert out == b'{\n\t"a": 1, // A\n\t// lead B\n\t"b": 2 // B\n\n\t// orphan\n\n\t}\n'
    assert patch(b"[1, 2, 3]", [{"op": "remove", "path": "/1"}]) == b"[1, 3]"
    assert patch(b"[1]", [{"op": "remove", "path": "/0"}]) == b"[]"
    assert patch(b"[1,]", [{"op": "remove", "path": "/0"}]) == b"[]"


def test_remove_keeps_previous_items_same_line_comment() -> None:
    src = b'{\n\t"a": 1, // A\n\t"b": 2,\n\t"c": 3,\n}'
    assert patch(src, [{"op": "remove", "path": "/b"}]) == b'{\n\t"a": 1, // A\n\t"c": 3,\n}'


def test_replace_keeps_surrounding_comments() -> None:
    out = patch(DOC, [{"op": "replace", "path": "/a", "value": {"z": True}}])
    assert out == DOC.replace(b'"a": 1,', b'"a": {"z":true},').replace(b"\t// lead B", b"\t// lead B", 1)
    with pytest.raises(HuJSONError, match="operation 0: cannot replace root value"):
        patch(DOC, [{"op": "replace", "path": "", "value": 1}])


def test_patch_value_comments_travel() -> None:
    ops = b"""[{
\t"op": "add", "path": "/name1",
\t// Comment3
\t"value": "value", // Comment4
}]"""
    out = patch(b'{\n\t"a": 1,\n}', ops)
    # appended at the end: no trailing comma on the new member (Go's insertAt)
    assert out == b'{\n\t"a": 1,\n// Comment3\n\t"name1":"value" // Comment4\n}'
    assert loads(out) == {"a": 1, "name1": "value"}
    rep = b'[{"op": "replace", "path": "/a",\n // new lead\n "value": 5, // new tail\n}]'
    out = patch(b'{\n\t// old lead\n\t"a": 1, // old tail\n\t"b": 2,\n}', rep)
    # the injected comment keeps none of the old indentation (Go's injectLeadingComments)
    assert out == b'{\n\t// new lead\n "a": 5, // new tail\n\t"b": 2,\n}'


def test_move_and_copy_carry_comments() -> None:
    out = patch(DOC, [{"op": "move", "from": "/b", "path": "/e"}])
    assert loads(out) == {"a": 1, "c": [1, 2, 3], "e": 2}
    assert out.count(b"// lead B") == 1 and out.count(b"// B\n") == 1
    assert out.index(b"// lead B") > out.index(b'"c"')
    out = patch(DOC, [{"op": "copy", "from": "/b", "path": "/c/0"}])
    assert loads(out) == {"a": 1, "b": 2, "c": [2, 1, 2, 3]}
    assert out.count(b"// lead B") == 2
    out = patch(b'{"a": {"b": 1}, "c": []}', [{"op": "move", "from": "/a/b", "path": "/c/-"}])
    assert loads(out) == {"a": {}, "c": [1]}


def test_test_op() -> None:
    src = b'{"n": 9223372036854775800, "s": "\\u0066oo", "o": {"x": 1, "y": [true]}, "z": null, "f": 1e1000}'
    ok = [("/n", 9223372036854775801), ("/s", "foo"), ("/o", {"y": [True], "x": 1.0})]
    for path, value in ok:
        assert patch(src, [{"op": "test", "path": path, "value": value}]) == src
    bad = [("/o", {"x": 1}), ("/z", None), ("/f", 1), ("/s", "bar"), ("/o/y/0", 1)]
    for path, value in bad:
        with pytest.raises(HuJSONError) as info:
            patch(src, [{"op": "test", "path": path, "value": value}])
        assert str(info.value) == f'hujson: patch operation 0: values differ at "{path}"'


ERRORS = [
    ('{"op": "add"}', "hujson: patch must be a JSON array"),
    ("[1]", "hujson: patch operation 0: must be a JSON object"),
    (
        '[{"op": "test", "path": "", "value": {}}, {"op": "add", "op": "add"}]',
        'hujson: patch operation 1: duplicate name "op"',
    ),
    ('[{"op": "add", "path": "/x", "value": 1, "value": 2}]', 'hujson: patch operation 0: duplicate name "value"'),
    ('[{"op": 1, "path": ""}]', 'hujson: patch operation 0: member "op" must be a JSON string'),
    ('[{"op": "add", "path": null, "value": 1}]', 'hujson: patch operation 0: member "path" must be a JSON string'),
    ('[{"op": "move", "path": "/a", "from": 3}]', 'hujson: patch operation 0: member "from" must be a JSON string'),
    ('[{"op": "Move", "path": "/a", "from": "/b"}]', 'hujson: patch operation 0: unknown operation "Move"'),
    ('[{"path": "/a"}]', 'hujson: patch operation 0: missing required member "op"'),
    ('[{"op": "remove"}]', 'hujson: patch operation 0: missing required member "path"'),
    ('[{"op": "copy", "path": "/a"}]', 'hujson: patch operation 0: missing required member "from"'),
    ('[{"op": "add", "path": "/a"}]', 'hujson: patch operation 0: missing required member "value"'),
    ('[{"op": "remove", "path": "a"}]', "hujson: patch operation 0: invalid pointer: lacks a forward slash prefix"),
    ('[{"op": "remove", "path": "/nope"}]', "hujson: patch operation 0: value not found"),
    ('[{"op": "remove", "path": ""}]', "hujson: patch operation 0: cannot remove root value"),
    ('[{"op": "add", "path": "/baz/bat", "value": 1}]', "hujson: patch operation 0: value not found"),
    ('[{"op": "replace", "path": "/nope", "value": 1}]', "hujson: patch operation 0: value not found"),
    (
        '[{"op": "move", "from": "/fizz", "path": "/fizz/wuzz"}]',
        'hujson: patch operation 0: cannot move "/fizz" into "/fizz/wuzz"',
    ),
    (
        '[{"op": "move", "from": "/fizz", "path": "/fizz"}]',
        'hujson: patch operation 0: cannot move "/fizz" into "/fizz"',
    ),
    ('[{"op": "move", "from": "", "path": "/x"}]', 'hujson: patch operation 0: cannot move "" into "/x"'),
    ('[{"op": "copy", "from": "", "path": "/x"}]', 'hujson: patch operation 0: cannot copy "" into "/x"'),
    ('[{"op": "copy", "from": "/nope", "path": "/x"}]', "hujson: patch operation 0: value not found"),
    ('[{"op": "remove", "path": "/arr/00"}]', "hujson: patch operation 0: invalid array index: 00"),
    (
        '[{"op": "remove", "path": "/fizz/0"}]',
        "hujson: patch operation 0: invalid pointer: cannot index into literal at /fizz",
    ),
    (
        '[{"op": "add", "path": "/fizz/x", "value": 1}]',
        "hujson: patch operation 0: invalid pointer: cannot index into literal at /fizz",
    ),
    ("[1,", "hujson: line 1, column 4: parsing value: unexpected EOF"),
]


@pytest.mark.parametrize(("ops", "message"), ERRORS)
def test_errors(ops: str, message: str) -> None:
    with pytest.raises(HuJSONError) as info:
        patch(b'{"fizz": "buzz", "arr": [1]}', ops)
    assert str(info.value) == message


def test_data_patch_errors() -> None:
    with pytest.raises(HuJSONError, match="operation 0: must be a JSON object"):
        patch(b"{}", ["add"])
    with pytest.raises(HuJSONError, match='operation 0: member "op" must be a JSON string'):
        patch(b"{}", [{"op": None, "path": ""}])
    with pytest.raises(HuJSONError, match="operation 0: value is not JSON data"):
        patch(b"{}", [{"op": "add", "path": "/x", "value": object()}])


def test_unknown_members_ignored_and_patch_may_have_comments() -> None:
    ops = '// ops\n[{"op": "add", "path": "/x", "value": 1, "comment": [1, 2],}, /* done */]'
    assert patch(b"{}", ops) == b'{"x":1}'


def test_all_or_nothing() -> None:
    v = hujson.parse(DOC)
    before = v.pack()
    ops = [{"op": "remove", "path": "/a"}, {"op": "remove", "path": "/missing"}]
    with pytest.raises(HuJSONError, match="operation 1: value not found"):
        patch_value(v, ops)
    assert v.pack() == before
    # a later malformed operation stops everything before anything runs
    with pytest.raises(HuJSONError, match="operation 1: unknown operation"):
        patch(DOC, [{"op": "remove", "path": "/a"}, {"op": "frobnicate", "path": "/b"}])


def test_sequence_and_no_formatting() -> None:
    ops = [
        {"op": "add", "path": "/derpMap", "value": {"Regions": {}}},
        {"op": "add", "path": "/derpMap/Regions/900", "value": None},
        {"op": "add", "path": "/derpMap/OmitDefaultRegions", "value": True},
        {"op": "test", "path": "/derpMap/Regions", "value": {}},
    ]
    with pytest.raises(HuJSONError, match="operation 3: values differ"):
        patch(b"{}", ops)
    out = patch(b'{\n\t// policy\n\t"acls": [],\n}\n', ops[:3])
    assert out == b'{\n\t// policy\n\t"acls": [],"derpMap":{"Regions":{"900":null},"OmitDefaultRegions":true}\n}\n'
    assert hujson.format(out).decode() == (
        '{\n\t// policy\n\t"acls":    [],\n\t"derpMap": {"Regions": {"900": null}, "OmitDefaultRegions": true},\n}\n'
    )
