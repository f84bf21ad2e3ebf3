"""``diff_maps`` on crafted map pairs, and ``derptool diff`` through the runner."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from derptool.cli import app
from derptool.derpmap import parse_derpmap
from derptool.derpmap.diff import diff_maps

runner = CliRunner()


def node(name: str, rid: int, host: str, **extra: Any) -> dict[str, Any]:
    return {"Name": name, "RegionID": rid, "HostName": host, **extra}


BASE: dict[str, Any] = {
    "Regions": {
        "1": {
            "RegionID": 1,
            "RegionCode": "nyc",
            "RegionName": "New York City",
            "Latitude": 40.7,
            "Nodes": [
                node("1a", 1, "derp1a.example.com", IPv4="192.0.2.1", IPv6="2001:db8::1"),
                node("1b", 1, "derp1b.example.com", IPv4="192.0.2.2"),
            ],
        },
        "2": {
            "RegionID": 2,
            "RegionCode": "sfo",
            "RegionName": "San Francisco",
            "Nodes": [node("2a", 2, "derp2a.example.com")],
        },
    }
}


def changed(mutate: Any) -> dict[str, Any]:
    data = copy.deepcopy(BASE)
    mutate(data)
    return data


def test_same_maps_have_no_diff() -> None:
    d = diff_maps(parse_derpmap(BASE), parse_derpmap(copy.deepcopy(BASE)))
    assert d.same
    assert d.rows() == []
    assert d.to_data()["same"] is True


def test_default_ports_equal_explicit_ones() -> None:
    new = changed(lambda m: m["Regions"]["2"]["Nodes"][0].update(STUNPort=3478, DERPPort=443))
    assert diff_maps(parse_derpmap(BASE), parse_derpmap(new)).same


def test_regions_added_and_removed() -> None:
    def mutate(m: dict[str, Any]) -> None:
        del m["Regions"]["2"]
        m["Regions"]["900"] = {
            "RegionID": 900,
            "RegionCode": "own",
            "RegionName": "Own",
            "Nodes": [node("900a", 900, "derp.example.org")],
        }

    d = diff_maps(parse_derpmap(BASE), parse_derpmap(changed(mutate)))
    assert [r.region_id for r in d.regions_added] == [900]
    assert [r.region_id for r in d.regions_removed] == [2]
    assert not d.regions_changed
    assert not d.same
    rows = d.rows()
    assert rows[0][:2] == ("region removed", "2 sfo")
    assert ("node removed", "2 sfo", "2a", "", "derp2a.example.com", "") in rows
    assert ("node added", "900 own", "900a", "", "", "derp.example.org") in rows


def test_nodes_added_removed_and_changed_addresses_ports_flags() -> None:
    def mutate(m: dict[str, Any]) -> None:
        nodes = m["Regions"]["1"]["Nodes"]
        nodes[0]["IPv4"] = "192.0.2.9"
        nodes[0]["DERPPort"] = 8443
        nodes[0]["STUNOnly"] = True
        del nodes[1]
        nodes.append(node("1c", 1, "derp1c.example.com", STUNPort=-1))
        m["Regions"]["1"]["RegionName"] = "NYC"

    d = diff_maps(parse_derpmap(BASE), parse_derpmap(changed(mutate)))
    assert len(d.regions_changed) == 1
    rc = d.regions_changed[0]
    assert rc.region_id == 1
    assert [c.to_data() for c in rc.changes] == [{"field": "RegionName", "old": "New York City", "new": "NYC"}]
    assert [n.name for n in rc.nodes_added] == ["1c"]
    assert [n.name for n in rc.nodes_removed] == ["1b"]
    [nc] = rc.nodes_changed
    assert nc.name == "1a"
    assert {(c.field, c.old, c.new) for c in nc.changes} == {
        ("IPv4", "192.0.2.1", "192.0.2.9"),
        ("DERPPort", 443, 8443),
        ("STUNOnly", False, True),
    }


def test_stun_disabled_shows_as_a_change() -> None:
    new = changed(lambda m: m["Regions"]["2"]["Nodes"][0].update(STUNPort=-1))
    [rc] = diff_maps(parse_derpmap(BASE), parse_derpmap(new)).regions_changed
    assert [(c.field, c.old, c.new) for c in rc.nodes_changed[0].changes] == [("STUNPort", 3478, None)]


def test_map_level_changes() -> None:
    new = changed(lambda m: m.update(HomeParams={"RegionScore": {"1": 0.5}}))
    d = diff_maps(parse_derpmap(BASE), parse_derpmap(new))
    assert [c.field for c in d.map_changes] == ["HomeParams"]
    assert d.rows()[0][0] == "map changed"


def write(tmp_path: Path, name: str, data: dict[str, Any]) -> str:
    p = tmp_path / name
    p.write_text(json.dumps(data))
    return str(p)


def test_cli_diff_exit_codes_and_formats(tmp_path: Path) -> None:
    old = write(tmp_path, "old.json", BASE)
    same = runner.invoke(app, ["diff", old, old])
    assert same.exit_code == 0, same.stderr
    assert "no differences" in same.stdout

    new = write(tmp_path, "new.json", changed(lambda m: m["Regions"]["1"]["Nodes"][1].update(IPv4="192.0.2.7")))
    table = runner.invoke(app, ["diff", old, new])
    assert table.exit_code == 1
    assert "node changed" in table.stdout and "192.0.2.7" in table.stdout
    assert "nodes: 0 added, 0 removed, 1 changed" in table.stdout

    js = runner.invoke(app, ["diff", old, new, "--format", "json"])
    assert js.exit_code == 1
    data = json.loads(js.stdout)
    assert data["same"] is False
    assert data["regions_changed"][0]["nodes_changed"] == [
        {"name": "1b", "changes": [{"field": "IPv4", "old": "192.0.2.2", "new": "192.0.2.7"}]}
    ]
    assert data["old"] == old and data["new"] == new


def test_cli_diff_against_snapshot_and_policy(tmp_path: Path, snapshot_path: Path) -> None:
    policy = tmp_path / "policy.hujson"
    policy.write_text('{\n\t// no New York\n\t"derpMap": {"Regions": {"1": null}},\n}\n')
    result = runner.invoke(app, ["diff", "snapshot", str(policy), "-f", "json"])
    assert result.exit_code == 1, result.stderr
    data = json.loads(result.stdout)
    assert [r["RegionID"] for r in data["regions_removed"]] == [1]
    assert not data["regions_added"] and not data["regions_changed"]


@pytest.mark.parametrize("args", [["diff", "snapshot", "/nonexistent/map.json"], ["diff", "-", "-"]])
def test_cli_diff_bad_input_is_one_line_exit_2(args: list[str]) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert result.stderr.startswith("derptool: error: ")
    assert len(result.stderr.strip().splitlines()) == 1
