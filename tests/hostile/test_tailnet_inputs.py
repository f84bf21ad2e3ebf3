"""Hostile tailnet inputs for ``--tailnet`` (derptool's file, ``tailscale status --json``, headscale's lists,
the API's device list, directories): every one is a single ``derptool: error:`` line naming the field or
file, exit 2, never a traceback or a hang."""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from derptool.cli import app
from tests.policy.engine import tailnet_sources as sources

runner = CliRunner()
POLICY = '{"acls": [{"action": "accept", "src": ["*"], "dst": ["*:*"]}]}'


def _run(tmp_path: Path, *tailnets: str) -> tuple[int, str]:
    pol = tmp_path / "policy.json"
    pol.write_text(POLICY)
    args = [a for t in tailnets for a in ("-t", t)]
    result = runner.invoke(app, ["policy", "compile", str(pol), *args, "--no-peers"])
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    return result.exit_code, result.stderr


def _one_line(code: int, err: str, *needles: str) -> None:
    assert code == 2, err
    assert err.startswith("derptool: error: ") and err.count("\n") == 1, err
    for needle in needles:
        assert needle in err, err


def _status(edit: Callable[[dict[str, Any]], object]) -> dict[str, Any]:
    data = sources.status()
    edit(data)
    return data


PEER = "nodekey:ab"
STATUS_CASES: dict[str, tuple[Callable[[dict[str, Any]], object], str]] = {
    "user id a string": (lambda d: d["User"]["10"].update(ID="10"), 'User["10"].ID must be an integer'),
    "user id a list": (lambda d: d["User"]["10"].update(ID=[10]), 'User["10"].ID must be an integer'),
    "user id infinite": (lambda d: d["User"]["10"].update(ID=float("inf")), "not a non-finite number"),
    "user id nan": (lambda d: d["User"]["10"].update(ID=float("nan")), "not a non-finite number"),
    "user id huge": (lambda d: d["User"]["10"].update(ID=10**30), "must be an integer from 0 to"),
    "user id boolean": (lambda d: d["User"]["10"].update(ID=True), "not a boolean"),
    "user key not numeric": (lambda d: d["User"].update(alice=d["User"].pop("10")), "key 'alice' must be a decimal"),
    "user key full-width digit": (lambda d: d["User"].update({"１": d["User"].pop("10")}), "must be a decimal user ID"),
    "user entry a string": (lambda d: d["User"].update({"10": "alice"}), 'User["10"] must be an object'),
    "users a list": (lambda d: d.update(User=[1]), "User must be an object"),
    "UserID a name": (lambda d: d["Self"].update(UserID="alice"), "Self.UserID must be an integer"),
    "UserID unknown": (lambda d: d["Self"].update(UserID=99), 'Self.UserID 99 is not in "User"'),
    "UserID missing": (lambda d: d["Self"].pop("UserID"), "Self.UserID is missing"),
    "TailscaleIPs a number": (lambda d: d["Self"].update(TailscaleIPs=5), "Self.TailscaleIPs must be a list"),
    "TailscaleIPs a prefix": (
        lambda d: d["Self"].update(TailscaleIPs=["100.64.0.1/32"]),
        "Self.TailscaleIPs[0]: '100.64.0.1/32' is not an IP address",
    ),
    "TailscaleIPs empty": (lambda d: d["Self"].update(TailscaleIPs=[]), "Self.TailscaleIPs holds no address"),
    "Tags a number": (lambda d: d["Peer"][PEER].update(Tags=7), f'Peer["{PEER}"].Tags must be a list'),
    "Tags holding a number": (lambda d: d["Peer"][PEER].update(Tags=[7]), "Tags[0] must be a string"),
    "Tags without tag:": (lambda d: d["Peer"][PEER].update(Tags=["router"]), "does not start with 'tag:'"),
    "PrimaryRoutes a number": (lambda d: d["Peer"][PEER].update(PrimaryRoutes=1), "PrimaryRoutes must be a list"),
    "PrimaryRoutes not prefixes": (
        lambda d: d["Peer"][PEER].update(PrimaryRoutes=["10.0.0.0/33"]),
        "PrimaryRoutes[0]: '10.0.0.0/33' is not a CIDR prefix",
    ),
    "AllowedIPs not prefixes": (
        lambda d: d["Peer"][PEER].update(AllowedIPs=["banana"]),
        "AllowedIPs[0]: 'banana' is not a CIDR prefix",
    ),
    "AllowedIPs a range": (lambda d: d["Peer"][PEER].update(AllowedIPs=["10.0.0.1-10.0.0.9"]), "not a CIDR"),
    "ExitNodeOption a string": (lambda d: d["Peer"][PEER].update(ExitNodeOption="yes"), "must be true or false"),
    "peer a list": (lambda d: d["Peer"].update({PEER: []}), f'Peer["{PEER}"] must be an object'),
    "Peer a list": (lambda d: d.update(Peer=[1]), "Peer must be an object"),
    "Self a string": (lambda d: d.update(Self="me"), "Self must be an object"),
    "DNSName a number": (lambda d: d["Self"].update(DNSName=3), "Self.DNSName must be a string"),
    "two nodes one address": (
        lambda d: d["Peer"][PEER].update(TailscaleIPs=["100.64.0.1"]),
        "is also the address of node 'laptop'",
    ),
    "no entries": (lambda d: (d.pop("Self"), d.update(Peer={})), 'no "Self" and no "Peer" entries'),
}


