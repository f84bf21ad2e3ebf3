"""Tailnets from every source derptool reads, recognised by shape: what each importer makes of its tool's
output, and the CLI taking one file, two files or a directory."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from derptool.cli import app
from derptool.policy.engine import import_tailnet, parse_tailnet
from derptool.policy.engine.tailnet import Tailnet, to_topology
from tests.policy.engine import tailnet_sources as sources

runner = CliRunner()
POLICY = {
    "tagOwners": {"tag:router": ["alice@"], "tag:exit": ["amelie@example.com"]},
    "acls": [{"action": "accept", "src": ["autogroup:member"], "dst": ["tag:router:22", "10.1.0.0/24:443"]}],
}


def _write(path: Path, data: Any) -> str:
    path.write_text(json.dumps(data))
    return str(path)


def test_status_becomes_nodes_users_and_routes() -> None:
    imported_net = parse_tailnet(json.dumps(sources.status()).encode(), "status.json")
    topo = to_topology(imported_net)
    assert list(topo["nodes"]) == ["laptop", "gw"]
    gw = imported_net.by_name["gw"]
    assert gw.tags == ("tag:router",) and gw.user is None
    assert gw.subnet_routes == ["10.9.0.0/16"] and gw.is_exit_node
    assert gw.primary_routes == ("10.9.0.0/16",)
    laptop = imported_net.by_name["laptop"]
    assert laptop.user is not None and laptop.user.login == "alice@example.com"
    assert (laptop.ipv4, laptop.ipv6) == ("100.64.0.1", "fd7a:115c:a1e0::1")


def test_status_import_says_what_status_leaves_out(tmp_path: Path) -> None:
    imported = import_tailnet(_write(tmp_path / "status.json", sources.status()))
    assert any("missing" in n and "no access either way" in n for n in imported.notes)
    result = runner.invoke(
        app, ["policy", "compile", _write(tmp_path / "p.json", POLICY), "-t", str(tmp_path / "status.json")]
    )
    assert result.exit_code == 0, result.output
    assert "derptool: note: `tailscale status --json` lists only the peers" in result.stderr


def _headscale_tailnet() -> Tailnet:
    from derptool.policy.engine.importers import headscale
    from derptool.policy.engine.tailnet import from_topology

    data = headscale.to_topology(sources.headscale_nodes(), "nodes.json", sources.headscale_users(), "users.json")
    return from_topology(data)


def test_headscale_lists_become_the_tailnet() -> None:
    tn = _headscale_tailnet()
    assert [n.name for n in tn.nodes] == ["alice-laptop", "bobs-pc", "router"]
    assert [u.login for u in tn.users] == ["alice", "bob@example.com", "carol"]
    router = tn.by_name["router"]
    assert router.hostname == "router" and router.tags == ("tag:router",)
    # announced (available) routes, approved routes and the primary ones, exit routes announced only
    assert router.routable_ips == ("10.1.0.0/24", "0.0.0.0/0", "::/0")
    assert router.subnet_routes == ["10.1.0.0/24"] and not router.is_exit_node
    assert router.primary_routes == ("10.1.0.0/24",)
    bob = tn.by_name["bobs-pc"]
    assert bob.hostname == "bob-pc" and bob.user is not None and bob.user.id == 2


def test_api_device_list_becomes_the_tailnet() -> None:
    tn = parse_tailnet(json.dumps(sources.api_devices()).encode(), "devices.json")
    assert [n.name for n in tn.nodes] == ["pangolin", "exit-fra"]
    exit_fra = tn.by_name["exit-fra"]
    assert exit_fra.is_exit_node and exit_fra.subnet_routes == [] and exit_fra.ipv6 is None
    pangolin = tn.by_name["pangolin"]
    assert pangolin.user is not None and pangolin.user.login == "amelie@example.com"


@pytest.mark.parametrize("order", ["nodes-first", "users-first", "directory"])
def test_headscale_from_two_files_or_a_directory(tmp_path: Path, order: str) -> None:
    nodes = _write(tmp_path / "nodes.json", sources.headscale_nodes())
    users = _write(tmp_path / "users.json", sources.headscale_users())
    pol = _write(tmp_path.parent / f"{tmp_path.name}-p.json", POLICY)
    tailnets = {"nodes-first": ["-t", nodes, "-t", users], "users-first": ["-t", users, "-t", nodes]}
    args = tailnets.get(order, ["-t", str(tmp_path)])
    result = runner.invoke(app, ["policy", "compile", pol, *args, "--format", "json", "--no-peers"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)["nodes"]
    assert list(out) == ["alice-laptop", "bobs-pc", "router"]
    rules = out["router"]["packet_filter_rules"]
    dsts = {p["IP"] for r in rules for p in r["DstPorts"]}
    assert rules and dsts == {"100.64.0.3", "fd7a:115c:a1e0::3", "10.1.0.0/24"}
    assert "note" not in result.stderr


def test_validate_takes_the_headscale_pair(tmp_path: Path) -> None:
    nodes = _write(tmp_path / "nodes.json", sources.headscale_nodes())
    users = _write(tmp_path / "users.json", sources.headscale_users())
    policy = {**POLICY, "tests": [{"src": "bob@example.com", "accept": ["tag:router:22"], "deny": ["tag:router:80"]}]}
    pol = _write(tmp_path / "p.json", policy)
    ok = runner.invoke(app, ["validate", pol, "-t", nodes, "-t", users])
    assert ok.exit_code == 0, ok.output
    policy["tests"] = [{"src": "bob@example.com", "accept": ["tag:router:80"]}]
    bad = runner.invoke(app, ["validate", _write(tmp_path / "p.json", policy), "-t", users, "-t", nodes])
    assert bad.exit_code == 1 and "test(s) failed" in bad.output


def test_each_source_compiles_like_its_canonical_file(tmp_path: Path) -> None:
    """Importing and writing the canonical file, then reading that, gives the same compile output."""
    for name, data in (("status", sources.status()), ("api", sources.api_devices())):
        src = _write(tmp_path / f"{name}.json", data)
        canonical = _write(tmp_path / f"{name}-topology.json", to_topology(import_tailnet(src).tailnet))
        pol = _write(tmp_path / "p.json", POLICY)
        outs = [
            runner.invoke(app, ["policy", "compile", pol, "-t", t, "--format", "json"]).stdout for t in (src, canonical)
        ]
        assert outs[0] == outs[1] and json.loads(outs[0])["nodes"]


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({"a.json": sources.headscale_nodes()}, "headscale's nodes list alone: give `headscale users list"),
        ({"a.json": sources.headscale_users()}, "headscale's users list alone: give `headscale nodes list"),
        ({"a.json": [1, 2]}, "not a tailnet: expected derptool's tailnet file"),
        ({"a.json": "nodes"}, "not a tailnet"),
        ({"a.json": sources.status(), "b.json": sources.headscale_users()}, "one must be `headscale nodes list"),
        ({"a.json": sources.headscale_nodes(), "b.json": sources.headscale_nodes()}, "one must be"),
        ({"a.json": {"users": []}, "b.json": {"nodes": {}}}, "two --tailnet files are headscale's nodes list"),
    ],
)
def test_wrong_shapes_are_one_line(tmp_path: Path, files: dict[str, Any], message: str) -> None:
    args = [a for name, data in files.items() for a in ("-t", _write(tmp_path / name, data))]
    result = runner.invoke(app, ["policy", "compile", _write(tmp_path / "p.json", POLICY), *args])
    assert result.exit_code == 2, result.output
    assert message in result.stderr and result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith("derptool: error: ")
