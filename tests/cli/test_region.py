"""``derptool region add``: fragments that validate, clear errors, and a region that latency can measure."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from derptool import hujson
from derptool.cli import app
from derptool.edit.region import node_name
from derptool.policy.validate import validate_bytes
from tests.support.stun_responder import StunResponder

runner = CliRunner()

ADD = [
    "region",
    "add",
    "--id",
    "900",
    "--code",
    "fra-own",
    "--name",
    "Frankfurt (own)",
    "--node",
    "derp1.example.com,ipv4=203.0.113.5,ipv6=2001:db8::5",
    "--node",
    "derp2.example.com,stun-port=3479,derp-port=8443,cert-name=derp.example.com",
    "--node",
    "stun.example.com,stun-only,name=fra-stun",
    "--lat",
    "50.11",
    "--lon",
    "8.68",
]


def test_hujson_fragment_validates_and_holds_the_region() -> None:
    result = runner.invoke(app, ADD)
    assert result.exit_code == 0, result.stderr
    out = result.stdout.encode()
    assert hujson.format(out) == out
    assert [p for p in validate_bytes(out, "fragment") if p.severity == "error"] == []
    region = hujson.loads(out)["derpMap"]["Regions"]["900"]
    assert region["RegionCode"] == "fra-own" and region["Latitude"] == 50.11
    assert [n["Name"] for n in region["Nodes"]] == ["900a", "900b", "fra-stun"]
    assert region["Nodes"][1] == {
        "Name": "900b",
        "RegionID": 900,
        "HostName": "derp2.example.com",
        "CertName": "derp.example.com",
        "STUNPort": 3479,
        "DERPPort": 8443,
    }
    assert region["Nodes"][2]["STUNOnly"] is True
    assert "// fra-own (region 900): Frankfurt (own), self-hosted" in result.stdout
    assert "// 900b: DERP over HTTPS on TCP 8443, STUN on UDP 3479, certificate name derp.example.com" in result.stdout
    assert "OmitDefaultRegions" not in result.stdout
    assert result.stderr == ""


def test_json_and_omit_default_warning() -> None:
    result = runner.invoke(app, [*ADD, "--omit-default", "--format", "json"])
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    assert data["derpMap"]["OmitDefaultRegions"] is True
    assert "depends on your own servers" in result.stderr
    assert [p for p in validate_bytes(result.stdout.encode(), "f") if p.severity == "error"] == []


def test_id_outside_custom_range_warns() -> None:
    result = runner.invoke(app, ["region", "add", "--id", "42", "--code", "x", "--node", "d.example.com"])
    assert result.exit_code == 0
    assert "outside 900-999" in result.stderr


def test_headscale_yaml_output_loads_back(tmp_path: Path) -> None:
    result = runner.invoke(app, [*ADD, "--format", "headscale-yaml"])
    assert result.exit_code == 0
    assert "\n  900:\n    regionid: 900\n" in result.stdout
    path = tmp_path / "derp.yaml"
    path.write_text(result.stdout)
    shown = runner.invoke(app, ["map", "--map", str(path), "--format", "json"])
    assert shown.exit_code == 0, shown.stderr
    hs = json.loads(shown.stdout)["Regions"]["900"]
    frag = json.loads(runner.invoke(app, [*ADD, "--format", "json"]).stdout)["derpMap"]["Regions"]["900"]
    assert hs == frag


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--node", "d.example.com,ipv4=1.2.3"], "--node 'd.example.com,ipv4=1.2.3': IPv4 '1.2.3' is not an IPv4"),
        (["--node", "d.example.com,colour=red"], "unknown option 'colour'"),
        (["--node", "d.example.com,stun-port=x"], "stun-port='x' is not a port number"),
        (["--node", "bad host!"], "is not a valid DNS name"),
        (["--node", "a.example.com,name=n", "--node", "b.example.com,name=n"], "node name 'n' is also used"),
        (["--node", "d.example.com", "--lat", "91"], "--lat: Latitude 91 is out of range"),
        (["--node", "d.example.com", "--diff"], "--diff needs --apply"),
    ],
)
def test_bad_values_are_one_line_exit_2(extra: list[str], message: str) -> None:
    result = runner.invoke(app, ["region", "add", "--id", "900", "--code", "x", *extra])
    assert result.exit_code == 2
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_zero_id_and_missing_node() -> None:
    assert (
        "--id: RegionID 0"
        in runner.invoke(app, ["region", "add", "--id", "0", "--code", "x", "--node", "d.example.com"]).stderr
    )
    missing = runner.invoke(app, ["region", "add", "--id", "900", "--code", "x"])
    assert missing.exit_code == 2


def test_default_node_names() -> None:
    assert [node_name(900, i) for i in (0, 1, 25, 26, 27)] == ["900a", "900b", "900z", "900aa", "900ab"]


def test_apply_adds_the_region_and_validates(tmp_path: Path) -> None:
    policy = tmp_path / "policy.hujson"
    policy.write_text(
        '// my policy\n{\n\t"acls": [\n\t\t{"action": "accept", "src": ["*"], "dst": ["*:*"]},\n\t],\n}\n'
    )
    result = runner.invoke(app, [*ADD, "--apply", str(policy)])
    assert result.exit_code == 0, result.stderr
    src = policy.read_bytes()
    assert [p for p in validate_bytes(src, "p") if p.severity == "error"] == []
    assert hujson.loads(src)["derpMap"]["Regions"]["900"]["RegionName"] == "Frankfurt (own)"
    assert b"// my policy" in src
    again = runner.invoke(app, [*ADD, "--apply", str(policy)])
    assert "already up to date" in again.stdout and policy.read_bytes() == src


def test_added_region_is_measured_by_latency(tmp_path: Path) -> None:
    with StunResponder() as responder:
        ep = responder.add("127.0.0.1", delay_ms=20)
        made = runner.invoke(
            app,
            [
                "region",
                "add",
                "--id",
                "901",
                "--code",
                "lo",
                "--name",
                "Loopback",
                "--node",
                f"127.0.0.1,ipv4=127.0.0.1,ipv6=none,stun-port={ep.port}",
                "--omit-default",
            ],
        )
        assert made.exit_code == 0, made.stderr
        fragment = tmp_path / "lo.hujson"
        fragment.write_text(made.stdout)
        result = runner.invoke(
            app, ["latency", "--map", str(fragment), "--no-ipv6", "--format", "json", "--timeout", "3s"]
        )
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert [r["id"] for r in report["regions"]] == [901]
    region = report["regions"][0]
    assert region["method"] == "stun"
    assert region["latency_ms"] is not None and region["latency_ms"] >= 20
    assert report["preferred_region"] == 901
    assert ep.requests >= 1
