"""``policy compile --control headscale`` against headscale's own policy engine (the ``hspolicy`` Go peer,
headscale v0.27.1's ``hscontrol/policy/v2``) on generated tailnets and policies: every node's packet filter
and SSH policy must be equal, rule for rule, and each node must see the same peers. Plus the profile's
differences from Tailscale's, one by one."""

from __future__ import annotations

import json
import random
import subprocess
from pathlib import Path
from typing import Any

from derptool.policy.engine import compile_policy
from derptool.policy.engine.semantics import HEADSCALE, TAILSCALE
from derptool.policy.engine.tailnet import from_topology
from tests.support.prereq import go_peer, missing_go_peer, need

CASES = 60
TAGS = ("tag:web", "tag:db", "tag:router")


def hspolicy() -> str:
    """The hspolicy peer (skipped without it, a failure under CI=true)."""
    need(missing_go_peer("hspolicy"))
    path = go_peer("hspolicy")
    assert path is not None
    return path


def gen_tailnet(rng: random.Random) -> dict[str, Any]:
    """Users, their devices, tagged servers, subnet routers and exit nodes (routes approved or not)."""
    users = [{"id": i + 1, "name": f"u{i}", "email": f"u{i}@example.com"} for i in range(rng.randint(2, 4))]
    nodes: dict[str, Any] = {}
    for k in range(rng.randint(4, 12)):
        node: dict[str, Any] = {"hostname": f"n{k}", "ipv4": f"100.64.0.{k + 1}", "ipv6": f"fd7a:115c:a1e0::{k + 1:x}"}
        if rng.random() < 0.35:
            node["tags"] = rng.sample(TAGS, rng.randint(1, 2))
        else:
            node["user"] = rng.choice(users)["name"]
        roll = rng.random()
        if roll < 0.2:
            node["routable_ips"] = [f"10.{rng.randint(0, 2)}.0.0/24"]
        elif roll < 0.3:
            node["routable_ips"] = ["0.0.0.0/0", "::/0"]
        if "routable_ips" in node and rng.random() < 0.7:
            node["approved_routes"] = list(node["routable_ips"])
        nodes[f"n{k}"] = node
    return {"users": users, "nodes": nodes}


def gen_policy(rng: random.Random, tailnet: dict[str, Any]) -> dict[str, Any]:
    """ACLs and SSH rules over every kind of alias where the two control planes differ."""
    users = [u["name"] for u in tailnet["users"]]
    first_ip = next(iter(tailnet["nodes"].values()))["ipv4"]
    srcs = [
        "*",
        "group:a",
        f"{users[0]}@",
        "u1@example.com",
        "tag:web",
        "autogroup:member",
        "autogroup:tagged",
        "me",
        "10.0.0.0/8",
        first_ip,
    ]
    dsts = [*srcs, "lan", "autogroup:internet", "tag:db", "tag:router", "10.1.0.0/24"]
    acls = []
    for _ in range(rng.randint(1, 6)):
        acl: dict[str, Any] = {"action": "accept", "src": rng.sample(srcs, rng.randint(1, 3))}
        ports = rng.choice(["*", "22", "80,443", "1000-2000"])
        acl["dst"] = [f"{d}:{ports}" for d in rng.sample(dsts, rng.randint(1, 3))]
        proto = rng.choice([None, None, "tcp", "udp", "icmp", "47"])
        if proto is not None and not (proto in ("icmp", "47") and ports != "*"):  # headscale: ports need tcp/udp
            acl["proto"] = proto
        if rng.random() < 0.2 and not any(s in ("*", "autogroup:tagged", "tag:web") for s in acl["src"]):
            acl["dst"].append("autogroup:self:*")
        acls.append(acl)
    ssh = []
    for _ in range(rng.randint(0, 2)):
        rule: dict[str, Any] = {
            "action": rng.choice(["accept", "check"]),
            "src": rng.sample(["group:a", "autogroup:member", f"{users[0]}@"], rng.randint(1, 2)),
            "dst": [rng.choice(["autogroup:self", "tag:web", "tag:db"])],
            "users": rng.sample(["root", "autogroup:nonroot", "ubuntu"], rng.randint(1, 2)),
        }
        if rule["action"] == "check" and rng.random() < 0.5:
            rule["checkPeriod"] = rng.choice(["12h", "1h30m", "20m"])
        ssh.append(rule)
    policy: dict[str, Any] = {
        "groups": {"group:a": [f"{u}@" for u in rng.sample(users, rng.randint(1, len(users)))]},
        "tagOwners": {t: ["group:a"] for t in TAGS},
        "hosts": {"me": first_ip, "lan": "10.0.0.0/16"},
        "acls": acls,
    }
    if ssh:
        policy["ssh"] = ssh
    if rng.random() < 0.1:
        del policy["acls"]  # headscale allows everything then (unless autogroup:self makes it per node)
    return policy


