"""``--apply``: policy files edited in place through hujson.patch, every comment kept, idempotent, atomic."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from derptool import hujson
from derptool.cli import app
from derptool.derpmap.sources import load_snapshot
from derptool.edit.document import ApplyResult
from derptool.edit.grants import apply_grants, plan_egress
from derptool.edit.omit import apply_omit, omit_universe, plan_omit
from derptool.edit.region import apply_region, plan_region
from derptool.policy.validate import validate_bytes
from tests.support.repo import EXAMPLES

runner = CliRunner()


def comments(src: bytes) -> Counter[bytes]:
    """Every comment's text (``//`` to end of line, ``/* */`` whole), outside strings, as a multiset."""
    out: Counter[bytes] = Counter()
    i, n = 0, len(src)
    while i < n:
        c = src[i : i + 1]
        if c == b'"':
            i += 1
            while i < n and src[i : i + 1] != b'"':
                i += 2 if src[i : i + 1] == b"\\" else 1
            i += 1
        elif src[i : i + 2] == b"//":
            end = src.find(b"\n", i)
            end = n if end < 0 else end
            out[src[i:end].rstrip(b"\r \t")] += 1
            i = end
        elif src[i : i + 2] == b"/*":
            end = src.index(b"*/", i) + 2
            out[src[i:end]] += 1
            i = end
        else:
            i += 1
    return out


REAL_WORLD = b"""// This tailnet's ACLs are maintained in https://github.com/example/tailnet
/* Policy for example.com.
 * Reviewed quarterly. */
{
	// Groups of people.
	"groups": {
		"group:eng":   ["alice@example.com", "bob@example.com"], // engineers
		"group:ops":   ["carla@example.com"], /* on call */
		"group:staff-eu": ["dora@example.com"],
	},

	"tagOwners": {
		"tag:server": ["group:ops"], // servers
	},

	// Everyone may reach the servers.
	"grants": [
		{"src": ["group:eng"], "dst": ["tag:server"], "ip": ["tcp:22"]}, // ssh
	],

	// DERP: no relays in Japan (legal asked).
	"derpMap": {
		/* Regions below */
		"Regions": {
			"7": null, // tok
			// Our own relay in Frankfurt.
			"900": {
				"RegionID":   900,
				"RegionCode": "fra-own",
				"RegionName": "Frankfurt (own)",
				"Nodes": [{"Name": "900a", "RegionID": 900, "HostName": "derp.example.com"}],
			},
		}, // end of regions
	},

	// Tests.
	"tests": [
		{"src": "alice@example.com", "accept": ["tag:server:22"]}, // alice can ssh
	],
} // end of policy
// trailing file comment
"""

TWO_SPACES_NO_DERP = b"""{
  // two-space indentation, no derpMap, no trailing commas
  "acls": [
    {"action": "accept", "src": ["autogroup:member"], "dst": ["autogroup:self:*"]} // own devices
  ]
  /* last comment before the closing brace */
}
"""

INLINE_DERP = b'{"derpMap": {"Regions": {"1": null}}, "acls": []}\n'

CRLF = REAL_WORLD.replace(b"\n", b"\r\n")


def policies() -> list[tuple[str, bytes]]:
    out = [
        ("real-world", REAL_WORLD),
        ("two-spaces", TWO_SPACES_NO_DERP),
        ("inline", INLINE_DERP),
        ("crlf", CRLF),
        ("empty-object", b"{}\n"),
    ]
    out += [(p.name, p.read_bytes()) for p in sorted(EXAMPLES.glob("*.hujson"))]
    return out


POLICIES = policies()
IDS = [name for name, _ in POLICIES]


def errors(src: bytes) -> list[str]:
    return [p.message for p in validate_bytes(src, "p") if p.severity == "error"]


