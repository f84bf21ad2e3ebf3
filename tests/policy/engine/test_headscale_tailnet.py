"""``derptool policy compile --control headscale`` against the truth: a real headscale (v0.27.1) and real
``tailscaled`` clients (v1.102.5) in network namespaces (:mod:`tests.support.tailnet`).

Three clients of two users register; one is tagged by the admin and serves an approved subnet route,
another advertises itself as an exit node that nobody approves. For each of several policies (written to
headscale's policy file and reloaded with SIGHUP) the tailnet is exported with headscale's own CLI
(``nodes list`` and ``users list --output json``), compiled by derptool, and each node's packet filter
and SSH policy must equal the ones that node's ``tailscaled`` received in its network map (read through its
LocalAPI).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support import tailnet as tailnet_support
from tests.support.prereq import need

USERS = ("alice", "bob")
ROUTE = "10.77.0.0/24"
TAG_OWNERS = {"tag:server": ["alice@"]}


def policies(ips: dict[str, str]) -> dict[str, dict[str, Any]]:
    """The policies the test applies, by name; *ips* are the clients' IPv4 addresses."""
    return {
        "groups, tags and a subnet": {
            "groups": {"group:staff": ["alice@", "bob@"]},
            "tagOwners": TAG_OWNERS,
            "acls": [
                {"action": "accept", "src": ["group:staff"], "dst": ["tag:server:22,80"]},
                {"action": "accept", "src": ["bob@"], "proto": "icmp", "dst": ["alice@:*"]},
                {"action": "accept", "src": ["*"], "dst": [f"{ROUTE}:443"]},
            ],
        },
        "self, hosts and protocols": {
            "tagOwners": TAG_OWNERS,
            "hosts": {"first": ips["client1"]},
            "acls": [
                {"action": "accept", "src": ["autogroup:member"], "dst": ["autogroup:self:*"]},
                {"action": "accept", "src": ["tag:server"], "proto": "udp", "dst": ["first:5000-5010"]},
                {"action": "accept", "src": [ips["client2"]], "dst": ["autogroup:internet:443"]},
            ],
            "ssh": [{"action": "check", "src": ["autogroup:member"], "dst": ["autogroup:self"], "users": ["root"]}],
        },
        "no acls at all": {"tagOwners": TAG_OWNERS},
        "nothing allowed": {"tagOwners": TAG_OWNERS, "acls": []},
    }


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tailnet_support.Tailnet]:
    need(tailnet_support.missing_requirements())
    work = tmp_path_factory.mktemp("hs-tailnet")
    first = json.dumps({"tagOwners": TAG_OWNERS, "acls": []})
    tn = tailnet_support.start(work, clients=3, users=USERS, policy=first)
    try:
        nodes = {n["given_name"]: n["id"] for n in json.loads(tn.headscale("nodes", "list", "-o", "json"))}
        tn.headscale("nodes", "tag", "-i", str(nodes["client3"]), "-t", "tag:server")
        tn.tailscale(tn.clients[2], "set", f"--advertise-routes={ROUTE}")
        tn.tailscale(tn.clients[1], "set", "--advertise-exit-node")
        tailnet_support.wait_for(
            "headscale to see client3's route",
            lambda: ROUTE in _node(tn, "client3").get("available_routes", []),
            timeout=20,
        )
        tn.headscale("nodes", "approve-routes", "-i", str(nodes["client3"]), "-r", ROUTE)
        tailnet_support.wait_for(
            "headscale to see client2's exit routes",
            lambda: "0.0.0.0/0" in _node(tn, "client2").get("available_routes", []),
            timeout=20,
        )
        yield tn
    finally:
        tn.close()


def _node(tn: tailnet_support.Tailnet, name: str) -> dict[str, Any]:
    return next(n for n in json.loads(tn.headscale("nodes", "list", "-o", "json")) if n["given_name"] == name)


def _export(tn: tailnet_support.Tailnet, where: Path) -> list[str]:
    """headscale's CLI export of the tailnet: the two files ``--tailnet`` takes."""
    where.mkdir(exist_ok=True)
    (where / "nodes.json").write_text(tn.headscale("nodes", "list", "-o", "json"))
    (where / "users.json").write_text(tn.headscale("users", "list", "-o", "json"))
    return [str(where / "nodes.json"), str(where / "users.json")]


def _compile(policy_file: Path, tailnet: list[str]) -> dict[str, dict[str, Any]]:
    args = ["policy", "compile", str(policy_file), "--control", "headscale", "--format", "json-line", "--no-peers"]
    for t in tailnet:
        args += ["--tailnet", t]
    proc = subprocess.run([sys.executable, "-m", "derptool", *args], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return {d["node"]: d for d in map(json.loads, proc.stdout.splitlines())}


def _received(tn: tailnet_support.Tailnet, client: tailnet_support.Client) -> tuple[list[Any], list[Any]]:
    """The packet filter and SSH rules in *client*'s network map."""
    netmap = tn.netmap(client)
    return list(netmap.get("PacketFilterRules") or []), list((netmap.get("SSHPolicy") or {}).get("rules") or [])


def _agrees(policy: dict[str, Any], got: tuple[list[Any], list[Any]], want: tuple[list[Any], list[Any]]) -> bool:
    """Whether a client's filter (and SSH rules, when the policy has ``ssh``) are the compiled ones.

    Without ``ssh`` headscale sends no SSH policy, and a client keeps the one it had before."""
    return got[0] == want[0] and ("ssh" not in policy or got[1] == want[1])


def test_tailnet_shape_from_headscales_cli(net: tailnet_support.Tailnet, tmp_path: Path) -> None:
    from derptool.policy.engine import load_tailnet

    tn = load_tailnet(_export(net, tmp_path / "export"))
    assert sorted(n.name for n in tn.nodes) == ["client1", "client2", "client3"]
    c3 = tn.by_name["client3"]
    assert c3.tags == ("tag:server",) and c3.subnet_routes == [ROUTE]
    c2 = tn.by_name["client2"]
    assert not c2.is_exit_node and set(c2.routable_ips) >= {"0.0.0.0/0", "::/0"}
    assert c2.user is not None and c2.user.name == "bob"
    assert {n.ipv4 for n in tn.nodes} == {c.tailscale_ip for c in net.clients}


def test_each_nodes_packet_filter_equals_what_headscale_sent(net: tailnet_support.Tailnet, tmp_path: Path) -> None:
    ips = {c.name: c.tailscale_ip for c in net.clients}
    tailnet = _export(net, tmp_path / "export")
    for name, policy in policies(ips).items():
        text = json.dumps(policy, indent=2)
        policy_file = tmp_path / "policy.json"
        policy_file.write_text(text)
        compiled = _compile(policy_file, tailnet)
        want = {n: (c["packet_filter_rules"], c["ssh_policy"]["rules"]) for n, c in compiled.items()}
        net.set_policy(text)
        for client in net.clients:
            deadline = time.monotonic() + 20
            got = _received(net, client)
            while not _agrees(policy, got, want[client.name]) and time.monotonic() < deadline:
                time.sleep(0.3)
                got = _received(net, client)
            assert _agrees(policy, got, want[client.name]), (name, client.name, got, want[client.name])
        assert any(f for f, _ in want.values()) or name == "nothing allowed"
        if name == "groups, tags and a subnet":
            # client2 only advertises exit routes (unapproved), yet headscale hands it every rule
            assert len(want["client2"][0]) == 3 and len(want["client3"][0]) == 2, want
        if name == "self, hosts and protocols":
            assert all(ssh for n, (_, ssh) in want.items() if n != "client3"), want
