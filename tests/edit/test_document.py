"""The public editor :class:`derptool.edit.document.Document`: lookups, add/remove/finish, layout, CRLF,
idempotence, and how often an ``--apply`` run reads the policy."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from derptool import hujson
from derptool.cli import app
from derptool.edit.document import Document
from derptool.errors import ApplyError, InputError

POLICY = b"""// top comment
{
	// people
	"groups": {
		"group:eng": ["alice@example.com"], // engineers
	},
	"DERPMap": {"Regions": {"7": null}}, /* inline */
	"acls": [
		{"action": "accept", "src": ["*"], "dst": ["*:*"]}, // everyone
	],
}
"""


def test_lookup_is_case_insensitive_and_gives_names_as_written() -> None:
    doc = Document.open(POLICY, "p.hujson")
    dmap = doc.get("derpMap")
    assert dmap is not None and dmap.name == "DERPMap" and dmap.is_object
    regions = dmap.get("regions")
    assert regions is not None and regions.path == ("DERPMap", "Regions")
    assert regions.names() == ["7"] and regions.data() == {"7": None}
    acls = doc.get("ACLs")
    assert acls is not None and acls.is_array and not acls.is_object
    assert acls.data() == [{"action": "accept", "src": ["*"], "dst": ["*:*"]}]
    assert doc.get("grants") is None
    assert doc.indent == "\t"


def test_add_and_remove_keep_every_other_byte_and_lay_out_like_neighbours() -> None:
    doc = Document.open(POLICY, "p.hujson")
    doc.add(("groups", "group:ops"), '["carla@example.com"]', trail="on call")
    doc.remove(("DERPMap", "Regions", "7"))
    doc.add(("DERPMap", "Regions", "9"), "null")
    result = doc.finish(summary="changed", unchanged="same")
    assert result.changed and result.summary == "changed"
    assert result.new_bytes == POLICY.replace(
        b'\t\t"group:eng": ["alice@example.com"], // engineers\n',
        b'\t\t"group:eng": ["alice@example.com"], // engineers\n\t\t"group:ops": ["carla@example.com"], // on call\n',
    ).replace(b'{"Regions": {"7": null}}', b'{"Regions": {"9": null}}')
    # after finish, lookups read the edited document
    regions = doc.get("derpMap")
    assert regions is not None and regions.data() == {"Regions": {"9": None}}


def test_new_top_level_section_gets_a_blank_line_and_its_comment() -> None:
    doc = Document.open(POLICY, "p.hujson")
    doc.add(("tagOwners",), doc.object_text([("tag:server", '["group:eng"]', None)], 1), lead=["Tag owners."])
    new = doc.finish(summary="added", unchanged="same").new_bytes
    assert new.endswith(b'\t],\n\n\t// Tag owners.\n\t"tagOwners": {\n\t\t"tag:server": ["group:eng"],\n\t},\n}\n')
    assert new.startswith(POLICY[:-3])
    assert hujson.loads(new)["tagOwners"] == {"tag:server": ["group:eng"]}


def test_append_to_array() -> None:
    doc = Document.open(POLICY, "p.hujson")
    acls = doc.get("acls")
    assert acls is not None
    doc.add((*acls.path, "-"), '{"action": "accept", "src": ["group:eng"], "dst": ["*:22"]}', lead=["ssh"])
    data = hujson.loads(doc.finish(summary="x", unchanged="y").new_bytes)
    assert data["acls"][-1] == {"action": "accept", "src": ["group:eng"], "dst": ["*:22"]}
    assert len(data["acls"]) == 2


def test_finish_without_edits_or_with_a_no_op_gives_the_input_back() -> None:
    assert Document.open(POLICY, "p").finish(summary="x", unchanged="same").new_bytes is POLICY
    doc = Document.open(POLICY, "p")
    doc.add(("groups", "group:eng"), '["alice@example.com"]')  # replaces a member with what it holds
    result = doc.finish(summary="changed", notes=["n"], unchanged="same")
    assert not result.changed and result.new_bytes == POLICY
    assert result.summary == "same" and result.notes == ["n"]
    with pytest.raises(RuntimeError):
        doc.add(("x",), "1")


def test_the_same_edit_twice_changes_nothing_the_second_time() -> None:
    def edit(src: bytes) -> Any:
        doc = Document.open(src, "p")
        if doc.get("hosts") is None:
            doc.add(("hosts",), '{"db": "10.0.0.1"}')
        groups = doc.get("groups")
        assert groups is not None
        if "group:ops" not in groups.names():
            doc.add((*groups.path, "group:ops"), "[]", trail="on call")
        return doc.finish(summary="changed", unchanged="same")

    first = edit(POLICY)
    second = edit(first.new_bytes)
    assert first.changed and not second.changed and second.new_bytes == first.new_bytes


def test_crlf_file_stays_crlf_and_mixed_file_keeps_its_bytes() -> None:
    crlf = POLICY.replace(b"\n", b"\r\n")
    doc = Document.open(crlf, "p")
    doc.add(("groups", "group:ops"), "[]", trail="on call")
    new = doc.finish(summary="x", unchanged="y").new_bytes
    assert new.count(b"\n") == new.count(b"\r\n") and b"group:ops" in new
    assert new.replace(b"\r\n", b"\n") == POLICY.replace(
        b"// engineers\n", b'// engineers\n\t\t"group:ops": [], // on call\n'
    )
    mixed = POLICY.replace(b"// people\n", b"// people\r\n")
    doc = Document.open(mixed, "p")
    doc.add(("groups", "group:ops"), "[]")
    new = doc.finish(summary="x", unchanged="y").new_bytes
    assert b"// people\r\n" in new and new.count(b"\r\n") == 1


@pytest.mark.parametrize(
    "src",
    [
        POLICY,
        b"{}",
        b'{"a":1,"b":[1,2,],}',
        b' /*x*/ {"a" /*y*/ : /*z*/ {"b": "}, ]"} /*w*/ , // c\n "c": "x,"  // d\n , } // end\n',
        b'{\n\t"a": "\\"{", // q\n\t"b": true\n}',
        b'{"\xc3\xa9": ["\xe2\x82\xac", {"k": 1.5e3}], "z": null}',
    ],
)
def test_untouched_members_pack_back_exactly_and_match_the_parser(src: bytes) -> None:
    doc = Document.open(src, "p")
    full = hujson.parse(src).value
    assert isinstance(full, hujson.Object)
    names = [str(m.name.value.decode()) for m in full.members]  # type: ignore[union-attr]
    for name, m in zip(names, full.members, strict=True):
        found = doc.get(name)
        assert found is not None and found.data() == hujson.loads(m.value.pack())
    doc.add(("new",), "1")
    out = doc.finish(summary="x", unchanged="y").new_bytes
    assert hujson.loads(out) == {**hujson.loads(src), "new": 1}
    doc = Document.open(src, "p")
    for name in names:
        member = doc.get(name)
        assert member is not None
        member.names()  # parsing a member's tree in place changes nothing of the file
    assert doc.finish(summary="x", unchanged="y").new_bytes == src


def test_errors() -> None:
    with pytest.raises(InputError, match=r"p:1:7: .*fix the syntax first"):
        Document.open(b'{"a": }', "p")
    with pytest.raises(ApplyError, match="a policy file is a JSON object"):
        Document.open(b"[1]", "p")


# -- how often --apply reads the policy ------------------------------------------------------------


def _count_whole_file_passes(monkeypatch: pytest.MonkeyPatch, size: int) -> dict[str, int]:
    """Wrap every binding of ``hujson.parse`` and of the standardize fast path; count the calls whose input
    is at least half the policy (a pass over the whole file), and every ``hujson.parse`` call."""
    import derptool.hujson.standard as standard

    counts = {"parse_whole": 0, "parse_any": 0, "fast_whole": 0}
    real_parse, real_fast = hujson.parse, standard.fast_loads

    def parse(src: Any) -> Any:
        counts["parse_any"] += 1
        counts["parse_whole"] += len(src) >= size // 2
        return real_parse(src)

    def fast_loads(b: bytes, **kw: Any) -> Any:
        counts["fast_whole"] += len(b) >= size // 2
        return real_fast(b, **kw)

    for name, module in list(sys.modules.items()):
        if name.startswith("derptool"):
            if getattr(module, "parse", None) is real_parse:
                monkeypatch.setattr(module, "parse", parse)
            if getattr(module, "fast_loads", None) is real_fast:
                monkeypatch.setattr(module, "fast_loads", fast_loads)
    return counts


def _big_policy() -> bytes:
    rules = b"".join(
        b'\t\t// rule %d\n\t\t{"action": "accept", "src": ["group:t%d"], "dst": ["*:%d"]},\n' % (i, i, i % 60000 + 1)
        for i in range(3000)
    )
    groups = b"".join(b'\t\t"group:t%d": ["u%d@example.com"], // team %d\n' % (i, i, i) for i in range(3000))
    return (
        b'{\n\t"derpMap": {\n\t\t"Regions": {\n\t\t\t"7": null, // tok\n\t\t},\n\t},\n'
        b'\t"groups": {\n' + groups + b'\t},\n\t"acls": [\n' + rules + b"\t],\n}\n"
    )


@pytest.mark.parametrize(
    "args",
    [
        ["omit", "--region", "us", "--map", "snapshot"],
        ["region", "add", "--id", "900", "--code", "own", "--node", "derp.example.com"],
        ["grants", "--src", "group:t1", "--via", "tag:exit"],
    ],
)
def test_an_apply_run_reads_the_policy_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str]) -> None:
    """The policy is read in one pass (``Document.open``: the standardize fast path, no syntax tree); the
    result is checked in one more pass (``finish``: the output must be valid HuJSON), and validated in one more
    before it is written (two when the policy already had errors: its own are then told apart). No syntax tree of the
    whole file is ever built: ``hujson.parse`` only sees the members an edit touches (``derpMap``, or the
    ``grants`` section a grant is appended to) and the small patch and value texts."""
    src = _big_policy()
    if args[0] == "grants":
        src = src.replace(b'"acls"', b'"grants"').replace(b'"action": "accept", ', b'"ip": ["*"], ')
    policy = tmp_path / "policy.hujson"
    policy.write_bytes(src)
    # load every module whose bindings are counted
    import derptool.cli.grants
    import derptool.cli.maps
    import derptool.cli.region
    import derptool.hujson.format  # noqa: F401

    counts = _count_whole_file_passes(monkeypatch, len(src))
    result = CliRunner().invoke(app, [*args, "--apply", str(policy)])
    assert result.exit_code == 0, result.output + result.stderr
    assert policy.read_bytes() != src
    if args[0] == "grants":
        # the grants section is half of this policy: it is decoded once (is the grant there already?) and
        # parsed once (to append to it)
        # (hujson.parse checks a text in one fast pass before it builds the tree: 4 passes in all)
        # this policy's grants name groups it does not define: the original is validated too (2 more passes)
        assert counts == {"parse_whole": 1, "parse_any": counts["parse_any"], "fast_whole": 6}
    else:
        assert counts == {"parse_whole": 0, "parse_any": counts["parse_any"], "fast_whole": 3}
    assert counts["parse_any"] <= 6


def test_replacing_a_member_keeps_its_comments_and_the_trailing_comma() -> None:
    """A replaced value keeps the comments around it (Go's patch "add" would drop the line comment after it)."""
    doc = Document.open(POLICY, "p")
    doc.add(("groups", "group:eng"), '["bob@example.com"]')
    out = doc.finish(summary="changed", unchanged="same").new_bytes
    assert out == POLICY.replace(b'["alice@example.com"], // engineers', b'["bob@example.com"], // engineers')