def check_edit(src: bytes, result: ApplyResult, added: Counter[bytes]) -> Any:
    """The invariants of every edit: old comments kept, asked-for comments added, line endings kept,
    no new validation errors; returns the new data."""
    new = result.new_bytes
    assert comments(new) - comments(src) == added
    assert not (comments(src) - comments(new)), "a comment was lost"
    if b"\r\n" in src and src.count(b"\n") == src.count(b"\r\n"):
        assert new.count(b"\n") == new.count(b"\r\n"), "CRLF file got LF lines"
    assert errors(new) == errors(src)
    return hujson.loads(new)


def omit_plan(src: bytes, **kw: Any) -> Any:
    return plan_omit(omit_universe(load_snapshot().derp_map, src), **kw)


@pytest.mark.parametrize(("name", "src"), POLICIES, ids=IDS)
def test_omit_keep_eu_on_every_policy(name: str, src: bytes) -> None:
    plan = omit_plan(src, keep=["eu"])
    before = hujson.loads(src)
    old_regions = {k: v for k, v in ((before.get("derpMap") or {}).get("Regions") or {}).items()}
    result = apply_omit(src, plan, file=name)
    defined = {k for k, v in old_regions.items() if v is not None}
    if (before.get("derpMap") or {}).get("OmitDefaultRegions"):
        assert not result.changed and result.new_bytes == src
        return
    new_ids = [r.region_id for r in plan.omitted if str(r.region_id) not in old_regions]
    from derptool.edit.omit import region_label

    added = Counter(f"// {region_label(r)}".encode() for r in plan.omitted if r.region_id in new_ids)
    if "derpMap" not in before:
        added[b"// DERP relays: regions set to null are removed from Tailscale's map (derptool omit)."] += 1
    data = check_edit(src, result, added)
    regions = data["derpMap"]["Regions"]
    for r in plan.omitted:
        if str(r.region_id) in defined:
            assert regions[str(r.region_id)] == old_regions[str(r.region_id)]
        else:
            assert regions[str(r.region_id)] is None
    for r in plan.kept:
        assert regions.get(str(r.region_id), "absent") == old_regions.get(str(r.region_id), "absent")
    # everything outside derpMap is the same data
    assert {k: v for k, v in data.items() if k != "derpMap"} == {k: v for k, v in before.items() if k != "derpMap"}
    # a second identical run changes nothing
    again = apply_omit(result.new_bytes, omit_plan(result.new_bytes, keep=["eu"]), file=name)
    assert not again.changed and again.new_bytes == result.new_bytes


def test_omit_layout_matches_the_fragment_and_the_file() -> None:
    result = apply_omit(REAL_WORLD, omit_plan(REAL_WORLD, omit=["nyc", "tok"]), file="p")
    text = result.new_bytes.decode()
    assert '\t\t\t"7": null, // tok\n' in text  # already there: untouched
    assert (
        '\t\t\t},\n\t\t\t"1": null, // nyc (region 1): New York City, United States\n\t\t}, // end of regions\n'
    ) in text
    assert "1 region(s) set to null (nyc (region 1)); 1 already null" in result.summary
    # only the new line differs
    assert text.replace('\t\t\t"1": null, // nyc (region 1): New York City, United States\n', "") == REAL_WORLD.decode()


def test_omit_two_space_file_gets_two_space_derpmap_at_the_end() -> None:
    result = apply_omit(TWO_SPACES_NO_DERP, omit_plan(TWO_SPACES_NO_DERP, omit=["nyc", "sfo"]), file="p")
    text = result.new_bytes.decode()
    assert text.startswith(TWO_SPACES_NO_DERP.decode().split("\n  /* last")[0])
    assert (
        "\n\n  // DERP relays: regions set to null are removed from Tailscale's map (derptool omit).\n"
        '  "derpMap": {\n    "Regions": {\n      "1": null, // nyc (region 1): New York City, United States\n'
        '      "2": null, // sfo (region 2): San Francisco, United States\n    },\n  }'
    ) in text
    assert text.endswith("  /* last comment before the closing brace */\n}\n")