@pytest.mark.parametrize("case", sorted(STATUS_CASES))
def test_status_shapes(tmp_path: Path, case: str) -> None:
    edit, needle = STATUS_CASES[case]
    f = tmp_path / "status.json"
    f.write_text(json.dumps(_status(edit)))
    _one_line(*_run(tmp_path, str(f)), needle)


def test_status_number_text_1e999(tmp_path: Path) -> None:
    f = tmp_path / "status.json"
    f.write_text(json.dumps(sources.status()).replace('"ID": 10,', '"ID": 1e999,'))
    _one_line(*_run(tmp_path, str(f)), 'User["10"].ID', "non-finite")


def _pair(tmp_path: Path, nodes: Any, users: Any) -> tuple[str, str]:
    n, u = tmp_path / "nodes.json", tmp_path / "users.json"
    n.write_text(json.dumps(nodes))
    u.write_text(json.dumps(users))
    return str(n), str(u)


def _nodes(edit: Callable[[list[dict[str, Any]]], object]) -> list[dict[str, Any]]:
    data = copy.deepcopy(sources.headscale_nodes())
    edit(data)
    return data


def _users(edit: Callable[[list[dict[str, Any]]], object]) -> list[dict[str, Any]]:
    data = copy.deepcopy(sources.headscale_users())
    edit(data)
    return data


HEADSCALE_CASES: dict[str, tuple[list[dict[str, Any]], list[dict[str, Any]], str]] = {
    "node name twice": (
        _nodes(lambda d: d[1].update(given_name="alice-laptop")),
        sources.headscale_users(),
        "[1]: node name 'alice-laptop' appears twice in the nodes list",
    ),
    "node id twice": (_nodes(lambda d: d[1].update(id=1)), sources.headscale_users(), "[1].id 1 is also the id"),
    "address twice": (
        _nodes(lambda d: d[1].update(ip_addresses=["100.64.0.1"])),
        sources.headscale_users(),
        "is also the address of node 'alice-laptop'",
    ),
    "user id twice": (sources.headscale_nodes(), _users(lambda d: d[1].update(id=1)), "id 1 appears twice"),
    "user name twice": (
        sources.headscale_nodes(),
        _users(lambda d: d[2].update(name="alice")),
        "'alice' is also the name or email of user 1",
    ),
    "node's user not listed": (
        sources.headscale_nodes(),
        _users(lambda d: d.pop(1)),
        "user.id 2 (node 'bobs-pc') is not in the users list",
    ),
    "node id a string": (_nodes(lambda d: d[0].update(id="1")), sources.headscale_users(), "[0].id must be an integer"),
    "ip_addresses a number": (
        _nodes(lambda d: d[0].update(ip_addresses=100)),
        sources.headscale_users(),
        "[0].ip_addresses must be a list",
    ),
    "available_routes not prefixes": (
        _nodes(lambda d: d[2].update(available_routes=["10.1.0.0/24", "lan"])),
        sources.headscale_users(),
        "[2].available_routes[1]: 'lan' is not a CIDR prefix",
    ),
    "forced tag without tag:": (
        _nodes(lambda d: d[2].update(forced_tags=["router"])),
        sources.headscale_users(),
        "[2].forced_tags[0]: 'router' does not start with 'tag:'",
    ),
    "user name a number": (sources.headscale_nodes(), _users(lambda d: d[0].update(name=1)), "[0].name must be a"),
    "user without name or email": (
        sources.headscale_nodes(),
        _users(lambda d: d[2].pop("name")),
        '[2] has neither "name" nor "email"',
    ),
}