def _headscale(peer: str, policy_file: Path, tailnet_file: Path) -> dict[str, Any] | None:
    proc = subprocess.run(
        [peer, "-ssh", "-peers", str(policy_file), str(tailnet_file)], capture_output=True, text=True, timeout=60
    )
    if proc.returncode != 0:
        return None  # headscale refuses the policy: nothing to compare
    return {d["node"]: d for d in map(json.loads, proc.stdout.splitlines())}


def _ssh_rules(value: Any) -> list[Any]:
    return list((value or {}).get("rules") or [])


def test_packet_filters_ssh_and_peers_equal_headscales(tmp_path: Path) -> None:
    peer = hspolicy()
    compared = 0
    for seed in range(CASES):
        rng = random.Random(seed)
        topo = gen_tailnet(rng)
        policy = gen_policy(rng, topo)
        (tmp_path / "t.json").write_text(json.dumps(topo))
        (tmp_path / "p.json").write_text(json.dumps(policy))
        truth = _headscale(peer, tmp_path / "p.json", tmp_path / "t.json")
        if truth is None:
            continue
        compiled = compile_policy(policy, from_topology(topo), semantics=HEADSCALE)
        for node in compiled.tailnet.nodes:
            mine = compiled.packet_filter(node)
            assert mine == truth[node.name]["packet_filter_rules"], (seed, node.name, policy)
            ssh = [r.to_json() for r in compiled.ssh_rules(node)]
            assert ssh == _ssh_rules(truth[node.name].get("ssh_policy")), (seed, node.name, policy)
            peers = sorted(p.node.name for p in compiled.peer_list(node))
            assert peers == sorted(p["name"] for p in truth[node.name].get("peers") or []), (seed, node.name)
        compared += 1
    assert compared >= CASES * 3 // 4, f"headscale refused {CASES - compared} of {CASES} generated policies"


TOPOLOGY = {
    "users": [
        {"id": 1, "name": "alice", "email": "alice@example.com"},
        {"id": 2, "name": "bob", "email": "bob@example.com"},
    ],
    "nodes": {
        "a": {"user": "alice", "ipv4": "100.64.0.1", "ipv6": "fd7a:115c:a1e0::1"},
        "b": {"user": "bob", "ipv4": "100.64.0.2", "ipv6": "fd7a:115c:a1e0::2"},
        "exit": {
            "tags": ["tag:exit"],
            "ipv4": "100.64.0.3",
            "ipv6": "fd7a:115c:a1e0::3",
            "routable_ips": ["0.0.0.0/0", "::/0"],
        },
    },
}


def _filters(policy: dict[str, Any], node: str) -> tuple[list[Any], list[Any]]:
    net = from_topology(TOPOLOGY)
    out = []
    for sem in (TAILSCALE, HEADSCALE):
        c = compile_policy(policy, net, semantics=sem)
        out.append(c.packet_filter(c.node(node)))
    return out[0], out[1]


def test_default_protocols_and_icmp_differ() -> None:
    ts, hs = _filters(
        {"acls": [{"action": "accept", "src": ["alice@example.com"], "dst": ["bob@example.com:22"]}]}, "b"
    )
    assert hs[0]["IPProto"] == [6, 17] and "IPProto" not in ts[0]
    ts, hs = _filters(
        {"acls": [{"action": "accept", "src": ["alice@example.com"], "proto": "icmp", "dst": ["bob@example.com:*"]}]},
        "b",
    )
    assert hs[0]["IPProto"] == [1, 58] and ts[0]["IPProto"] == [1]