def test_omit_replace_drops_nulls_not_selected_and_keeps_definitions() -> None:
    plan = omit_plan(REAL_WORLD, omit=["nyc"])
    result = apply_omit(REAL_WORLD, plan, replace=True, file="p")
    regions = hujson.loads(result.new_bytes)["derpMap"]["Regions"]
    assert regions["1"] is None
    assert "7" not in regions  # tok comes back
    assert regions["900"]["RegionCode"] == "fra-own"
    assert b"// tok" not in result.new_bytes  # the removed entry took its comment along
    assert "null entry removed (7)" in result.summary


def test_omit_never_nulls_a_region_the_policy_defines() -> None:
    plan = omit_plan(REAL_WORLD, omit=["900", "nyc"])
    result = apply_omit(REAL_WORLD, plan, file="p")
    assert hujson.loads(result.new_bytes)["derpMap"]["Regions"]["900"]["RegionCode"] == "fra-own"
    assert any("900" in n for n in result.notes)


def test_omit_with_omit_default_regions_changes_nothing() -> None:
    for src in (
        (EXAMPLES / "self-hosted-derp.hujson").read_bytes(),
        b'{"derpMap": {"OmitDefaultRegions": true, "Regions": {}}}',
    ):
        assert hujson.loads(src)["derpMap"]["OmitDefaultRegions"] is True
        result = apply_omit(src, omit_plan(src, omit=["nyc"]), file="p")
        assert not result.changed and result.new_bytes == src
        assert "OmitDefaultRegions" in result.notes[0]


@pytest.mark.parametrize(("name", "src"), POLICIES, ids=IDS)
def test_region_add_on_every_policy(name: str, src: bytes) -> None:
    plan = plan_region(
        950,
        "ams-own",
        "Amsterdam (own)",
        ["derp9.example.net,ipv4=198.51.100.9,stun-port=3479"],
        latitude=52.37,
        longitude=4.9,
    )
    result = apply_region(src, plan, file=name)
    before = hujson.loads(src)
    added = Counter(
        [
            b"// ams-own (region 950): Amsterdam (own), self-hosted",
            b"// 950a: DERP over HTTPS on TCP 443, STUN on UDP 3479",
        ]
    )
    if "derpMap" not in before:
        added[b"// DERP relays: self-hosted regions (derptool region add)."] += 1
    data = check_edit(src, result, added)
    assert data["derpMap"]["Regions"]["950"] == plan.region.to_data()
    again = apply_region(result.new_bytes, plan, file=name)
    assert not again.changed and again.new_bytes == result.new_bytes


def test_region_add_replaces_an_existing_definition_keeping_its_comment() -> None:
    plan = plan_region(900, "fra-own", "Frankfurt (own)", ["derp.example.com,ipv6=2001:db8::9"], omit_default=True)
    result = apply_region(REAL_WORLD, plan, file="p")
    data = hujson.loads(result.new_bytes)
    assert data["derpMap"]["Regions"]["900"]["Nodes"][0]["IPv6"] == "2001:db8::9"
    assert data["derpMap"]["OmitDefaultRegions"] is True
    assert comments(REAL_WORLD) <= comments(result.new_bytes)
    assert "region 900 replaced (the existing definition)" in result.summary
    assert any("null entries (7)" in n for n in result.notes)


@pytest.mark.parametrize(("name", "src"), POLICIES, ids=IDS)
def test_grants_on_every_policy(name: str, src: bytes) -> None:
    plan = plan_egress(["autogroup:member"], ["tag:exit-eu"], owners=["autogroup:admin"])
    before = hujson.loads(src)
    result = apply_grants(src, plan, file=name)
    added = Counter(f"// {c}".encode() for c in plan.comment)
    owners_before = before.get("tagOwners") or {}
    if "tagOwners" not in before:
        added[b"// Tags must have owners: who may apply them to devices."] += 1
    data = check_edit(src, result, added)
    assert data["grants"][-1] == plan.grant
    assert data["grants"][:-1] == before.get("grants", [])
    assert data["tagOwners"]["tag:exit-eu"] == owners_before.get("tag:exit-eu", ["autogroup:admin"])
    again = apply_grants(result.new_bytes, plan, file=name)
    assert not again.changed and again.new_bytes == result.new_bytes


