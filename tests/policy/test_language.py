"""The rest of the policy language: device postures, role autogroups, node capabilities, app grants in explain.

Behaviour as Tailscale documents it: a posture is a list of conditions that must all hold
(kb/1288 device posture, "postures"); ``srcPosture`` limits a rule to source devices meeting it and
``defaultSrcPosture`` applies to rules without one; ``node:tsVersion`` compares as a version
(``node:tsVersion >= '1.60'``); ``autogroup:admin`` holds the devices of admins (and, as the recordings
show for a nodeAttrs target, the owner's); ``nodeAttrs`` give their targets capabilities.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from derptool.cli import app
from derptool.policy.engine import compile_policy, explain
from derptool.policy.engine.tailnet import TailnetError, from_topology
from derptool.policy.posture import PostureSyntaxError, parse_condition

runner = CliRunner()


def topology(**posture: dict[str, Any]) -> dict[str, Any]:
    nodes: dict[str, Any] = {
        "mac": {"user": "alice", "ipv4": "100.64.0.1", "ipv6": "fd7a:115c:a1e0::1"},
        "linux": {"user": "bob", "ipv4": "100.64.0.2", "ipv6": "fd7a:115c:a1e0::2"},
        "bare": {"user": "carol", "ipv4": "100.64.0.3", "ipv6": "fd7a:115c:a1e0::3"},
        "db": {"tags": ["tag:db"], "ipv4": "100.64.0.9", "ipv6": "fd7a:115c:a1e0::9"},
    }
    for name, attrs in posture.items():
        nodes[name]["posture"] = attrs
    return {
        "users": [
            {"id": 1, "name": "alice", "email": "alice@example.com", "role": "owner"},
            {"id": 2, "name": "bob", "email": "bob@example.com", "role": "admin"},
            {"id": 3, "name": "carol", "email": "carol@example.com", "role": "it-admin"},
        ],
        "nodes": nodes,
    }


TAILNET = topology(
    mac={"node:os": "macos", "node:tsVersion": "1.80.0-t1234abcd"},
    linux={"node:os": "linux", "node:tsVersion": "1.58.2", "custom:quarantine": None},
)
UP_TO_DATE = {"posture:current": ["node:os IN ['macos', 'linux']", "node:tsVersion >= '1.60'"]}


def src_ips(policy: dict[str, Any], node: str = "db") -> list[list[str]]:
    compiled = compile_policy(policy, from_topology(TAILNET))
    return [r["SrcIPs"] for r in compiled.node_json(compiled.node(node))["packet_filter_rules"]]


# -- the condition grammar --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "attrs", "want"),
    [
        ("node:os == 'linux'", {"node:os": "linux"}, True),
        ("node:os != 'linux'", {"node:os": "macos"}, True),
        ("node:os IN ['macos', 'linux']", {"node:os": "linux"}, True),
        ("node:os NOT IN ['windows']", {"node:os": "windows"}, False),
        ("node:tsVersion >= '1.60'", {"node:tsVersion": "1.8.0"}, False),  # a version, not text: 1.8 < 1.60
        ("node:tsVersion >= '1.60'", {"node:tsVersion": "1.60.0"}, True),
        ("node:tsVersion < '1.60'", {"node:tsVersion": "1.58.2-t0b1e"}, True),
        ("custom:score > 40", {"custom:score": 41}, True),
        ("custom:score <= 40", {"custom:score": "40"}, False),  # a string is no number
        ("node:tsAutoUpdate", {"node:tsAutoUpdate": True}, True),
        ("node:tsAutoUpdate == false", {"node:tsAutoUpdate": False}, True),
        ("custom:x IS SET", {"custom:x": None}, False),
        ("custom:x NOT SET", {"custom:x": None}, True),
        ("custom:x == 'a'", {"custom:x": None}, False),  # an unset attribute fails all but NOT SET
        ("custom:x != 'a'", {"custom:x": None}, False),
        ("node:os == 'linux'", {}, None),  # not in the tailnet file: unknown
    ],
)
def test_condition_semantics(text: str, attrs: dict[str, Any], want: bool | None) -> None:
    assert parse_condition(text).evaluate(attrs) is want


@pytest.mark.parametrize(
    "text",
    ["os == 'mac'", "node:os = 'mac'", "node:os == mac", "node:os IN 'mac'", "node:os == 'a' 'b'", "custom:n > 1e999"],
)
def test_malformed_conditions_are_refused(text: str) -> None:
    with pytest.raises(PostureSyntaxError):
        parse_condition(text)


def test_validate_names_a_malformed_condition_with_its_position(tmp_path: Path) -> None:
    path = tmp_path / "policy.hujson"
    path.write_text('{\n  "postures": {"posture:x": [\n    "node:os ~ \'linux\'"]}\n}\n')
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == 1
    assert f"{path}:3:5" in result.output and "invalid condition" in result.output


# -- postures in compiled rules ---------------------------------------------------------------------


def test_src_posture_keeps_only_sources_that_satisfy_it() -> None:
    policy = {
        "postures": UP_TO_DATE,
        "grants": [{"src": ["*"], "dst": ["tag:db"], "ip": ["5432"], "srcPosture": ["posture:current"]}],
    }
    # mac runs 1.80 on macOS; linux runs 1.58 (too old); bare gives no attributes, so it does not satisfy
    assert src_ips(policy) == [["100.64.0.1", "fd7a:115c:a1e0::1"]]


def test_default_src_posture_applies_to_rules_without_one_and_an_empty_list_opts_out() -> None:
    base = {"postures": UP_TO_DATE, "defaultSrcPosture": ["posture:current"]}
    gated = {**base, "acls": [{"action": "accept", "src": ["autogroup:member"], "dst": ["tag:db:22"]}]}
    assert src_ips(gated) == [["100.64.0.1", "fd7a:115c:a1e0::1"]]
    opted = {
        **base,
        "acls": [{"action": "accept", "src": ["autogroup:member"], "dst": ["tag:db:22"], "srcPosture": []}],
    }
    assert len(src_ips(opted)[0]) == 6


def test_any_of_several_postures_is_enough() -> None:
    policy = {
        "postures": {**UP_TO_DATE, "posture:linux": ["node:os == 'linux'"]},
        "grants": [{"src": ["*"], "dst": ["tag:db"], "ip": ["*"], "srcPosture": ["posture:current", "posture:linux"]}],
    }
    assert src_ips(policy) == [["100.64.0.1", "100.64.0.2", "fd7a:115c:a1e0::1", "fd7a:115c:a1e0::2"]]


def test_ssh_rules_are_gated_too() -> None:
    policy = {
        "postures": UP_TO_DATE,
        "ssh": [
            {
                "action": "accept",
                "src": ["autogroup:member"],
                "dst": ["tag:db"],
                "users": ["root"],
                "srcPosture": ["posture:current"],
            }
        ],
    }
    compiled = compile_policy(policy, from_topology(TAILNET))
    rules = compiled.node_json(compiled.node("db"))["ssh_policy"]["rules"]
    assert [p["nodeIP"] for r in rules for p in r["principals"]] == ["100.64.0.1", "fd7a:115c:a1e0::1"]


def test_explain_says_the_answer_depends_on_a_missing_attribute() -> None:
    policy = {
        "postures": UP_TO_DATE,
        "grants": [{"src": ["*"], "dst": ["tag:db"], "ip": ["5432"], "srcPosture": ["posture:current"]}],
    }
    compiled = compile_policy(policy, from_topology(TAILNET))
    settled = explain(compiled, "linux", "db:5432")  # linux's version is known and too old: denied, settled
    assert not settled.allowed and settled.depends_on == []
    open_question = explain(compiled, "bare", "db:5432")
    assert not open_question.allowed
    assert open_question.depends_on == ["node:os", "node:tsVersion"]
    pair = open_question.to_json()["pairs"][0]
    assert pair["depends_on"] == [{"rule": "grants[0]", "attributes": ["node:os", "node:tsVersion"]}]
    assert explain(compiled, "mac", "db:5432").allowed


def test_explain_cli_names_the_attribute(tmp_path: Path) -> None:
    policy = {
        "postures": UP_TO_DATE,
        "grants": [{"src": ["*"], "dst": ["tag:db"], "ip": ["5432"], "srcPosture": ["posture:current"]}],
    }
    (tmp_path / "p.json").write_text(json.dumps(policy))
    (tmp_path / "t.json").write_text(json.dumps(TAILNET))
    args = [
        "policy",
        "explain",
        str(tmp_path / "p.json"),
        "-t",
        str(tmp_path / "t.json"),
        "--src",
        "bare",
        "--dst",
        "db:5432",
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == 1
    assert "depends on posture attributes the tailnet file lacks: node:os, node:tsVersion" in result.stdout


# -- roles ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("group", "nodes"),
    [
        ("autogroup:admin", ["mac", "linux"]),  # the owner and the admin
        ("autogroup:owner", ["mac"]),
        ("autogroup:it-admin", ["bare"]),
        ("autogroup:auditor", []),
        ("autogroup:member", ["mac", "linux", "bare"]),  # every user-owned device whatever the role
    ],
)
def test_role_autogroups(group: str, nodes: list[str]) -> None:
    policy = {"grants": [{"src": [group], "dst": ["tag:db"], "ip": ["22"]}]}
    compiled = compile_policy(policy, from_topology(TAILNET))
    want = sorted(ip for n in nodes for ip in (compiled.node(n).ipv4, compiled.node(n).ipv6) if ip)
    got = compiled.node_json(compiled.node("db"))["packet_filter_rules"]
    assert (sorted(got[0]["SrcIPs"]) if got else []) == want


# -- node capabilities and app grants ---------------------------------------------------------------


def test_node_attrs_fill_the_capability_map() -> None:
    policy = {
        "nodeAttrs": [
            {"target": ["autogroup:admin"], "attr": ["randomize-client-port"]},
            {"target": ["tag:db"], "app": {"example.com/cap/x": [{"a": 1}]}},
            {"target": ["100.64.0.9"], "app": {"example.com/cap/x": [{"b": 2}]}},
        ]
    }
    compiled = compile_policy(policy, from_topology(TAILNET))
    caps = {n.name: compiled.node_json(n)["cap_map"] for n in compiled.tailnet.nodes}
    owner, admin = "https://tailscale.com/cap/is-owner", "https://tailscale.com/cap/is-admin"
    assert caps["mac"] == {admin: None, owner: None, "randomize-client-port": None}
    assert caps["linux"] == {admin: None, "randomize-client-port": None}
    assert caps["bare"] == {}
    assert caps["db"] == {"example.com/cap/x": [{"a": 1}, {"b": 2}], owner: None}


def test_explain_names_app_capabilities() -> None:
    policy = {
        "grants": [
            {"src": ["alice@example.com"], "dst": ["tag:db"], "ip": ["443"]},
            {"src": ["alice@example.com"], "dst": ["tag:db"], "app": {"example.com/cap/admin": [{}]}},
        ]
    }
    compiled = compile_policy(policy, from_topology(TAILNET))
    pair = explain(compiled, "mac", "db:443").to_json()["pairs"][0]
    assert pair["allowed"] and pair["app"] == [{"rule": "grants[1]", "caps": ["example.com/cap/admin"]}]
    assert "app" not in explain(compiled, "linux", "db:443").to_json()["pairs"][0]


# -- bad tailnet input: one line naming the node or user and the field, exit 2 ------------------------


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        (lambda t: t["nodes"]["mac"].update(posture=["node:os"]), "node 'mac': posture: must be an object"),
        (lambda t: t["nodes"]["mac"].update(posture={"node:os": ["macos"]}), "node 'mac': posture: node:os: a value"),
        (lambda t: t["nodes"]["mac"].update(posture={"os": "macos"}), "node 'mac': posture: 'os' is no attribute name"),
        (
            lambda t: t["nodes"]["mac"].update(posture={"custom:n": float("nan")}),
            "node 'mac': posture: custom:n: a number must be finite",
        ),
        (lambda t: t["users"][0].update(role="boss"), "user 'alice': role 'boss' is not a Tailscale role"),
        (lambda t: t["users"][0].update(role=7), "user 'alice': role 7 is not a Tailscale role"),
    ],
)
def test_bad_posture_or_role_is_one_line_exit_2(tmp_path: Path, change: Any, needle: str) -> None:
    bad = json.loads(json.dumps(TAILNET))
    change(bad)
    with pytest.raises(TailnetError):
        from_topology(bad)
    (tmp_path / "t.json").write_text(json.dumps(bad))
    (tmp_path / "p.json").write_text("{}")
    result = runner.invoke(app, ["policy", "compile", str(tmp_path / "p.json"), "-t", str(tmp_path / "t.json")])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("derptool: error: ") and needle in lines[0], result.output
    assert "Traceback" not in result.output
