"""``derptool nat`` behind real Linux NATs: network namespaces, veth pairs and nftables (needs root).

A client namespace reaches a "public" namespace through a router namespace. The public side runs the
test STUN responder at two IPv4 and two IPv6 addresses, one of them on two ports; the router either
routes, masquerades (easy NAT: Linux keeps one mapping per source socket and even the port), masquerades
with ``fully-random`` (hard NAT: a new random port per destination address and port), or drops UDP.
``derptool nat`` runs inside the client namespace as a real subprocess.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.netns import (
    CLIENT_V4,
    CLIENT_V6,
    PUBLIC_V4,
    PUBLIC_V6,
    Lab,
    Mode,
    missing_requirements,
    nat_topology,
)
from tests.support.prereq import needs
from tests.support.repo import REPO

pytestmark = pytest.mark.root


needs_root = needs(missing_requirements())


def _map(path: Path) -> Path:
    def node(name: str, v4: str, v6: str, port: int) -> dict[str, Any]:
        return {
            "Name": name,
            "RegionID": 900,
            "HostName": f"{name}.derp.test",
            "IPv4": v4,
            "IPv6": v6,
            "STUNPort": port,
        }

    data = {
        "Regions": {
            "900": {
                "RegionID": 900,
                "RegionCode": "lab",
                "RegionName": "Lab",
                "Nodes": [
                    node("900a", PUBLIC_V4[0], PUBLIC_V6[0], 3478),
                    node("900b", PUBLIC_V4[0], PUBLIC_V6[0], 3479),
                ],
            },
            "901": {
                "RegionID": 901,
                "RegionCode": "lab2",
                "RegionName": "Lab 2",
                "Nodes": [
                    {**node("901a", PUBLIC_V4[1], PUBLIC_V6[1], 3478), "RegionID": 901},
                ],
            },
        }
    }
    path.write_text(json.dumps(data))
    return path


@pytest.fixture
def lab() -> Iterator[Lab]:
    with Lab() as made:
        yield made


def _start_responders(lab: Lab) -> None:
    binds: list[str] = []
    for v4, v6 in zip(PUBLIC_V4, PUBLIC_V6, strict=True):
        binds += ["--bind", f"{v4}:3478", "--bind", f"[{v6}]:3478"]
    binds += ["--bind", f"{PUBLIC_V4[0]}:3479", "--bind", f"[{PUBLIC_V6[0]}]:3479"]
    proc = lab.popen(
        "public",
        [sys.executable, "-m", "tests.support.stun_responder", *binds],
        cwd=str(REPO),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()  # one JSON line once every socket is bound
    assert "listening" in line, f"responder did not start: {line!r} {proc.stderr.read() if proc.stderr else ''}"


def _nat(lab: Lab, tmp_path: Path, mode: Mode, timeout: float = 2.0) -> dict[str, Any]:
    nat_topology(lab, mode)
    _start_responders(lab)
    proc = lab.run(
        "client",
        sys.executable,
        "-m",
        "derptool",
        "nat",
        "--map",
        str(_map(tmp_path / "map.json")),
        "--format",
        "json",
        "--timeout",
        str(timeout),
        check=False,
    )
    assert proc.returncode == (1 if mode == "blocked" else 0), proc.stderr  # 1: no STUN server answered
    data: dict[str, Any] = json.loads(proc.stdout)
    return data


@needs_root
def test_routed_without_nat(lab: Lab, tmp_path: Path) -> None:
    data = _nat(lab, tmp_path, "routed")
    assert data["udp"] is True
    assert data["nat_type"] == "none", data
    assert data["mapping"] == "endpoint-independent"
    assert data["local"].startswith(f"{CLIENT_V4}:")
    assert data["mapped"] == [data["local"]]
    assert data["port_preserved"] is True
    assert data["family"] == 4
    assert data["ipv6"]["nat_type"] == "none"
    assert data["ipv6"]["mapped"] == [data["ipv6"]["local"]]
    assert data["ipv6"]["local"].startswith(f"[{CLIENT_V6}]:")
    assert all(p["mapped"] for p in data["probes"])
    assert len(data["probes"]) == 6


@needs_root
def test_masquerade_is_easy_nat(lab: Lab, tmp_path: Path) -> None:
    data = _nat(lab, tmp_path, "easy")
    assert data["nat_type"] == "easy"
    assert data["mapping"] == "endpoint-independent"
    assert len(data["mapped"]) == 1
    public = data["mapped"][0]
    assert public.startswith("198.51.100.1:")
    # Linux masquerade keeps the source port when it is free.
    assert data["port_preserved"] is True
    assert public.rsplit(":", 1)[1] == data["local"].rsplit(":", 1)[1]
    assert data["ipv6"]["nat_type"] == "easy"
    assert data["ipv6"]["mapped"][0].startswith("[2001:db8:100::1]:")
    assert "direct connections" in data["explanation"]


@needs_root
def test_fully_random_masquerade_is_hard_nat(lab: Lab, tmp_path: Path) -> None:
    data = _nat(lab, tmp_path, "hard")
    assert data["nat_type"] == "hard"
    # Two ports on one server address got two different mappings.
    assert data["mapping"] == "address-and-port-dependent"
    # fully-random really gave each of the three destinations its own public port.
    v4 = [p["mapped"] for p in data["probes"] if "." in p["server"]]
    assert len(v4) == 3 and len(set(v4)) == 3
    assert all(m.startswith("198.51.100.1:") for m in v4)
    assert sorted(data["mapped"]) == sorted(v4)
    assert data["port_preserved"] is False
    assert data["ipv6"]["nat_type"] == "hard"
    assert "DERP relay" in data["explanation"]


@needs_root
def test_udp_dropped_is_blocked(lab: Lab, tmp_path: Path) -> None:
    data = _nat(lab, tmp_path, "blocked", timeout=1.0)
    assert data["udp"] is False
    assert data["nat_type"] == "blocked"
    assert data["mapping"] is None
    assert data["mapped"] == []
    assert data["port_preserved"] is None
    assert data["ipv6"]["nat_type"] == "blocked"
    assert all(p["mapped"] is None and p["error"] for p in data["probes"])


@needs_root
def test_table_output_explains(lab: Lab, tmp_path: Path) -> None:
    nat_topology(lab, "hard")
    _start_responders(lab)
    proc = lab.run(
        "client",
        sys.executable,
        "-m",
        "derptool",
        "nat",
        "--map",
        str(_map(tmp_path / "m.json")),
        "--timeout",
        "2",
        "--region",
        "900",
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "NAT type:       hard" in proc.stdout
    assert "address-and-port-dependent" in proc.stdout
    assert "900b" in proc.stdout and "901a" not in proc.stdout
