"""NAT classification (pure), the probe plan, and ``derptool nat`` against STUN responders on loopback."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from derptool.cli import app
from derptool.derpmap import parse_derpmap
from derptool.net import nat, natprobe
from tests.support.stun_responder import StunResponder

E = nat.Endpoint.parse
LOCAL = E("10.0.0.2:40000")


def obs(server: str, mapped: str | None) -> nat.Observation:
    return nat.Observation(E(server), E(mapped) if mapped else None, LOCAL)


def test_endpoint_parse_and_str() -> None:
    assert str(E("1.2.3.4:5")) == "1.2.3.4:5"
    assert str(E("[2001:db8::1]:3478")) == "[2001:db8::1]:3478"
    assert E("[2001:db8::1]:3478").family == 6
    for bad in ("1.2.3.4", "host:80", "1.2.3.4:x", "1.2.3.4:70000", "[::1]"):
        with pytest.raises(ValueError):
            E(bad)


def test_no_nat() -> None:
    r = nat.classify([obs("1.1.1.1:3478", "10.0.0.2:40000"), obs("2.2.2.2:3478", "10.0.0.2:40000")])
    assert (r.nat_type, r.mapping, r.port_preserved, r.udp) == ("none", "endpoint-independent", True, True)
    assert r.mapped == (LOCAL,)


def test_no_nat_single_answer_has_no_mapping_verdict() -> None:
    r = nat.classify([obs("1.1.1.1:3478", "10.0.0.2:40000"), obs("2.2.2.2:3478", None)])
    assert (r.nat_type, r.mapping) == ("none", None)


def test_easy_nat_with_and_without_port_preservation() -> None:
    r = nat.classify([obs("1.1.1.1:3478", "203.0.113.9:40000"), obs("2.2.2.2:3478", "203.0.113.9:40000")])
    assert (r.nat_type, r.mapping, r.port_preserved) == ("easy", "endpoint-independent", True)
    r = nat.classify([obs("1.1.1.1:3478", "203.0.113.9:5555"), obs("2.2.2.2:3478", "203.0.113.9:5555")])
    assert (r.nat_type, r.port_preserved) == ("easy", False)
    assert "203.0.113.9:5555" in r.explanation


def test_hard_nat_by_address_only_leaves_mapping_open() -> None:
    r = nat.classify([obs("1.1.1.1:3478", "203.0.113.9:1"), obs("2.2.2.2:3478", "203.0.113.9:2")])
    assert (r.nat_type, r.mapping, r.port_preserved) == ("hard", None, False)
    assert "not tested" in r.explanation


def test_hard_nat_address_dependent() -> None:
    r = nat.classify(
        [
            obs("1.1.1.1:3478", "203.0.113.9:1"),
            obs("1.1.1.1:3479", "203.0.113.9:1"),
            obs("2.2.2.2:3478", "203.0.113.9:2"),
        ]
    )
    assert (r.nat_type, r.mapping) == ("hard", "address-dependent")


def test_hard_nat_address_and_port_dependent() -> None:
    r = nat.classify(
        [
            obs("1.1.1.1:3478", "203.0.113.9:1"),
            obs("1.1.1.1:3479", "203.0.113.9:7"),
            obs("2.2.2.2:3478", "203.0.113.9:2"),
        ]
    )
    assert (r.nat_type, r.mapping) == ("hard", "address-and-port-dependent")
    # One server address on two ports is enough to prove port dependence.
    r = nat.classify([obs("1.1.1.1:3478", "203.0.113.9:1"), obs("1.1.1.1:3479", "203.0.113.9:7")])
    assert (r.nat_type, r.mapping) == ("hard", "address-and-port-dependent")


def test_one_address_two_ports_same_mapping_is_unknown() -> None:
    # Same mapping for two ports of one address: endpoint-independent or address-dependent, can't tell.
    r = nat.classify([obs("1.1.1.1:3478", "203.0.113.9:1"), obs("1.1.1.1:3479", "203.0.113.9:1")])
    assert (r.nat_type, r.mapping) == ("unknown", None)


def test_blocked_and_unknown() -> None:
    r = nat.classify([obs("1.1.1.1:3478", None), obs("2.2.2.2:3478", None)])
    assert (r.udp, r.nat_type, r.mapping, r.port_preserved, r.mapped) == (False, "blocked", None, None, ())
    assert "blocked" in r.explanation
    r = nat.classify([obs("1.1.1.1:3478", "203.0.113.9:40000"), obs("2.2.2.2:3478", None)])
    assert (r.udp, r.nat_type, r.mapping, r.port_preserved) == (True, "unknown", None, True)


def test_summary_prefers_ipv4_and_serialises_contract() -> None:
    v6local = E("[2001:db8::2]:50000")
    observations = [
        obs("1.1.1.1:3478", None),
        obs("2.2.2.2:3478", None),
        nat.Observation(E("[2001:db8::1]:3478"), v6local, v6local, "n6"),
        nat.Observation(E("[2001:db8::3]:3478"), v6local, v6local, "n6b"),
    ]
    report = nat.summarize(observations, [LOCAL, v6local])
    data = report.to_data()
    # IPv4 blocked but IPv6 answered: the main verdict is IPv6's.
    assert data["family"] == 6 and data["nat_type"] == "none" and data["udp"] is True
    assert data["ipv4"]["nat_type"] == "blocked"
    kinds_by_key: dict[str, type | tuple[type, ...]] = {
        "udp": bool,
        "nat_type": str,
        "mapping": (str, type(None)),
        "local": str,
        "mapped": list,
        "port_preserved": bool,
        "explanation": str,
    }
    for key, kinds in kinds_by_key.items():
        assert isinstance(data[key], kinds), key
    assert json.loads(json.dumps(data)) == data


def test_summary_without_any_probe() -> None:
    assert nat.summarize([]).to_data()["nat_type"] == "blocked"


def _map(nodes: list[dict[str, Any]]) -> Any:
    regions: dict[str, Any] = {}
    for n in nodes:
        rid = n["RegionID"]
        regions.setdefault(str(rid), {"RegionID": rid, "RegionCode": f"r{rid}", "RegionName": f"R{rid}", "Nodes": []})[
            "Nodes"
        ].append(n)
    return parse_derpmap({"Regions": regions})


def node(name: str, rid: int, v4: str = "", v6: str = "none", port: int = 0, **kw: Any) -> dict[str, Any]:
    return {
        "Name": name,
        "RegionID": rid,
        "HostName": f"{name}.example",
        "IPv4": v4,
        "IPv6": v6,
        "STUNPort": port,
        **kw,
    }


def test_plan_one_node_per_region_first_and_pairs_of_ports() -> None:
    dmap = _map(
        [
            node("1a", 1, "192.0.2.1"),
            node("1b", 1, "192.0.2.1", port=3479),
            node("1c", 1, "192.0.2.9"),
            node("2a", 2, "192.0.2.2", v6="2001:db8::2"),
            node("3a", 3, "192.0.2.3", port=-1),
            node("4a", 4, "192.0.2.4"),
            node("5a", 5, "192.0.2.5"),
            node("6a", 6, "192.0.2.6"),
        ]
    )
    targets = natprobe.plan_targets(dmap, resolver=lambda host, fam: pytest.fail("no DNS expected"))
    v4 = [(t.node, str(t.server)) for t in targets if t.server.family == 4]
    assert v4 == [
        ("1a", "192.0.2.1:3478"),
        ("2a", "192.0.2.2:3478"),
        ("4a", "192.0.2.4:3478"),
        ("5a", "192.0.2.5:3478"),
        ("1b", "192.0.2.1:3479"),
    ]
    assert [str(t.server) for t in targets if t.server.family == 6] == ["[2001:db8::2]:3478"]


def test_plan_resolves_host_names_and_honours_stun_test_ip() -> None:
    dmap = _map([node("1a", 1), node("2a", 2, STUNTestIP="192.0.2.77"), node("3a", 3, v4="none")])
    asked: list[tuple[str, int]] = []

    def resolver(host: str, fam: int) -> list[str]:
        asked.append((host, fam))
        return ["192.0.2.10"] if fam == 4 else []

    targets = natprobe.plan_targets(dmap, families=(4,), resolver=resolver)
    assert [str(t.server) for t in targets] == ["192.0.2.10:3478", "192.0.2.77:3478"]
    assert asked == [("1a.example", 4)]


def test_run_on_loopback_sees_no_nat_and_reports_silent_servers() -> None:
    with StunResponder() as responder:
        a = responder.add("127.0.0.1")
        b = responder.add("127.0.0.1")
        c = responder.add("127.0.0.1", silent=True)
        dmap = _map(
            [
                node("1a", 1, "127.0.0.1", port=a.port),
                node("2a", 2, "127.0.0.1", port=b.port),
                node("3a", 3, "127.0.0.1", port=c.port),
            ]
        )
        report = natprobe.run(dmap, timeout=1.0, families=(4,))
    data = report.to_data()
    assert data["nat_type"] == "none"
    assert data["local"] == data["mapped"][0]
    errors = {p["node"]: p["error"] for p in data["probes"]}
    assert errors["1a"] is None and errors["3a"] == "no answer"


def _write(tmp_path: Path, data: Any) -> str:
    path = tmp_path / "map.json"
    path.write_text(json.dumps(data))
    return str(path)


def test_cli_json_and_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    runner = CliRunner()
    with StunResponder() as responder:
        a = responder.add("127.0.0.1")
        b = responder.add("127.0.0.1")
        m = _write(
            tmp_path,
            {
                "Regions": {
                    "900": {
                        "RegionID": 900,
                        "RegionCode": "x",
                        "RegionName": "X",
                        "Nodes": [
                            node("900a", 900, "127.0.0.1", port=a.port),
                            node("900b", 900, "127.0.0.1", port=b.port),
                        ],
                    }
                }
            },
        )
        res = runner.invoke(app, ["nat", "--map", m, "--format", "json", "--timeout", "1"])
        assert res.exit_code == 0, res.output
        data = json.loads(res.stdout)
        assert data["nat_type"] == "none" and data["mapping"] is None  # one address only
        res = runner.invoke(app, ["nat", "--map", m, "--timeout", "1"])
        assert res.exit_code == 0 and "No NAT" in res.stdout
        silent = responder.add("127.0.0.1", silent=True)
        quiet = _write(
            tmp_path,
            {
                "Regions": {
                    "900": {
                        "RegionID": 900,
                        "RegionCode": "x",
                        "RegionName": "X",
                        "Nodes": [node("900a", 900, "127.0.0.1", port=silent.port)],
                    }
                }
            },
        )
        res = runner.invoke(app, ["nat", "--map", quiet, "--format", "json", "--timeout", "0.3"])
        assert res.exit_code == 1, res.output  # no server answered: the check ran and found UDP blocked
        assert json.loads(res.stdout)["nat_type"] == "blocked"
    res = runner.invoke(app, ["nat", "--map", m, "--region", "nowhere"])
    assert res.exit_code == 2 and "Traceback" not in res.output
    res = runner.invoke(app, ["nat", "--map", str(tmp_path / "missing.json")])
    assert res.exit_code == 2
    nostun = _write(
        tmp_path,
        {
            "Regions": {
                "900": {
                    "RegionID": 900,
                    "RegionCode": "x",
                    "RegionName": "X",
                    "Nodes": [node("900a", 900, "127.0.0.1", port=-1)],
                }
            }
        },
    )
    res = runner.invoke(app, ["nat", "--map", nostun])
    assert res.exit_code == 2 and "no STUN server" in res.output
    no_family = _write(
        tmp_path,
        {
            "Regions": {
                "900": {
                    "RegionID": 900,
                    "RegionCode": "x",
                    "RegionName": "X",
                    "Nodes": [node("900a", 900, "none", port=3478)],
                }
            }
        },
    )
    res = runner.invoke(app, ["nat", "--map", no_family])
    assert res.exit_code == 2 and "no STUN server" in res.output
    # A host name that does not resolve (no DNS query leaves the machine: the resolver is replaced).
    monkeypatch.setattr(natprobe, "resolve_host", lambda host, family: [])
    unresolvable = _write(
        tmp_path,
        {
            "Regions": {
                "900": {
                    "RegionID": 900,
                    "RegionCode": "x",
                    "RegionName": "X",
                    "Nodes": [node("900a", 900, "", v6="", port=3478)],
                }
            }
        },
    )
    res = runner.invoke(app, ["nat", "--map", unresolvable])
    assert res.exit_code == 3 and "no STUN server" in res.output


_ips = st.sampled_from(["192.0.2.1", "192.0.2.2", "198.51.100.7"])
_eps = st.builds(nat.Endpoint, _ips, st.sampled_from([3478, 3479, 40000]))


@given(st.lists(st.tuples(_eps, st.none() | _eps), max_size=6), st.none() | _eps)
def test_classify_is_total_and_consistent(
    pairs: list[tuple[nat.Endpoint, nat.Endpoint | None]], local: nat.Endpoint | None
) -> None:
    r = nat.classify([nat.Observation(s, m) for s, m in pairs], local)
    answered = [m for _, m in pairs if m is not None]
    assert r.udp == bool(answered)
    assert (r.nat_type == "blocked") == (not answered)
    assert set(r.mapped) == set(answered)
    if r.nat_type == "easy":
        assert len(r.mapped) == 1 and r.mapping == "endpoint-independent"
    if r.nat_type == "hard":
        assert len(r.mapped) > 1
    if r.mapping == "address-and-port-dependent":
        assert r.nat_type == "hard"
    assert r.explanation
