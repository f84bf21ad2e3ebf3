"""``map --format nft|iptables|ip6tables|cidr``: the allow-list, and loading it into a real nftables and iptables
inside a network namespace of the test's own."""

from __future__ import annotations

import ipaddress
import json
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from derptool.cli import app
from derptool.derpmap import parse_derpmap
from derptool.derpmap.firewall import allow_list, render_cidr
from tests.support.netns import Lab, missing_requirements
from tests.support.prereq import missing_command, need, needs

runner = CliRunner()
SNAPSHOT = Path(__file__).resolve().parents[2] / "derptool" / "data" / "derpmap-snapshot.json"
_why_not = missing_requirements()
needs_netns = needs(_why_not)


def _node(name: str, rid: int, **extra: Any) -> dict[str, Any]:
    return {"Name": name, "RegionID": rid, "HostName": f"{name}.derp.test", **extra}


SMALL = {
    "Regions": {
        "900": {
            "RegionID": 900,
            "RegionCode": "own",
            "RegionName": "Own",
            "Nodes": [
                _node("a", 900, IPv4="192.0.2.10", IPv6="2001:db8::10", CanPort80=True),
                _node("b", 900, IPv4="192.0.2.11", IPv6="none", STUNPort=3479, DERPPort=8443),
                _node("c", 900, IPv4="192.0.2.12", STUNOnly=True),
                _node("d", 900, IPv4="192.0.2.13", STUNPort=-1),
                _node("e", 900),  # host name only: cannot be listed offline
            ],
        },
        "901": {
            "RegionID": 901,
            "RegionCode": "two",
            "RegionName": "Two",
            "Nodes": [_node("f", 901, HostName="198.51.100.7", IPv4="")],
        },
    }
}


def test_endpoints_follow_the_node_fields() -> None:
    allowed = allow_list(parse_derpmap(SMALL))
    got = {(e.address, e.proto, e.port) for e in allowed.endpoints}
    assert got == {
        ("192.0.2.10", "tcp", 443),
        ("192.0.2.10", "tcp", 80),
        ("192.0.2.10", "udp", 3478),
        ("2001:db8::10", "tcp", 443),
        ("2001:db8::10", "tcp", 80),
        ("2001:db8::10", "udp", 3478),
        ("192.0.2.11", "tcp", 8443),
        ("192.0.2.11", "udp", 3479),
        ("192.0.2.12", "udp", 3478),
        ("192.0.2.13", "tcp", 443),
        ("198.51.100.7", "tcp", 443),
        ("198.51.100.7", "udp", 3478),
    }
    assert len(allowed.notes) == 1 and "node e (region 900 own)" in allowed.notes[0]
    assert render_cidr(allowed) == (
        "192.0.2.10/32\n192.0.2.11/32\n192.0.2.12/32\n192.0.2.13/32\n198.51.100.7/32\n2001:db8::10/128\n"
    )


def test_cidr_of_a_geofenced_policy(tmp_path: Path) -> None:
    policy = tmp_path / "p.hujson"
    policy.write_text('{"acls": []}\n')
    kept = runner.invoke(app, ["omit", "--keep", "fra", "--map", "snapshot", "--apply", str(policy)])
    assert kept.exit_code == 0, kept.output
    result = runner.invoke(app, ["map", "--map", str(policy), "--format", "cidr"])
    assert result.exit_code == 0, result.output
    fra = json.loads(SNAPSHOT.read_text())["Regions"]["4"]["Nodes"]
    v4 = sorted({n["IPv4"] for n in fra}, key=ipaddress.ip_address)
    v6 = sorted({n["IPv6"] for n in fra}, key=ipaddress.ip_address)
    assert result.stdout.splitlines() == [f"{a}/32" for a in v4] + [f"{a}/128" for a in v6]


def _render(fmt: str, map_spec: str, tmp_path: Path) -> Path:
    result = runner.invoke(app, ["map", "--map", map_spec, "--format", fmt])
    assert result.exit_code == 0, result.output
    path = tmp_path / f"allow.{fmt}"
    path.write_text(result.stdout)
    return path


@needs_netns
def test_nft_output_loads_into_a_real_nftables(tmp_path: Path) -> None:
    rules = _render("nft", "snapshot", tmp_path)
    endpoints = allow_list(parse_derpmap(json.loads(SNAPSHOT.read_text()))).endpoints
    with Lab() as lab:
        lab.add("fw")
        lab.run("fw", "nft", "-c", "-f", str(rules))
        lab.run("fw", "nft", "-f", str(rules))
        lab.run("fw", "nft", "-f", str(rules))  # loading again replaces the table
        listed = lab.run("fw", "nft", "-j", "list", "table", "inet", "derptool").stdout
    sets = {
        item["set"]["name"]: item["set"].get("elem", []) for item in json.loads(listed)["nftables"] if "set" in item
    }
    assert len(sets["derp_v4"]) + len(sets["derp_v6"]) == len(endpoints) > 100


@needs_netns
def test_the_nft_chain_accepts_exactly_the_listed_endpoints(tmp_path: Path) -> None:
    data = {"Regions": {"900": {"RegionID": 900, "RegionCode": "lo", "RegionName": "Loopback", "Nodes": [
        _node("a", 900, IPv4="127.0.0.1", IPv6="none", STUNPort=3478)
    ]}}}  # fmt: skip
    m = tmp_path / "m.json"
    m.write_text(json.dumps(data))
    rules = _render("nft", str(m), tmp_path)
    probe = (
        "import socket\n"
        "got = []\n"
        "for port in (3478, 3479):\n"
        "    r = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); r.bind(('127.0.0.1', port)); r.settimeout(0.5)\n"
        "    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
        "    try:\n        s.sendto(b'x', ('127.0.0.1', port)); r.recv(10); got.append(port)\n"
        "    except (TimeoutError, PermissionError):\n        pass  # dropped on the way out: EPERM\n"
        "print(got)\n"
    )
    with Lab() as lab:
        lab.add("fw")
        lab.run("fw", "nft", "-f", str(rules))
        lab.run("fw", "nft", "add chain inet derptool out { type filter hook output priority 0 ; policy accept ; }")
        lab.run("fw", "nft", "add rule inet derptool out jump derp_allow")
        lab.run("fw", "nft", "add rule inet derptool out ip daddr 127.0.0.1 udp dport 3470-3490 drop")
        out = lab.run("fw", sys.executable, "-c", probe).stdout
    assert out.strip() == "[3478]"


def _iptables_missing() -> str | None:
    return missing_command("iptables-restore")


@needs_netns
@pytest.mark.parametrize(("fmt", "tool", "lister"), [("iptables", "iptables-restore", "iptables"),
                                                     ("ip6tables", "ip6tables-restore", "ip6tables")])  # fmt: skip
def test_iptables_output_passes_iptables_restore(tmp_path: Path, fmt: str, tool: str, lister: str) -> None:
    need(_iptables_missing())
    rules = _render(fmt, "snapshot", tmp_path)
    family = 4 if fmt == "iptables" else 6
    endpoints = [e for e in allow_list(parse_derpmap(json.loads(SNAPSHOT.read_text()))).endpoints if e.family == family]
    with Lab() as lab:
        lab.add("fw")
        lab.run("fw", tool, "--test", str(rules))
        lab.run("fw", tool, "--noflush", str(rules))
        lab.run("fw", tool, "--noflush", str(rules))  # again: the chain is flushed, not doubled
        listed = lab.run("fw", lister, "-S", "DERPTOOL-DERP").stdout.splitlines()
    assert len([line for line in listed if line.startswith("-A DERPTOOL-DERP")]) == len(endpoints)