def test_wildcard_source_and_host_naming_a_node() -> None:
    policy = {"hosts": {"bee": "100.64.0.2"}, "acls": [{"action": "accept", "src": ["*"], "dst": ["bee:80"]}]}
    ts, hs = _filters(policy, "b")
    assert hs[0]["SrcIPs"] == ["0.0.0.0/0", "::/0"] and ts[0]["SrcIPs"] != hs[0]["SrcIPs"]
    assert [p["IP"] for p in hs[0]["DstPorts"]] == ["100.64.0.2/32", "fd7a:115c:a1e0::2/128"]
    assert [p["IP"] for p in ts[0]["DstPorts"]] == ["100.64.0.2"]


def test_an_exit_node_advertising_routes_receives_every_rule_under_headscale() -> None:
    ts, hs = _filters(
        {"acls": [{"action": "accept", "src": ["alice@example.com"], "dst": ["bob@example.com:22"]}]}, "exit"
    )
    assert ts == [] and [p["IP"] for p in hs[0]["DstPorts"]] == ["100.64.0.2/32", "fd7a:115c:a1e0::2/128"]


def test_ssh_check_is_an_accept_with_a_session_under_headscale() -> None:
    policy = {
        "acls": [],
        "ssh": [
            {
                "action": "check",
                "src": ["alice@example.com"],
                "dst": ["autogroup:self"],
                "users": ["root"],
                "checkPeriod": "1h",
            }
        ],
    }
    net = from_topology(TOPOLOGY)
    hs = compile_policy(policy, net, semantics=HEADSCALE)
    (rule,) = [r.to_json() for r in hs.ssh_rules(hs.node("a"))]
    assert rule["action"]["accept"] is True and rule["action"]["sessionDuration"] == 3_600_000_000_000
    assert rule["sshUsers"] == {"root": "root"} and "holdAndDelegate" not in rule["action"]
    ts = compile_policy(policy, net, semantics=TAILSCALE)
    assert "holdAndDelegate" in ts.ssh_rules(ts.node("a"))[0].to_json()["action"]


def test_grants_are_refused_under_headscale(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from derptool.cli import app

    (tmp_path / "p.json").write_text('{"grants": [{"src": ["*"], "dst": ["*"], "ip": ["*"]}]}')
    (tmp_path / "t.json").write_text(json.dumps(TOPOLOGY))
    args = ["policy", "compile", str(tmp_path / "p.json"), "-t", str(tmp_path / "t.json"), "--control"]
    result = CliRunner().invoke(app, [*args, "headscale"])
    assert result.exit_code == 2 and "headscale does not compile grants" in result.stderr
    assert CliRunner().invoke(app, [*args, "tailscale"]).exit_code == 0
    bad = CliRunner().invoke(app, [*args, "nebula"])
    assert bad.exit_code == 2 and "give one of tailscale, headscale" in bad.stderr


def test_explain_answers_as_the_chosen_control_plane(tmp_path: Path) -> None:
    """Without ``proto``, Tailscale allows ICMP and headscale does not (its default is TCP and UDP)."""
    from typer.testing import CliRunner

    from derptool.cli import app

    (tmp_path / "p.json").write_text(
        '{"acls": [{"action": "accept", "src": ["alice@example.com"], "dst": ["bob@example.com:*"]}]}'
    )
    (tmp_path / "t.json").write_text(json.dumps(TOPOLOGY))
    args = ["policy", "explain", str(tmp_path / "p.json"), "-t", str(tmp_path / "t.json"), "--src", "a"]
    args += ["--dst", "b:0", "--proto", "icmp", "--control"]
    assert CliRunner().invoke(app, [*args, "tailscale"]).exit_code == 0
    denied = CliRunner().invoke(app, [*args, "headscale"])
    assert denied.exit_code == 1 and "denied" in denied.stdout
