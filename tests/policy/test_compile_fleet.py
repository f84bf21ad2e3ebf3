"""``derptool policy compile`` at fleet scale: streamed output, --no-peers, --control-url, refusing invalid
policies, and the tailnet file's limits, driven through the CLI and checked against the library's answer."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from derptool.cli import app
from derptool.policy.engine import compile_policy, load_tailnet
from derptool.policy.engine import filter as filter_module
from derptool.policy.engine import tailnet as tailnet_module
from derptool.policy.engine.source import load_policy

runner = CliRunner()
PEOPLE = 6
SERVERS = 4


def topology(people: int = PEOPLE, servers: int = SERVERS) -> dict[str, Any]:
    users = [{"id": i + 1, "name": f"u{i}", "email": f"u{i}@example.com"} for i in range(people)]
    nodes: dict[str, Any] = {}
    for i in range(people + servers):
        entry: dict[str, Any] = {"hostname": f"n{i}", "ipv4": f"100.64.0.{i + 1}", "ipv6": f"fd7a:115c:a1e0::{i + 1:x}"}
        if i < people:
            entry["user"] = f"u{i}"
        else:
            entry["tags"] = ["tag:srv"]
        if i == people:
            entry["routable_ips"] = entry["approved_routes"] = ["10.9.0.0/24"]
        nodes[f"n{i}"] = entry
    return {"users": users, "nodes": nodes}


POLICY = {
    "groups": {"group:ops": ["u0@example.com", "u1@example.com"]},
    "tagOwners": {"tag:srv": ["group:ops"]},
    "acls": [
        {"action": "accept", "src": ["group:ops"], "dst": ["tag:srv:22,443", "10.9.0.0/24:*"]},
        {"action": "accept", "src": ["autogroup:member"], "dst": ["autogroup:self:*"]},
    ],
    "ssh": [{"action": "check", "src": ["group:ops"], "dst": ["tag:srv"], "users": ["root"]}],
}


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    policy = tmp_path / "policy.json"
    policy.write_text(json.dumps(POLICY))
    net = tmp_path / "tailnet.json"
    net.write_text(json.dumps(topology()))
    return {"policy": policy, "tailnet": net}


def expected(files: dict[str, Path], control_url: str | None = None) -> dict[str, Any]:
    compiled = compile_policy(
        load_policy(str(files["policy"])).data, load_tailnet(str(files["tailnet"])), control_url=control_url
    )
    return compiled.to_json()


def compile_cli(files: dict[str, Path], *args: str) -> Any:
    return runner.invoke(app, ["policy", "compile", str(files["policy"]), "-t", str(files["tailnet"]), *args])


def test_json_line_streams_one_node_a_line_with_the_library_answer(files: dict[str, Path]) -> None:
    result = compile_cli(files, "--format", "json-line")
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    want = expected(files)["nodes"]
    assert [line["node"] for line in lines] == list(want)
    for line in lines:
        name = line.pop("node")
        assert line == want[name]
    # the peers really differ per node: a server sees the ops people, a person without access none
    assert {p["name"] for p in want["n6"]["peers"]} == {"n0", "n1"}
    assert want["n6"]["packet_filter_rules"] != want["n7"]["packet_filter_rules"] or want["n7"]["peers"]


def test_json_is_compact_and_pretty_is_the_indented_document(files: dict[str, Path]) -> None:
    compact = compile_cli(files, "--format", "json")
    assert compact.exit_code == 0, compact.output
    assert json.loads(compact.stdout) == expected(files)
    assert "\n" not in compact.stdout.rstrip("\n") and ", " not in compact.stdout
    pretty = compile_cli(files, "--format", "json", "--pretty")
    assert pretty.stdout == json.dumps(expected(files), indent=2, ensure_ascii=False) + "\n"
    one = compile_cli(files, "--format", "json", "--pretty", "--node", "n9")
    assert json.loads(one.stdout) == {"nodes": {"n9": expected(files)["nodes"]["n9"]}}


def test_no_peers_leaves_the_peers_out(files: dict[str, Path]) -> None:
    result = compile_cli(files, "--format", "json-line", "--no-peers")
    want = expected(files)["nodes"]
    for line in map(json.loads, result.stdout.splitlines()):
        assert set(line) == {"node", "packet_filter_rules", "ssh_policy", "cap_map"}
        assert line["packet_filter_rules"] == want[line["node"]]["packet_filter_rules"]
    table = compile_cli(files, "--no-peers", "--node", "n6")
    assert table.exit_code == 0 and "== n6" in table.stdout and "peers (" not in table.stdout


def test_many_nodes_share_one_peer_list_but_never_see_themselves(tmp_path: Path) -> None:
    net = tmp_path / "t.json"
    net.write_text(json.dumps(topology(people=40, servers=0)))
    star = tmp_path / "p.json"
    star.write_text(json.dumps({"acls": [{"action": "accept", "src": ["*"], "dst": ["*:*"]}]}))
    result = runner.invoke(app, ["policy", "compile", str(star), "-t", str(net), "-f", "json-line"])
    lines = [json.loads(x) for x in result.stdout.splitlines()]
    assert len(lines) == 40
    for line in lines:
        names = [p["name"] for p in line["peers"]]
        assert line["node"] not in names and len(names) == 39 and names == sorted(names, key=lambda n: int(n[1:]))


def check_url(doc: dict[str, Any]) -> str:
    rules = doc["nodes"]["n6"]["ssh_policy"]["rules"]
    return str(rules[0]["action"]["holdAndDelegate"])


def test_control_url_for_ssh_check(files: dict[str, Path]) -> None:
    default = json.loads(compile_cli(files, "-f", "json").stdout)
    assert check_url(default).startswith("https://login.tailscale.com/machine/ssh/action/")
    given = json.loads(compile_cli(files, "-f", "json", "--control-url", "https://hs.example.com:8443/").stdout)
    assert check_url(given).startswith("https://hs.example.com:8443/machine/ssh/action/")
    data = topology()
    data["control_url"] = "http://headscale.internal"
    files["tailnet"].write_text(json.dumps(data))
    from_file = json.loads(compile_cli(files, "-f", "json").stdout)
    assert check_url(from_file).startswith("http://headscale.internal/machine/")
    override = json.loads(compile_cli(files, "-f", "json", "--control-url", "https://other.example").stdout)
    assert check_url(override).startswith("https://other.example/machine/")


@pytest.mark.parametrize(
    "url",
    [
        "ftp://hs.example.com",
        "hs.example.com",
        "https://",
        "https://hs.example.com:99999",
        "https://hs.example.com/?x=1",
        "https://hs .example.com",
        "https://hs.example.com\n",
        "",
    ],
)
def test_bad_control_url_is_one_line_exit_2(files: dict[str, Path], url: str) -> None:
    result = compile_cli(files, "--control-url", url)
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("derptool: error: --control-url:"), result.output


def test_a_password_in_a_control_url_is_never_echoed(files: dict[str, Path]) -> None:
    result = compile_cli(files, "--control-url", "https://admin:hunter2@hs.example.com")
    assert result.exit_code == 2 and "hunter2" not in result.output and "user name or password" in result.output
    data = topology()
    data["control_url"] = "https://admin:hunter2@hs.example.com"
    files["tailnet"].write_text(json.dumps(data))
    from_file = compile_cli(files)
    assert from_file.exit_code == 2 and "hunter2" not in from_file.output
    assert from_file.output.startswith(f"derptool: error: {files['tailnet']}:1:")


@pytest.mark.parametrize("value", [42, None, ["https://x"], "javascript:alert(1)"])
def test_tailnet_control_url_of_the_wrong_kind(files: dict[str, Path], value: Any) -> None:
    data = topology()
    data["control_url"] = value
    files["tailnet"].write_text(json.dumps(data))
    result = compile_cli(files)
    if value is None:
        assert result.exit_code == 0  # null is "not given"
    else:
        assert result.exit_code == 2 and len(result.output.strip().splitlines()) == 1 and "control_url" in result.output


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        ({"acls": [{"action": "accept", "src": ["group:nobody"], "dst": ["tag:srv:22"]}]}, "group:nobody"),
        ({"acls": [{"action": "accept", "src": ["group:ops"], "dst": ["tag:srv:99999999999999999999"]}]}, "port"),
    ],
)
def test_compile_refuses_what_validate_refuses(files: dict[str, Path], change: dict[str, Any], needle: str) -> None:
    files["policy"].write_text(json.dumps({**POLICY, **change}, indent=2))
    validate = runner.invoke(app, ["validate", str(files["policy"])])
    assert validate.exit_code == 1
    refused = compile_cli(files, "-f", "json")
    assert refused.exit_code == 1 and refused.stdout == ""
    first = refused.output.splitlines()[0]
    assert first.startswith(f"{files['policy']}:") and ": error: " in first and needle in refused.output
    assert first in validate.output  # the same file:line:col and message as validate's
    forced = compile_cli(files, "-f", "json", "--no-validate")
    assert forced.exit_code == 0 and json.loads(forced.stdout)["nodes"]


def test_compile_refuses_a_policy_whose_tests_fail_in_the_tailnet(files: dict[str, Path]) -> None:
    files["policy"].write_text(json.dumps({**POLICY, "tests": [{"src": "u3@example.com", "accept": ["tag:srv:22"]}]}))
    result = compile_cli(files)
    assert result.exit_code == 1 and "test(s) failed" in result.output


@pytest.mark.parametrize(
    ("test", "where"),
    [
        ({"src": "group:ghosts", "accept": ["tag:srv:22"]}, "group:ghosts"),
        ({"src": "tag:ghost", "accept": ["tag:srv:22"]}, "tag:ghost"),
        ({"src": "autogroup:nonsense", "accept": ["tag:srv:22"]}, "autogroup:nonsense"),
        ({"src": "ghost@example.com", "accept": ["tag:srv:22"]}, "ghost@example.com"),
        ({"src": "ghosthost", "accept": ["tag:srv:22"]}, "ghosthost"),
    ],
)
def test_a_test_whose_src_names_nothing_fails_like_tailscale(
    files: dict[str, Path], test: dict[str, Any], where: str
) -> None:
    files["policy"].write_text(json.dumps({**POLICY, "tests": [test]}, indent=2))
    result = runner.invoke(app, ["validate", str(files["policy"]), "-t", str(files["tailnet"]), "-f", "json"])
    assert result.exit_code == 1
    errors = [p for p in json.loads(result.stdout) if p["severity"] == "error"]
    assert errors and all(p["message"].startswith("test(s) failed") for p in errors)
    assert any(where in p["message"] for p in errors)


def test_an_ssh_test_whose_src_names_nothing_fails(files: dict[str, Path]) -> None:
    files["policy"].write_text(
        json.dumps({**POLICY, "sshTests": [{"src": "tag:ghost", "dst": ["tag:srv"], "accept": ["root"]}]})
    )
    result = runner.invoke(app, ["validate", str(files["policy"]), "-f", "json"])
    messages = [p["message"] for p in json.loads(result.stdout)]
    assert result.exit_code == 1 and any(m.startswith("test(s) failed") and "tag:ghost" in m for m in messages)


# -- hostile tailnet files ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            '{"users": [], "nodes": {"a": {"ipv4": "100.64.0.1", "tags": ["tag:x"]},\n'
            '                          "a": {"ipv4": "100.64.0.2", "tags": ["tag:x"]}}}',
            "node 'a' appears twice in \"nodes\"",
        ),
        (
            '{"users": [], "nodes": {"a": {"ipv4": "100.64.0.1", "tags": ["tag:x"]},\n'
            '                          "b": {"ipv4": "100.64.0.1", "tags": ["tag:x"]}}}',
            "node 'b': ipv4 100.64.0.1 is also the address of node 'a'",
        ),
        (
            '{"users": [], "nodes": {"a": {"ipv6": "fd7a:115c:a1e0::1", "tags": ["tag:x"]},\n'
            '                          "b": {"ipv6": "FD7A:115C:A1E0:0::1", "tags": ["tag:x"]}}}',
            "node 'b': ipv6 fd7a:115c:a1e0::1 is also the address of node 'a'",
        ),
        (
            '{"users": [], "nodes": {"a": {"ipv4": "100.64.0.1", "tags": ["tag:x"], "routable_ips": ["10.0.0.0/33"]}}}',
            "node 'a': routable_ips: '10.0.0.0/33' is not a CIDR prefix",
        ),
        (
            '{"users": [], "nodes": {"a": {"ipv4": "100.64.0.1", "tags": ["tag:x"], "approved_routes": ["nan"]}}}',
            "node 'a': approved_routes: 'nan' is not a CIDR prefix",
        ),
        ('{"users": [], "nodes": {"a": {"ipv4": NaN}}}', "node 'a': ipv4 nan is not an IPv4 address"),
        ('{"users": [], "nodes": {"a": {"ipv4": 1e999}}}', "node 'a': ipv4 inf is not an IPv4 address"),
        (
            '{"users": [], "nodes": {"a": {"ipv4": "100.64.0.1", "routable_ips": "10.0.0.0/8"}}}',
            "routable_ips must be a list",
        ),
    ],
)
def test_bad_tailnet_is_one_line_naming_node_and_field(files: dict[str, Path], text: str, message: str) -> None:
    files["tailnet"].write_text(text)
    result = compile_cli(files, "--no-validate")
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"derptool: error: {files['tailnet']}") and message in lines[0]


def test_node_limit_is_a_clear_error(files: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tailnet_module, "MAX_NODES", 5)
    result = compile_cli(files)
    assert result.exit_code == 2
    assert "10 nodes, more than the 5 derptool compiles for" in result.output and len(result.output.splitlines()) == 1


def test_delivery_limit_is_a_clear_error(files: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(filter_module, "MAX_DELIVERIES", 3)
    result = compile_cli(files, "--no-validate")
    assert result.exit_code == 2
    assert "more than 3 packet-filter entries" in result.output and "acls[0]" in result.output
