"""The policy engine: tailnet files, compile, tests, explain and egress, as a library and through the CLI."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from derptool.cli import app
from derptool.errors import InputError
from derptool.policy.engine import compile_policy, parse_tailnet
from derptool.policy.engine.addresses import ALL_TAILNET, IPSet, range_text
from derptool.policy.engine.egress import egress, via_violations
from derptool.policy.engine.explain import explain

runner = CliRunner()

TAILNET = """// a small tailnet
{
  "users": [
    {"id": 1, "name": "alice", "email": "alice@example.com"},
    {"id": 2, "name": "bob", "email": "bob@example.com"},
  ],
  "nodes": {
    "laptop":  {"hostname": "laptop", "user": "alice", "tags": [], "ipv4": "100.64.0.1", "ipv6": "fd7a:115c:a1e0::1"},
    "phone":   {"hostname": "phone", "user": "bob", "tags": [], "ipv4": "100.64.0.2", "ipv6": "fd7a:115c:a1e0::2"},
    "web":     {"hostname": "web", "tags": ["tag:web"], "ipv4": "100.64.0.3", "ipv6": "fd7a:115c:a1e0::3"},
    "router":  {"hostname": "router", "tags": ["tag:router"], "ipv4": "100.64.0.4", "ipv6": "fd7a:115c:a1e0::4",
                "routable_ips": ["10.1.0.0/16"], "approved_routes": []},
    "exit-eu": {"hostname": "exit-eu", "tags": ["tag:exit-eu"], "ipv4": "100.64.0.5", "ipv6": "fd7a:115c:a1e0::5",
                "routable_ips": ["0.0.0.0/0", "::/0"], "approved_routes": ["0.0.0.0/0", "::/0"]},
    "exit-us": {"hostname": "exit-us", "tags": ["tag:exit-us"], "ipv4": "100.64.0.6", "ipv6": "fd7a:115c:a1e0::6",
                "routable_ips": ["0.0.0.0/0", "::/0"], "approved_routes": ["0.0.0.0/0", "::/0"]},
  },
}
"""

POLICY = """{
  "groups": {"group:dev": ["alice@example.com"]},
  "tagOwners": {"tag:web": [], "tag:router": [], "tag:exit-eu": [], "tag:exit-us": []},
  "autoApprovers": {"routes": {"10.0.0.0/8": ["tag:router"]}},
  "acls": [
    {"action": "accept", "src": ["group:dev"], "dst": ["tag:web:22,443"]},
    {"action": "accept", "src": ["autogroup:member"], "dst": ["10.1.0.0/16:*"]},
  ],
  "ssh": [
    {"action": "accept", "src": ["group:dev"], "dst": ["tag:web"], "users": ["root", "autogroup:nonroot"]},
  ],
  "tests": [
    {"src": "alice@example.com", "accept": ["tag:web:443"], "deny": ["tag:web:80"]},
  ],
}
"""


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    out = {"tailnet": tmp_path / "tailnet.hujson", "policy": tmp_path / "policy.hujson"}
    out["tailnet"].write_text(TAILNET)
    out["policy"].write_text(POLICY)
    return out


def _compiled(policy: str = POLICY) -> Any:
    from derptool.policy.engine.source import parse_policy

    return compile_policy(parse_policy(policy.encode()).data, parse_tailnet(TAILNET.encode()))


# -- addresses and tailnet files ------------------------------------------------------------------


def test_wildcard_source_is_cgnat_without_chromeos_and_the_ula() -> None:
    assert ALL_TAILNET.strings() == ["100.64.0.0-100.115.91.255", "100.115.94.0-100.127.255.255", "fd7a:115c:a1e0::/48"]
    assert range_text(5, 5) == "0.0.0.5"
    s = IPSet.parse(["10.0.0.0/8"]).minus(IPSet.parse(["10.1.0.0/16"]))
    assert not s.contains(IPSet.parse(["10.1.2.3"]).ranges[0][0])
    assert s.contains(IPSet.parse(["10.2.0.1"]).ranges[0][0])


def test_tailnet_file_with_comments() -> None:
    tn = parse_tailnet(TAILNET.encode())
    assert [n.name for n in tn.nodes] == ["laptop", "phone", "web", "router", "exit-eu", "exit-us"]
    web = tn.by_name["web"]
    assert web.tagged and web.user is None
    assert tn.by_name["laptop"].user is not None and tn.by_name["laptop"].user.email == "alice@example.com"
    assert tn.by_name["exit-eu"].is_exit_node and not tn.by_name["router"].subnet_routes  # not approved yet


@pytest.mark.parametrize(
    ("text", "where", "message"),
    [
        ('{"users": [], "nodes": {"a": {"ipv4": "100.64.0.300"}}}', (1, 39), "ipv4 '100.64.0.300' is not an IPv4"),
        ('{\n "users": [],\n "nodes": {"a": {"ipv4": "100.64.0.1", "user": "zed"}}}', (3, 48), "user 'zed' is not"),
        ('{"users": [], "nodez": {}}', (1, 24), 'unknown member "nodez"'),
        ('{"users": [], "nodes": {', (1, 25), "unexpected EOF"),
    ],
)
def test_tailnet_errors_name_line_and_column(text: str, where: tuple[int, int], message: str) -> None:
    with pytest.raises(InputError) as err:
        parse_tailnet(text.encode(), "t.json")
    assert (err.value.line, err.value.column) == where
    assert message in err.value.message
    assert str(err.value).startswith(f"t.json:{where[0]}:{where[1]}: ")


def test_tailscale_status_json_is_a_tailnet() -> None:
    status = {
        "Self": {
            "HostName": "laptop",
            "DNSName": "laptop.tail1234.ts.net.",
            "TailscaleIPs": ["100.64.0.1", "fd7a:115c:a1e0::1"],
            "UserID": 10,
        },
        "Peer": {
            "nodekey:1": {
                "HostName": "gw",
                "DNSName": "gw.tail1234.ts.net.",
                "TailscaleIPs": ["100.64.0.9"],
                "Tags": ["tag:router"],
                "UserID": 10,
                "PrimaryRoutes": ["10.9.0.0/16"],
                "AllowedIPs": ["100.64.0.9/32", "10.9.0.0/16"],
                "ExitNodeOption": True,
            }
        },
        "User": {"10": {"ID": 10, "LoginName": "alice@example.com"}},
    }
    tn = parse_tailnet(json.dumps(status).encode())
    assert [n.name for n in tn.nodes] == ["laptop", "gw"]
    gw = tn.by_name["gw"]
    assert gw.subnet_routes == ["10.9.0.0/16"] and gw.is_exit_node and gw.user is None
    assert tn.by_name["laptop"].user is not None and tn.by_name["laptop"].user.login == "alice@example.com"


# -- compile --------------------------------------------------------------------------------------


def test_compile_packet_filter_ssh_and_peers() -> None:
    c = _compiled()
    web = c.node_json(c.node("web"))
    assert web["packet_filter_rules"] == [
        {
            "SrcIPs": ["100.64.0.1", "fd7a:115c:a1e0::1"],
            "DstPorts": [
                {"IP": "100.64.0.3", "Ports": {"First": 22, "Last": 22}},
                {"IP": "100.64.0.3", "Ports": {"First": 443, "Last": 443}},
                {"IP": "fd7a:115c:a1e0::3", "Ports": {"First": 22, "Last": 22}},
                {"IP": "fd7a:115c:a1e0::3", "Ports": {"First": 443, "Last": 443}},
            ],
        }
    ]
    [rule] = web["ssh_policy"]["rules"]
    assert rule["sshUsers"] == {"*": "=", "root": "root"}
    assert [p["nodeIP"] for p in rule["principals"]] == ["100.64.0.1", "fd7a:115c:a1e0::1"]
    assert rule["action"]["accept"] is True
    assert [p["name"] for p in web["peers"]] == ["laptop"]
    # the router's route was auto-approved; members reach it, and see it in the router's AllowedIPs
    laptop = c.node_json(c.node("laptop"))
    router = next(p for p in laptop["peers"] if p["name"] == "router")
    assert router["primary_routes"] == ["10.1.0.0/16"] and "10.1.0.0/16" in router["allowed_ips"]
    assert c.node_json(c.node("router"))["packet_filter_rules"][0]["DstPorts"] == [
        {"IP": "10.1.0.0/16", "Ports": {"First": 0, "Last": 65535}}
    ]
    assert c.node_json(c.node("phone"))["packet_filter_rules"] == []


def test_cli_compile_json_and_table(files: dict[str, Path]) -> None:
    result = runner.invoke(
        app, ["policy", "compile", str(files["policy"]), "--tailnet", str(files["tailnet"]), "--format", "json"]
    )
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert set(doc["nodes"]) == {"laptop", "phone", "web", "router", "exit-eu", "exit-us"}
    assert set(doc["nodes"]["web"]) == {"packet_filter_rules", "ssh_policy", "peers", "cap_map"}
    one = runner.invoke(app, ["policy", "compile", str(files["policy"]), "-t", str(files["tailnet"]), "--node", "web"])
    assert one.exit_code == 0 and one.stdout.startswith("== web") and "peers (1): laptop" in one.stdout
    bad = runner.invoke(app, ["policy", "compile", str(files["policy"]), "-t", str(files["tailnet"]), "--node", "nope"])
    assert bad.exit_code == 2 and "--node 'nope' is not in the tailnet" in bad.output


def test_cli_compile_bad_tailnet_is_one_line(files: dict[str, Path], tmp_path: Path) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text('{"users": [], "nodes": {"a": {"ipv4": "nope"}}}')
    result = runner.invoke(app, ["policy", "compile", str(files["policy"]), "-t", str(broken)])
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [
        f"derptool: error: {broken}:1:39: node 'a': ipv4 'nope' is not an IPv4 address"
    ]


# -- tests ----------------------------------------------------------------------------------------


def test_validate_runs_policy_tests_with_tailnet(files: dict[str, Path]) -> None:
    ok = runner.invoke(app, ["validate", str(files["policy"]), "--tailnet", str(files["tailnet"])])
    assert ok.exit_code == 0, ok.output
    failing = POLICY.replace('"deny": ["tag:web:80"]', '"deny": ["tag:web:22"]')
    files["policy"].write_text(failing)
    result = runner.invoke(
        app, ["validate", str(files["policy"]), "--tailnet", str(files["tailnet"]), "--format", "json"]
    )
    assert result.exit_code == 1
    [problem] = json.loads(result.stdout)
    assert problem["message"].startswith(
        "test(s) failed: tests[0]: alice@example.com -> tag:web:22 (tcp): want deny, got accept: acls[0] ("
    )
    assert f"{files['policy']}:6)" in problem["message"]  # the rule that allowed it, file:line
    assert problem["path"] == "/tests/0/deny/0" and problem["line"] == 13


def test_validate_without_tailnet_never_fails_a_test_that_could_pass(files: dict[str, Path]) -> None:
    files["policy"].write_text(POLICY.replace('"deny": ["tag:web:80"]', '"deny": ["tag:web:22"]'))
    result = runner.invoke(app, ["validate", str(files["policy"])])
    assert result.exit_code == 0
    assert "1 policy test not run: give --tailnet FILE" in result.output


def test_accept_that_no_rule_allows_says_so() -> None:
    from derptool.policy.engine.tests import run_tests

    c = _compiled(POLICY.replace('"accept": ["tag:web:443"]', '"accept": ["tag:web:8080"]'))
    [failure] = run_tests(c).failures
    assert "want accept, got deny: no rule allows 100.64.0.1 to 100.64.0.3:8080" in failure.message


# -- explain and egress ---------------------------------------------------------------------------


def test_explain_names_the_rule() -> None:
    c = _compiled()
    yes = explain(c, "laptop", "web:443")
    assert yes.allowed and {tuple(r) for p in yes.pairs for r in p.rules} == {("acls", 0)}
    assert not explain(c, "phone", "web:443").allowed
    assert explain(c, "laptop", "web:443", "udp").allowed  # an ACL without proto: TCP, UDP and ICMP


def test_cli_explain_exit_codes(files: dict[str, Path]) -> None:
    yes = runner.invoke(
        app,
        [
            "policy",
            "explain",
            str(files["policy"]),
            "-t",
            str(files["tailnet"]),
            "--src",
            "alice@example.com",
            "--dst",
            "web:22",
            "--format",
            "json",
        ],
    )
    assert yes.exit_code == 0, yes.output
    doc = json.loads(yes.stdout)
    assert doc["allowed"] and doc["pairs"][0]["rules"] == [{"rule": "acls[0]", "file": str(files["policy"]), "line": 6}]
    no = runner.invoke(
        app,
        [
            "policy",
            "explain",
            str(files["policy"]),
            "-t",
            str(files["tailnet"]),
            "--src",
            "phone",
            "--dst",
            "100.64.0.3:22",
        ],
    )
    assert no.exit_code == 1 and "denied" in no.stdout


def _grants_fragment(*args: str) -> dict[str, Any]:
    result = runner.invoke(app, ["grants", *args, "--format", "json"])
    assert result.exit_code == 0, result.output
    return dict(json.loads(result.stdout))


def test_egress_checks_derptool_grants_output(files: dict[str, Path]) -> None:
    """`derptool grants` writes the geofence; `policy egress --require-via` verifies it."""
    fragment = _grants_fragment("--src", "autogroup:member", "--via", "tag:exit-eu")
    base: dict[str, Any] = {
        "tagOwners": {"tag:exit-eu": [], "tag:exit-us": [], "tag:web": [], "tag:router": []},
        "grants": [{"src": ["autogroup:member"], "dst": ["autogroup:member"], "ip": ["*"]}],
    }
    policy = {**base, "grants": base["grants"] + fragment["grants"]}
    files["policy"].write_text(json.dumps(policy))
    ok = runner.invoke(
        app,
        [
            "policy",
            "egress",
            str(files["policy"]),
            "-t",
            str(files["tailnet"]),
            "--require-via",
            "tag:exit-eu",
            "--format",
            "json",
        ],
    )
    assert ok.exit_code == 0, ok.output
    doc = json.loads(ok.stdout)
    laptop = next(n for n in doc["nodes"] if n["node"] == "laptop")
    assert [x["name"] for x in laptop["exit_nodes"]] == ["exit-eu"] and doc["violations"] == []
    # without the geofence, members may leave through any exit node
    policy["grants"] = base["grants"] + [{"src": ["autogroup:member"], "dst": ["autogroup:internet"], "ip": ["*"]}]
    files["policy"].write_text(json.dumps(policy))
    bad = runner.invoke(
        app, ["policy", "egress", str(files["policy"]), "-t", str(files["tailnet"]), "--require-via", "tag:exit-eu"]
    )
    assert bad.exit_code == 1
    assert "laptop may leave through exit node exit-us, which lacks tag:exit-eu" in bad.output


def test_egress_library() -> None:
    from derptool.policy.engine.source import parse_policy

    policy = parse_policy(
        json.dumps(
            {"grants": [{"src": ["*"], "dst": ["autogroup:internet"], "ip": ["*"]}], "tagOwners": {"tag:exit-eu": []}}
        ).encode()
    ).data
    c = compile_policy(policy, parse_tailnet(TAILNET.encode()))
    report = egress(c, ["laptop"])
    assert [x.name for x in report[0].exit_nodes] == ["exit-eu", "exit-us"]
    assert [(n.name, x.name) for n, x in via_violations(report, "tag:exit-eu")] == [("laptop", "exit-us")]
