"""Geofences end to end: unknown regions, the recorded selectors and the drift gate, single points of failure."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from derptool.cli import app

runner = CliRunner()
SNAPSHOT = Path(__file__).resolve().parents[2] / "derptool" / "data" / "derpmap-snapshot.json"


def _region(rid: int, code: str, name: str, lat: Any, lon: Any) -> dict[str, Any]:
    node = {"Name": f"{rid}a", "RegionID": rid, "HostName": f"derp{rid}.example.com", "IPv4": f"192.0.2.{rid}"}
    return {"RegionID": rid, "RegionCode": code, "RegionName": name, "Latitude": lat, "Longitude": lon, "Nodes": [node]}


def _map(tmp: Path, name: str, *regions: dict[str, Any]) -> str:
    data = copy.deepcopy(json.loads(SNAPSHOT.read_text()))
    for r in regions:
        data["Regions"][str(r["RegionID"])] = r
    path = tmp / name
    path.write_text(json.dumps(data))
    return str(path)


BOSTON = _region(40, "bos", "Boston", 42.36, -71.06)
VIENNA = _region(41, "vie", "Vienna", 48.21, 16.37)
TORONTO = _region(42, "yyz", "Toronto", 43.65, -79.38)
NOWHERE = _region(43, "zzz", "Nowhere", "north", 1)


def test_a_region_outside_the_table_no_longer_slips_through_a_country_deny_list(tmp_path: Path) -> None:
    m = _map(tmp_path, "m.json", BOSTON)
    result = runner.invoke(app, ["omit", "--region", "us", "--map", m, "--format", "json"])
    assert result.exit_code == 0, result.output
    assert "40" in json.loads(result.stdout)["derpMap"]["Regions"]
    shown = runner.invoke(app, ["map", "--map", m])
    assert "by-coordinates" in shown.stdout and "region 40 bos: placed by its coordinates" in shown.stdout


def test_unknown_regions_are_reported_and_strict_fails(tmp_path: Path) -> None:
    m = _map(tmp_path, "m.json", NOWHERE)
    result = runner.invoke(app, ["omit", "--region", "us", "--map", m])
    assert result.exit_code == 0
    assert "zzz (region 43) is left in: its location is unknown (Latitude is a string, not a number)" in result.stderr
    strict = runner.invoke(app, ["omit", "--region", "us", "--map", m, "--strict"])
    assert strict.exit_code == 1 and strict.stdout == ""
    by_id = runner.invoke(app, ["omit", "--region", "us", "--region", "43", "--map", m, "--strict"])
    assert by_id.exit_code == 0, by_id.output
    shown = runner.invoke(app, ["map", "--map", m])
    assert "region 43 zzz: country unknown: Latitude is a string, not a number" in shown.stdout


def test_an_allow_list_keeps_unknown_regions_only_when_asked(tmp_path: Path) -> None:
    m = _map(tmp_path, "m.json", NOWHERE)
    plain = runner.invoke(app, ["omit", "--keep", "eu", "--map", m, "--format", "json"])
    assert "43" in json.loads(plain.stdout)["derpMap"]["Regions"]
    assert "add --keep unknown" in plain.stderr
    asked = runner.invoke(app, ["omit", "--keep", "eu,unknown", "--map", m, "--format", "json"])
    assert "43" not in json.loads(asked.stdout)["derpMap"]["Regions"]


def test_apply_then_check_then_the_map_grows(tmp_path: Path) -> None:
    before = _map(tmp_path, "before.json")
    after = _map(tmp_path, "after.json", VIENNA, TORONTO)
    policy = tmp_path / "policy.hujson"
    policy.write_text('{\n\t// ours\n\t"acls": [],\n}\n')
    applied = runner.invoke(app, ["omit", "--keep", "eu", "--map", before, "--apply", str(policy)])
    assert applied.exit_code == 0, applied.output
    text = policy.read_text()
    assert '\t// derptool: omit --keep eu\n\t"derpMap"' in text
    assert runner.invoke(app, ["omit", "--check", str(policy), "--map", before]).exit_code == 0
    grown = runner.invoke(app, ["omit", "--check", str(policy), "--map", after])
    assert grown.exit_code == 1
    lines = grown.stdout.strip().splitlines()
    assert len(lines) == 1 and "region yyz (region 42)" in lines[0]  # Vienna is in the EU: kept, not drift
    assert f"run 'derptool omit --keep eu --apply {policy}'" in lines[0]
    validated = runner.invoke(app, ["validate", "--geofence", "--map", after, "--format", "json", str(policy)])
    assert validated.exit_code == 1
    problems = json.loads(validated.stdout)
    assert [(p["line"], p["severity"]) for p in problems] == [(6, "error")] and "yyz" in problems[0]["message"]
    # --diff exits 1 while the edit is pending, and writes nothing
    pending = runner.invoke(app, ["omit", "--keep", "eu", "--map", after, "--apply", str(policy), "--diff"])
    assert pending.exit_code == 1 and '+\t\t\t"42": null' in pending.stdout and policy.read_text() == text
    fixed = runner.invoke(app, ["omit", "--keep", "eu", "--map", after, "--apply", str(policy)])
    assert fixed.exit_code == 0
    assert policy.read_text().count("// derptool: omit") == 1
    assert runner.invoke(app, ["omit", "--check", str(policy), "--map", after]).exit_code == 0
    clean = runner.invoke(app, ["omit", "--keep", "eu", "--map", after, "--apply", str(policy), "--diff"])
    assert clean.exit_code == 0 and clean.stdout == ""


def test_a_changed_selector_is_recorded_and_replace_reports_stale_nulls(tmp_path: Path) -> None:
    m = _map(tmp_path, "m.json")
    policy = tmp_path / "p.hujson"
    policy.write_text('{\n  "derpMap": {\n    "Regions": {},\n  },\n}\n')
    assert runner.invoke(app, ["omit", "--region", "de", "--map", m, "--apply", str(policy)]).exit_code == 0
    assert '  // derptool: omit --region de\n  "derpMap"' in policy.read_text()
    assert (
        runner.invoke(app, ["omit", "--region", "nl", "--map", m, "--apply", str(policy), "--replace"]).exit_code == 0
    )
    text = policy.read_text()
    assert "// derptool: omit --region nl --replace" in text and "--region de" not in text
    # A hand-added null is not what the selectors say: --replace recorded, so --check flags it.
    policy.write_text(text.replace('"Regions": {', '"Regions": {\n      "4": null,', 1))
    stale = runner.invoke(app, ["omit", "--check", str(policy), "--map", m])
    assert (
        stale.exit_code == 1 and "region 4: removed, but '--region nl --replace' no longer selects it" in stale.stdout
    )


@pytest.mark.parametrize(
    ("line", "why"),
    [
        ("// derptool: omit --keep eu --frobnicate", "'--frobnicate', which is not --region SEL"),
        ("// derptool: omit --keep", "ends with --keep and no selector"),
        ("// derptool: omit --keep 'eu", "cannot be read"),
        ("// derptool: omit", "records no selector"),
        ("// derptool: omit --keep atlantis", "no longer apply"),
    ],
)
def test_a_tampered_selector_line_is_exit_2_with_its_place(tmp_path: Path, line: str, why: str) -> None:
    m = _map(tmp_path, "m.json")
    policy = tmp_path / "p.hujson"
    policy.write_text(f'{{\n\t"acls": [],\n\n\t{line}\n\t"derpMap": {{"Regions": {{"1": null}}}},\n}}\n')
    for args in (["omit", "--check", str(policy)], ["validate", "--geofence", str(policy)]):
        result = runner.invoke(app, [*args, "--map", m])
        assert result.exit_code == 2, result.output
        assert result.stderr.startswith(f"derptool: error: {policy}:4:2: ") and why in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1


def test_two_selector_lines_and_a_policy_without_one(tmp_path: Path) -> None:
    m = _map(tmp_path, "m.json")
    policy = tmp_path / "p.hujson"
    policy.write_text('{\n// derptool: omit --keep eu\n// derptool: omit --keep us\n"derpMap": {},\n}\n')
    twice = runner.invoke(app, ["omit", "--check", str(policy), "--map", m])
    assert twice.exit_code == 2 and f"{policy}:3:1: a second" in twice.stderr
    policy.write_text('{"acls": []}\n')
    none = runner.invoke(app, ["omit", "--check", str(policy), "--map", m])
    assert none.exit_code == 2 and "records no geofence" in none.stderr
    assert runner.invoke(app, ["omit", "--check", str(policy), "--keep", "eu"]).exit_code == 2


def test_single_points_of_failure_are_named_and_min_regions_gates(tmp_path: Path) -> None:
    m = _map(tmp_path, "m.json")
    one = runner.invoke(app, ["omit", "--keep", "fra", "--map", m])
    assert one.exit_code == 0
    assert "only one DERP region is left (fra (region 4))" in one.stderr
    germany = runner.invoke(app, ["omit", "--keep", "de", "--map", m])
    assert "only one DERP region is left" in germany.stderr or "in one country (DE" in germany.stderr
    us = runner.invoke(app, ["omit", "--keep", "us", "--map", m])
    assert "every DERP region left is in one country (US:" in us.stderr
    gated = runner.invoke(app, ["omit", "--keep", "us", "--map", m, "--min-regions", "50"])
    assert gated.exit_code == 1 and "fewer than --min-regions 50" in gated.stderr and gated.stdout == ""
    assert runner.invoke(app, ["omit", "--keep", "eu", "--map", m, "--min-regions", "2"]).exit_code == 0
    assert runner.invoke(app, ["omit", "--keep", "eu", "--map", m, "--min-regions", "0"]).exit_code == 2