@pytest.mark.parametrize("case", sorted(HEADSCALE_CASES))
def test_headscale_shapes(tmp_path: Path, case: str) -> None:
    nodes, users, needle = HEADSCALE_CASES[case]
    _one_line(*_run(tmp_path, *_pair(tmp_path, nodes, users)), needle)


def test_directory_missing_one_list(tmp_path: Path) -> None:
    d = tmp_path / "export"
    d.mkdir()
    (d / "nodes.json").write_text(json.dumps(sources.headscale_nodes()))
    (d / "notes.txt").write_text("not json")
    _one_line(*_run(tmp_path, str(d)), "holds no `headscale users list --output json`")
    (d / "nodes.json").unlink()
    _one_line(*_run(tmp_path, str(d)), "holds no `headscale nodes list --output json` and `headscale users list")


def test_directory_with_two_nodes_lists(tmp_path: Path) -> None:
    d = tmp_path / "export"
    d.mkdir()
    for name in ("a.json", "b.json"):
        (d / name).write_text(json.dumps(sources.headscale_nodes()))
    (d / "users.json").write_text(json.dumps(sources.headscale_users()))
    _one_line(*_run(tmp_path, str(d)), "two nodes lists", "keep one")


def test_directory_fifo_is_never_opened(tmp_path: Path) -> None:
    d = tmp_path / "export"
    d.mkdir()
    (d / "nodes.json").write_text(json.dumps(sources.headscale_nodes()))
    os.mkfifo(d / "users.json")  # opening it would block until a writer comes
    _one_line(*_run(tmp_path, str(d)), "holds no `headscale users list")


def test_directory_of_many_entries(tmp_path: Path) -> None:
    d = tmp_path / "export"
    d.mkdir()
    for i in range(100):
        (d / f"{i}.json").write_text("[]")
    _one_line(*_run(tmp_path, str(d)), "100 entries")


def test_huge_file_is_refused_before_reading(tmp_path: Path) -> None:
    f = tmp_path / "nodes.json"
    with open(f, "wb") as fh:
        fh.truncate(17 * 1024 * 1024)
    u = tmp_path / "users.json"
    u.write_text(json.dumps(sources.headscale_users()))
    _one_line(*_run(tmp_path, str(f), str(u)), "larger than the 16 MiB")


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("", "unexpected EOF"),
        ("\x00\x01\x02", "UTF-8"),
        ("[" * 20_000 + "]" * 20_000, "nested deeper"),
        ('{"devices": 5}', "devices must be a list"),
        ('{"devices": [{"name": "a.ts.net", "addresses": 1}]}', "devices[0].addresses must be a list"),
        ('{"devices": [{"name": "a.ts.net", "addresses": ["100.64.0.1"], "tags": 3}]}', "devices[0].tags must be"),
        (
            '{"devices": [{"name": "a.ts.net", "addresses": ["100.64.0.1"], "tags": ["tag:x"], '
            '"enabledRoutes": ["x"]}]}',
            "devices[0].enabledRoutes[0]: 'x' is not a CIDR prefix",
        ),
        (
            '{"devices": [{"name": "a.x", "addresses": ["100.64.0.1"], "user": "u@x"}, '
            '{"name": "a.y", "addresses": ["100.64.0.2"], "user": "u@x"}]}',
            "device name 'a' appears twice",
        ),
        ('{"devices": [{"name": "a.x", "addresses": ["100.64.0.1"]}]}', 'has no "user" and no tags'),
        ('{"devices": [], "extra": 1}', "unknown member 'extra'"),
        ('{"nodes": {"a": {"ipv4": "100.64.0.1"}, "a": {"ipv4": "100.64.0.2"}}}', "appears twice"),
        ('"status"', "not a tailnet"),
    ],
)
def test_single_documents(tmp_path: Path, text: str, needle: str) -> None:
    f = tmp_path / "t.json"
    f.write_text(text)
    _one_line(*_run(tmp_path, str(f)), needle)


def test_three_files_or_the_same_twice(tmp_path: Path) -> None:
    n, u = _pair(tmp_path, sources.headscale_nodes(), sources.headscale_users())
    _one_line(*_run(tmp_path, n, u, n), "at most two --tailnet files")
    _one_line(*_run(tmp_path, n, n), "the same file given twice")