def test_grants_already_present_in_the_example_is_a_no_op() -> None:
    src = (EXAMPLES / "regional-exit-nodes.hujson").read_bytes()
    plan = plan_egress(["group:staff-eu"], ["tag:exit-eu"])
    result = apply_grants(src, plan, file="p")
    assert not result.changed and result.new_bytes == src


def test_bad_policy_files_fail_with_one_clear_error() -> None:
    plan = omit_plan(b"{}", omit=["nyc"])
    from derptool.errors import DerptoolError

    for src, message in [
        (b'{\n\t"acls": [,]\n}', "2:"),
        (b"[]", "JSON object"),
        (b'{"derpMap": []}', "must be an object"),
        (b'{"derpMap": {"Regions": 3}}', "must be an"),
    ]:
        with pytest.raises(DerptoolError, match=message):
            apply_omit(src, plan, file="p.hujson")


# -- the CLI: diff, idempotence, atomic writes ------------------------------------------------------


def write_policy(tmp_path: Path, data: bytes = REAL_WORLD) -> Path:
    p = tmp_path / "policy.hujson"
    p.write_bytes(data)
    return p


def test_cli_apply_then_again_is_a_no_op(tmp_path: Path) -> None:
    p = write_policy(tmp_path)
    first = runner.invoke(app, ["omit", "--keep", "eu", "--map", "snapshot", "--apply", str(p)])
    assert first.exit_code == 0, first.stderr
    assert "written" in first.stdout
    content, mtime = p.read_bytes(), p.stat().st_mtime_ns
    second = runner.invoke(app, ["omit", "--keep", "eu", "--map", "snapshot", "--apply", str(p)])
    assert second.exit_code == 0
    assert "already up to date" in second.stdout and "not written" in second.stdout
    assert p.read_bytes() == content and p.stat().st_mtime_ns == mtime
    assert validate_bytes(content, str(p)) == [] or all(x.severity == "warning" for x in validate_bytes(content, "p"))


def test_cli_diff_prints_a_unified_diff_and_writes_nothing(tmp_path: Path) -> None:
    p = write_policy(tmp_path)
    result = runner.invoke(app, ["omit", "-r", "nyc", "-m", "snapshot", "--apply", str(p), "--diff"])
    assert result.exit_code == 1, result.stderr  # an edit is pending
    assert result.stdout.startswith(f"--- {p}\n+++ {p}\n@@ ")
    assert '+\t\t\t"1": null, // nyc (region 1): New York City, United States' in result.stdout
    assert p.read_bytes() == REAL_WORLD
    assert sorted(os.listdir(tmp_path)) == ["policy.hujson"]


def test_cli_mode_kept(tmp_path: Path) -> None:
    p = write_policy(tmp_path)
    p.chmod(0o640)
    assert runner.invoke(app, ["grants", "--src", "group:eng", "--via", "tag:exit", "--apply", str(p)]).exit_code == 0
    assert p.stat().st_mode & 0o777 == 0o640


def test_cli_concurrent_change_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import derptool.edit.omit

    p = write_policy(tmp_path)
    real = derptool.edit.omit.apply_omit

    def meddling(*args: Any, **kw: Any) -> ApplyResult:
        out = real(*args, **kw)
        p.write_bytes(REAL_WORLD + b"// someone else saved\n")
        return out

    monkeypatch.setattr(derptool.edit.omit, "apply_omit", meddling)
    result = runner.invoke(app, ["omit", "-r", "nyc", "-m", "snapshot", "--apply", str(p)])
    assert result.exit_code == 1
    assert "changed on disk since it was read" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert p.read_bytes().endswith(b"// someone else saved\n")


