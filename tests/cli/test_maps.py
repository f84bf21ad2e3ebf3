"""``derptool map`` and ``derptool omit`` through Typer's runner and as the installed console script."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from derptool import hujson
from derptool.cli import app
from derptool.derpmap.geography import geo_for
from derptool.derpmap.sources import load_snapshot

runner = CliRunner()


def us_region_ids() -> set[int]:
    dmap = load_snapshot().derp_map
    return {r.region_id for r in dmap.region_list() if geo_for(r).country == "US"}


def test_omit_region_us_prints_every_us_region_and_nothing_else() -> None:
    result = runner.invoke(app, ["omit", "--region", "us"])
    assert result.exit_code == 0, result.stderr
    fragment = hujson.loads(result.stdout)
    regions = fragment["derpMap"]["Regions"]
    assert {int(k) for k in regions} == us_region_ids()
    assert all(v is None for v in regions.values())
    # one comment per region, naming code, ID, city and country
    assert '"1":  null, // nyc (region 1): New York City, United States' in result.stdout
    assert result.stdout.count("United States") == len(us_region_ids())
    # offline: the notice says the snapshot was used
    assert "using the bundled snapshot of 2026-09-01" in result.stderr


def test_omit_output_is_already_in_hujson_format() -> None:
    out = runner.invoke(app, ["omit", "--region", "us", "--map", "snapshot"]).stdout
    assert hujson.format(out.encode()).decode() == out


def test_omit_json_and_keep_eu() -> None:
    result = runner.invoke(app, ["omit", "--keep", "eu", "--format", "json", "--map", "snapshot"])
    assert result.exit_code == 0
    regions = json.loads(result.stdout)["derpMap"]["Regions"]
    dmap = load_snapshot().derp_map
    kept = {r.region_id for r in dmap.region_list()} - {int(k) for k in regions}
    assert sorted(r.region_code for r in dmap.region_list() if r.region_id in kept) == [
        "ams",
        "fra",
        "hel",
        "mad",
        "nue",
        "par",
        "waw",
    ]
    assert "8" in regions  # London is not in the EU


def test_omit_refuses_to_remove_everything_unless_allowed() -> None:
    refused = runner.invoke(app, ["omit", "--region", "all", "--map", "snapshot"])
    assert refused.exit_code == 2
    assert "--allow-empty" in refused.stderr and refused.stdout == ""
    allowed = runner.invoke(app, ["omit", "--region", "all", "--allow-empty", "--map", "snapshot", "-f", "json"])
    assert allowed.exit_code == 0
    assert len(json.loads(allowed.stdout)["derpMap"]["Regions"]) == 28


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["omit", "--region", "nyk"], 2, "did you mean nyc"),
        (["omit"], 2, "nothing to omit"),
        (["omit", "--region", "us", "--format", "xml"], 2, "Invalid value"),
        (["omit", "--bogus"], 2, "No such option"),
        (["omit", "--region", "us", "--map", "/nonexistent/map.json"], 2, "no such file"),
        (["map", "--map", "http://127.0.0.1:9/map.json"], 3, "connection refused"),
    ],
)
def test_bad_input_is_one_line_and_the_documented_exit_code(args: list[str], code: int, message: str) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == code
    assert message in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_bad_map_content_names_file_and_position(tmp_path: Path) -> None:
    path = tmp_path / "policy.hujson"
    path.write_text('{\n  "derpMap": {"Regions": {"900": {"RegionID": 900,}}}\n  "acls": []\n}\n')
    result = runner.invoke(app, ["omit", "--region", "us", "--map", str(path)])
    assert result.exit_code == 2
    line = result.stderr.strip().splitlines()[-1]
    assert line.startswith(f"derptool: error: {path}:3:3: invalid HuJSON")


def test_map_table_and_json() -> None:
    table = runner.invoke(app, ["map", "--map", "snapshot", "--region", "de"])
    assert table.exit_code == 0
    assert "fra" in table.stdout and "nue" in table.stdout and "nyc" not in table.stdout
    assert "2 regions, 8 nodes" in table.stdout
    as_json = runner.invoke(app, ["map", "--map", "snapshot", "-f", "json", "-r", "1"])
    assert json.loads(as_json.stdout)["Regions"]["1"]["RegionCode"] == "nyc"


def test_map_of_a_policy_file_shows_custom_region(tmp_path: Path) -> None:
    path = tmp_path / "policy.hujson"
    path.write_text(
        json.dumps(
            {
                "derpMap": {
                    "OmitDefaultRegions": True,
                    "Regions": {
                        "900": {
                            "RegionID": 900,
                            "RegionCode": "own",
                            "RegionName": "Own",
                            "Nodes": [
                                {"Name": "900a", "RegionID": 900, "HostName": "derp.example.com", "STUNOnly": True}
                            ],
                        }
                    },
                }
            }
        )
    )
    result = runner.invoke(app, ["map", "--map", str(path)])
    assert result.exit_code == 0
    row = next(line for line in result.stdout.splitlines() if line.startswith("900"))
    assert "unknown" in row and "STUN-only" in row and "custom" in row


def console_script() -> list[str]:
    exe = shutil.which("derptool", path=os.path.dirname(sys.executable))
    return [exe] if exe else [sys.executable, "-m", "derptool"]


def test_installed_console_script_runs_offline() -> None:
    proc = subprocess.run(
        [*console_script(), "omit", "--region", "us"], capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert {int(k) for k in hujson.loads(proc.stdout)["derpMap"]["Regions"]} == us_region_ids()
    bad = subprocess.run(
        [*console_script(), "omit", "--region", "atlantis"], capture_output=True, text=True, timeout=60, check=False
    )
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines()[-1].startswith("derptool: error: region selector 'atlantis'")


def test_python_dash_m_and_version() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "derptool", "--version"], capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 0 and proc.stdout.startswith("derptool ")


def test_derptool_map_environment_variable_names_the_map(tmp_path: Path) -> None:
    path = tmp_path / "map.json"
    node = {"Name": "a", "RegionID": 900, "HostName": "h.example"}
    path.write_text(
        json.dumps({"Regions": {"900": {"RegionID": 900, "RegionCode": "own", "RegionName": "Own", "Nodes": [node]}}})
    )
    result = runner.invoke(app, ["map", "-f", "json"], env={"DERPTOOL_MAP": str(path)})
    assert result.exit_code == 0
    assert list(json.loads(result.stdout)["Regions"]) == ["900"]
    assert result.stderr == ""  # no fetch, no fallback notice


def test_map_table_shows_continent_selector_names_not_codes() -> None:
    """The CONTINENT column showed ``NA`` for North America, but the selector ``na`` is
    Namibia; it shows ``north-america``, and every name it shows selects that region again."""
    from derptool.derpmap.geo import resolve
    from derptool.derpmap.geography import CONTINENTS

    result = runner.invoke(app, ["map", "--map", "snapshot"])
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    start, end = lines[0].index("CONTINENT"), lines[0].index("NODES")
    table = lines[2 : lines.index("")]
    rows = [(line.split()[0], line.split()[1], line[start:end].strip()) for line in table]
    assert len(rows) == len(load_snapshot().derp_map.region_list())
    by_code = {code: continent for _, code, continent in rows}
    assert by_code["nyc"] == "north-america"
    assert by_code["fra"] == "europe"
    assert by_code["syd"] == "oceania"
    dmap = load_snapshot().derp_map
    for rid, _, continent in rows:
        assert continent in CONTINENTS
        assert int(rid) in resolve([continent], dmap).region_ids


def test_map_json_stays_a_derp_map_its_consumers_read(tmp_path: Path) -> None:
    """``map --format json`` is Tailscale's DERPMap (read back by --map FILE, tailscale and
    headscale), so geography is not added to it; it reads back as the same map."""
    out = runner.invoke(app, ["map", "--map", "snapshot", "--format", "json"])
    assert out.exit_code == 0
    saved = tmp_path / "map.json"
    saved.write_text(out.stdout)
    data = json.loads(out.stdout)
    assert "continent" not in json.dumps(data).lower()
    again = runner.invoke(app, ["map", "--map", str(saved), "--format", "json"])
    assert again.exit_code == 0 and json.loads(again.stdout) == data
