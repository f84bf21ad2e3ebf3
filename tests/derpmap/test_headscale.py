"""headscale DERP YAML output: lower-case tailcfg keys, integer region keys, null removes; reads back the same."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from derptool.cli import app
from derptool.derpmap import DERPMap, parse_derpmap
from derptool.derpmap.headscale import headscale_data, render_headscale_yaml
from derptool.derpmap.sources import load_map, load_snapshot
from derptool.edit.omit_plan import omit_overlay, plan_omit, render_omit_headscale_yaml

runner = CliRunner()


def test_full_snapshot_round_trips(tmp_path: Path) -> None:
    dmap = load_snapshot().derp_map
    path = tmp_path / "derp.yaml"
    path.write_text(render_headscale_yaml(dmap, header=["test"]))
    loaded = load_map(str(path))
    assert loaded.derp_map.to_data() == dmap.to_data()
    assert loaded.overlay is None


def test_every_field_round_trips(tmp_path: Path) -> None:
    data = {
        "HomeParams": {"RegionScore": {"900": 0.5}},
        "Regions": {
            "900": {
                "RegionID": 900,
                "RegionCode": "yes",
                "RegionName": "123",
                "Latitude": -33.5,
                "Longitude": 151.25,
                "Avoid": True,
                "NoMeasureNoHome": True,
                "Nodes": [
                    {
                        "Name": "on",
                        "RegionID": 900,
                        "HostName": "10.0.0.1",
                        "CertName": "sha256-raw:ab",
                        "IPv4": "10.0.0.1",
                        "IPv6": "2001:db8::1",
                        "STUNPort": -1,
                        "STUNOnly": True,
                        "DERPPort": 8443,
                        "InsecureForTests": True,
                        "STUNTestIP": "127.0.0.1",
                        "CanPort80": True,
                    }
                ],
            }
        },
    }
    dmap = parse_derpmap(data)
    text = render_headscale_yaml(dmap)
    plain = yaml.safe_load(text)
    assert set(plain["regions"]) == {900}
    node = plain["regions"][900]["nodes"][0]
    assert node["stunport"] == -1 and node["ipv6"] == "2001:db8::1" and node["name"] == "on"
    assert plain["regions"][900]["regioncode"] == "yes"  # quoted: stays a string for YAML 1.1 readers
    path = tmp_path / "all.yaml"
    path.write_text(text)
    assert load_map(str(path)).derp_map.to_data() == dmap.to_data()


def test_null_regions_and_omit_default_round_trip(tmp_path: Path) -> None:
    overlay = DERPMap(Regions={1: None, 2: None}, omitDefaultRegions=False)
    text = render_headscale_yaml(overlay, labels={1: "nyc (region 1): New York City, United States"})
    assert "  1: null  # nyc (region 1): New York City, United States\n  2: null\n" in text
    assert headscale_data(overlay) == {"regions": {1: None, 2: None}}
    path = tmp_path / "remove.yaml"
    path.write_text(text)
    loaded = load_map(str(path))
    assert loaded.overlay is not None and loaded.overlay.to_data() == overlay.to_data()
    assert 1 not in loaded.derp_map.regions and 2 not in loaded.derp_map.regions


def test_omit_overlay_removes_exactly_the_planned_regions(tmp_path: Path) -> None:
    snap = load_snapshot().derp_map
    plan = plan_omit(snap, keep=["eu"])
    overlay = omit_overlay(plan)
    assert overlay.to_data() == {"Regions": {str(i): None for i in plan.omitted_ids}}
    path = tmp_path / "omit.yaml"
    path.write_text(render_omit_headscale_yaml(plan, header=["test"]))
    loaded = load_map(str(path))
    assert loaded.overlay is not None and loaded.overlay.to_data() == overlay.to_data()
    assert sorted(loaded.derp_map.regions) == sorted(r.region_id for r in plan.kept)


@pytest.mark.parametrize("cmd", [["map", "-m", "snapshot", "-r", "eu"], ["omit", "-m", "snapshot", "--keep", "eu"]])
def test_cli_headscale_yaml(tmp_path: Path, cmd: list[str]) -> None:
    result = runner.invoke(app, [*cmd, "--format", "headscale-yaml"])
    assert result.exit_code == 0, result.stderr
    path = tmp_path / "out.yaml"
    path.write_text(result.stdout)
    loaded = load_map(str(path))
    snap = load_snapshot().derp_map
    eu = {int(k) for k in yaml.safe_load(result.stdout)["regions"]}
    if cmd[0] == "map":
        assert loaded.derp_map.to_data() == snap.subset(eu).to_data()
    else:
        assert loaded.overlay is not None
        assert all(r is None for r in loaded.overlay.regions.values())
        assert "# lhr (region 8): London, United Kingdom" in result.stdout
        kept = {r.region_code for r in loaded.derp_map.region_list()}
        assert kept == {"ams", "fra", "hel", "mad", "nue", "par", "waw"}