@pytest.mark.parametrize("where", ["fsync", "replace"])
def test_cli_crash_mid_write_leaves_the_original_and_no_temp_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    p = write_policy(tmp_path)

    def crash(*args: Any, **kw: Any) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, where, crash)
    result = runner.invoke(
        app, ["region", "add", "--id", "901", "--code", "x", "--node", "d.example.com", "--apply", str(p)]
    )
    monkeypatch.undo()
    assert result.exit_code == 2
    assert result.stderr.startswith("derptool: error: ") and "left unchanged" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert p.read_bytes() == REAL_WORLD
    assert sorted(os.listdir(tmp_path)) == ["policy.hujson"]


def test_cli_read_only_file_fails_cleanly(tmp_path: Path) -> None:
    p = write_policy(tmp_path)
    chattr = shutil.which("chattr")
    if chattr is None or subprocess.run([chattr, "+i", str(p)], capture_output=True).returncode != 0:
        pytest.skip("chattr +i is not available here (the write error path is covered by the crash tests)")
    try:
        result = runner.invoke(app, ["omit", "-r", "nyc", "-m", "snapshot", "--apply", str(p)])
    finally:
        subprocess.run([chattr, "-i", str(p)], check=True)
    assert result.exit_code == 2
    assert result.stderr.startswith("derptool: error: ")
    assert len(result.stderr.strip().splitlines()) == 1
    assert p.read_bytes() == REAL_WORLD
    assert sorted(os.listdir(tmp_path)) == ["policy.hujson"]


def test_cli_apply_errors(tmp_path: Path) -> None:
    missing = runner.invoke(app, ["omit", "-r", "nyc", "-m", "snapshot", "--apply", str(tmp_path / "nope.hujson")])
    assert missing.exit_code == 2 and "no such file" in missing.stderr
    bad = write_policy(tmp_path, b'{\n\t"acls": [}\n')
    result = runner.invoke(app, ["omit", "-r", "nyc", "-m", "snapshot", "--apply", str(bad)])
    assert result.exit_code == 2
    assert f"{bad}:2:" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    no_apply = runner.invoke(app, ["omit", "-r", "nyc", "--diff"])
    assert no_apply.exit_code == 2 and "--diff needs --apply" in no_apply.stderr


def test_created_sections_are_in_tailscale_format() -> None:
    src = b"{\n\t// nothing yet\n}\n"
    region = plan_region(950, "x", None, ["d.example.com"], omit_default=True)
    for result in [
        apply_region(src, region),
        apply_omit(src, omit_plan(src, omit=["us"])),
        apply_grants(src, plan_egress(["a@example.com"], ["tag:e"])),
    ]:
        assert hujson.format(result.new_bytes) == result.new_bytes
        assert b"// nothing yet" in result.new_bytes


def test_apply_to_stdin_is_refused() -> None:
    result = runner.invoke(app, ["omit", "-r", "nyc", "-m", "snapshot", "--apply", "-"])
    assert result.exit_code == 2 and "not '-'" in result.stderr


REGION_CODES = sorted(r.region_code for r in load_snapshot().derp_map.region_list())


@given(
    picked=st.lists(st.sampled_from(REGION_CODES), min_size=1, max_size=6, unique=True),
    crlf=st.booleans(),
    replace=st.booleans(),
)
@settings(max_examples=40, deadline=None)
def test_omit_property_comments_kept_and_idempotent(picked: list[str], crlf: bool, replace: bool) -> None:
    src = CRLF if crlf else REAL_WORLD
    plan = omit_plan(src, omit=picked)
    result = apply_omit(src, plan, replace=replace, file="p")
    lost = comments(src) - comments(result.new_bytes)
    if replace:
        assert set(lost) <= {b"// tok"}  # the dropped null entry takes its own comment along
    else:
        assert not lost
    regions = hujson.loads(result.new_bytes)["derpMap"]["Regions"]
    assert all(regions[str(r.region_id)] is None for r in plan.omitted if r.region_id != 900)
    again = apply_omit(result.new_bytes, omit_plan(result.new_bytes, omit=picked), replace=replace, file="p")
    assert not again.changed
    assert errors(result.new_bytes) == []
