"""Unit tests of the policy checks: each rule's message and the line:column it points at."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from derptool.policy import Policy, Problem, validate_bytes
from derptool.policy._go import format_duration, parse_duration, quote
from derptool.policy.validate import decode, findings
from tests.support.repo import EXAMPLES


def run(text: str) -> list[Problem]:
    return validate_bytes(text.encode(), "p.hujson")


def messages(data: Any) -> list[str]:
    """Messages of all problems of a policy given as data."""
    return [p.message for p in validate_bytes(json.dumps(data).encode(), "p.json")]


def errors(data: Any) -> list[str]:
    return [p.message for p in validate_bytes(json.dumps(data).encode(), "p.json") if p.severity == "error"]


def warnings(data: Any) -> list[str]:
    return [p.message for p in validate_bytes(json.dumps(data).encode(), "p.json") if p.severity == "warning"]


TAGS = {"tag:server": ["alice@example.com"], "tag:client": ["alice@example.com"]}
GROUPS = {"group:dev": ["bob@example.com"]}
HOSTS = {"web": "100.64.0.10", "lan": "192.168.1.0/24"}


def policy(**sections: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"tagOwners": TAGS, "groups": GROUPS, "hosts": HOSTS}
    base.update(sections)
    return base


# -- positions, syntax, shape ------------------------------------------------------------------------


def test_valid_policy_has_no_problems() -> None:
    assert run('{"grants": [{"src": ["*"], "dst": ["*"], "ip": ["*"]}]}') == []
    assert run("// comment\n{}\n") == []


def test_syntax_error_is_one_problem_at_its_position() -> None:
    probs = run('{\n  "acls": [\n    {"action": "accept",,}\n  ]\n}\n')
    assert len(probs) == 1
    p = probs[0]
    assert (p.file, p.line, p.column, p.severity) == ("p.hujson", 3, 25, "error")
    assert p.message == "invalid character ',' after object value (expecting ',' or '}')" or "','" in p.message


def test_unknown_key_points_at_the_key() -> None:
    text = '{\n  "grants": [\n    {"src": ["*"], "dst": ["*"], "ip": ["*"], "dest": 1}\n  ]\n}\n'
    [p] = run(text)
    assert p.message == 'json: unknown field "dest"'
    assert (p.line, p.column) == (3, 47)
    assert p.path == ("grants", 0, "dest")
    assert p.pointer == "/grants/0/dest"


def test_unknown_top_level_key() -> None:
    [p] = run('{"nodeVisibility": "all"}')
    assert p.message == 'json: unknown field "nodeVisibility"'
    assert (p.line, p.column) == (1, 2)


def test_keys_match_case_insensitively() -> None:
    assert run('{"ACLs": [{"Action": "accept", "Src": ["*"], "Dst": ["*:*"]}], "TagOwners": {}}') == []
    assert run('{"derpmap": {"omitdefaultregions": false, "regions": {}}}') == []


def test_renamed_keys_keep_their_positions() -> None:
    text = '{\n"ACLs": [\n {"Action": "accept", "SRC": ["tag:nope"], "dst": ["*:*"]}\n]}'
    [p] = run(text)
    assert p.message == 'src=tag not found: "tag:nope"'
    assert p.path == ("ACLs", 0, "SRC", 0)
    assert (p.line, p.column) == (3, 31)


def test_wrong_types_use_go_wording() -> None:
    assert messages({"acls": {"a": 1}}) == ["json: cannot unmarshal object into Go value of type []ACL"]
    assert messages({"grants": [{"src": "*", "dst": ["*"], "ip": ["*"]}]}) == [
        "json: cannot unmarshal string into Go value of type []string"
    ]
    assert messages({"randomizeClientPort": "yes"}) == ["json: cannot unmarshal string into Go value of type bool"]
    assert messages([1]) == ["json: cannot unmarshal array into Go value of type Policy"]
    assert messages({"derpMap": {"Regions": {"x": None}}}) == [
        "json: cannot unmarshal number x into Go value of type int"
    ]
    assert "json: cannot unmarshal number 1180591620717411303424 into Go value of type int" in messages(
        {"derpMap": {"Regions": {"900": {"RegionID": 2**70}}}}
    )
    found = messages({"derpMap": {"Regions": {"900": {"RegionID": 1.5}}}})
    assert "json: cannot unmarshal number 1.5 into Go value of type int" in found
    assert not any("RegionID" in m and "required" in m for m in found)  # reported once, as a type error


def test_null_is_accepted_like_go() -> None:
    assert (
        run(
            '{"hosts": null, "groups": {"group:a": null}, "ssh": null, "acls": [{"action": "accept", '
            '"src": ["*"], "dst": ["*:*"], "proto": null}]}'
        )
        == []
    )


def test_duplicate_keys_are_warnings_at_the_last_key() -> None:
    probs = run('{"hosts": {"a": "1.2.3.4",\n "a": "1.2.3.5"}}')
    assert [(p.severity, p.message, p.line, p.column) for p in probs] == [
        ("warning", 'duplicate key "a": only the last value counts', 2, 2)
    ]


def test_keys_differing_only_in_case_are_errors_naming_both_lines() -> None:
    probs = run('{"acls": [],\n "ACLS": []}')
    assert [(p.severity, p.line) for p in probs] == [("error", 2)]
    assert probs[0].message.startswith('keys "acls" and "ACLS" differ only in case')
    assert probs[0].message.endswith("(the other is at line 1)")


def test_problems_are_sorted_and_all_reported() -> None:
    text = '{\n"acls": [{"action": "deny", "src": ["tag:x"], "dst": ["*"]}],\n"bogus": 1\n}'
    probs = run(text)
    assert [p.line for p in probs] == sorted(p.line for p in probs)
    assert {p.message for p in probs} == {
        'action="deny" is not supported',
        'src=tag not found: "tag:x"',
        'dst="*": missing port: use "*:*" for all ports',
        'json: unknown field "bogus"',
    }


# -- acls -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ({"action": "deny", "src": ["*"], "dst": ["*:*"]}, 'action="deny" is not supported'),
        (
            {"action": "accept", "src": ["autogroup:self"], "dst": ["*:*"]},
            '"autogroup:self" not valid on the src side of a rule',
        ),
        (
            {"action": "accept", "src": ["*"], "dst": ["autogroup:self"]},
            'dst="autogroup:self": port range "self": invalid first integer',
        ),
        (
            {"action": "accept", "src": ["*"], "dst": ["tag:server:ssh"]},
            'dst="tag:server:ssh": port range "ssh": invalid first integer',
        ),
        (
            {"action": "accept", "src": ["*"], "dst": ["tag:server:0"]},
            'dst="tag:server:0": port range "0": first port must be >0, or use \'*\' for wildcard',
        ),
        (
            {"action": "accept", "src": ["*"], "dst": ["tag:server:90-80"]},
            'dst="tag:server:90-80": port range "90-80": first port must not be greater than the last port',
        ),
        (
            {"action": "accept", "src": ["*"], "dst": ["tag:server:70000"]},
            'dst="tag:server:70000": port range "70000": invalid first integer',
        ),
        ({"action": "accept", "src": ["tag:nonexistent"], "dst": ["*:*"]}, 'src=tag not found: "tag:nonexistent"'),
        (
            {"action": "accept", "src": ["*"], "dst": ["tag:nonexistent:22"]},
            'dst="tag:nonexistent:22": tag not found: "tag:nonexistent"',
        ),
        ({"action": "accept", "src": ["group:nope"], "dst": ["*:*"]}, 'src=group not found: "group:nope"'),
        ({"action": "accept", "src": ["*"], "dst": ["nohost:22"]}, 'dst="nohost:22": "nohost": invalid address'),
        ({"action": "accept", "src": ["autogroup:bogus"], "dst": ["*:*"]}, 'src=unknown autogroup "autogroup:bogus"'),
        (
            {"action": "accept", "src": ["*"], "dst": ["autogroup:danger-all:*"]},
            "cannot use autogroup:danger-all as a dst",
        ),
        (
            {"action": "accept", "src": ["tag:client"], "dst": ["autogroup:self:*"]},
            "autogroup:self can only be used with users, groups, or supported autogroups",
        ),
        (
            {"action": "accept", "src": ["*"], "dst": ["*:*"], "proto": "bogus"},
            'proto "bogus" is not a known protocol: use a name such as tcp, udp, icmp, sctp or an IANA number 1-255',
        ),
        (
            {"action": "accept", "src": ["*"], "dst": ["tag:server:22"], "proto": "icmp"},
            'dst="tag:server:22": proto "icmp" has no ports: use "tag:server:*"',
        ),
        (
            {"action": "accept", "src": ["*"], "users": ["*"], "dst": ["*:*"]},
            'only one of "src" and "users" may be given ("users" is the legacy name of "src")',
        ),
    ],
)
def test_acl_rules(rule: dict[str, Any], message: str) -> None:
    assert errors(policy(acls=[rule])) == [message]


@pytest.mark.parametrize(
    "rule",
    [
        {"action": "accept", "src": ["*"], "dst": ["autogroup:self:*"]},
        {"action": "accept", "src": ["group:dev", "bob@example.com", "autogroup:member"], "dst": ["autogroup:self:22"]},
        {"action": "accept", "src": ["web", "lan", "100.64.0.0/10", "10.0.0.1-10.0.0.9"], "dst": ["lan:80,443"]},
        {"action": "accept", "src": ["*"], "dst": ["[fd7a:115c:a1e0::1]:8088", "fd7a:115c:a1e0::/48:*"]},
        {"action": "accept", "src": ["*"], "dst": ["tag:server:*"], "proto": "1"},
        {"action": "accept", "src": ["*"], "dst": ["tag:server:22"], "proto": "TCP"},
        {"action": "accept", "users": ["*"], "ports": ["*:*"]},
        {"action": " accept", "src": ["user:*@example.com"], "dst": ["autogroup:internet:*", "svc:web:443"]},
    ],
)
def test_acl_rules_accepted(rule: dict[str, Any]) -> None:
    assert errors(policy(acls=[rule])) == []


# -- grants -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ({"src": ["*"], "dst": ["*"]}, "ip and app can not both be empty"),
        ({"src": ["*"], "dst": ["*"], "ip": ["icmp"]}, 'port range "icmp": invalid first integer'),
        (
            {"src": ["*"], "dst": ["*"], "ip": ["tcp:0"]},
            "port range \"0\": first port must be >0, or use '*' for wildcard",
        ),
        (
            {"src": ["*"], "dst": ["0.0.0.0/0"], "ip": ["*"]},
            'dst "0.0.0.0/0": to allow all IP addresses, use "*" or "autogroup:internet"',
        ),
        (
            {"src": ["*"], "dst": ["::/0"], "ip": ["*"]},
            'dst "::/0": to allow all IP addresses, use "*" or "autogroup:internet"',
        ),
        (
            {"src": ["*"], "dst": ["autogroup:internet"], "app": {"example.com/cap/x": [{}]}},
            "cannot use app grants with autogroup:internet",
        ),
        (
            {"src": ["*"], "dst": ["*"], "app": {"https://example.com/cap/x": [{}]}},
            "capability name must have the form {domain}/{path}",
        ),
        (
            {"src": ["*"], "dst": ["*"], "app": {"tailscale.com/cap/funnel": [{}]}},
            "capability name must not be in the tailscale.com domain",
        ),
        (
            {"src": ["*"], "dst": ["autogroup:self"], "ip": ["*"]},
            "autogroup:self can only be used with users, groups, or supported autogroups",
        ),
        ({"src": ["*"], "dst": ["autogroup:danger-all"], "ip": ["*"]}, "cannot use autogroup:danger-all as a dst"),
        ({"src": ["*"], "dst": ["10.0.0.0/8"], "ip": ["*"], "via": ["group:dev"]}, "via can only be a tag"),
        (
            {"src": ["*"], "dst": ["10.0.0.0/8"], "ip": ["*"], "via": ["tag:nonexistent"]},
            'tag "tag:nonexistent" not found',
        ),
        (
            {"src": ["*"], "dst": ["*"], "ip": ["*"], "srcPosture": ["posture:nope"]},
            'posture not found: "posture:nope"',
        ),
        ({"src": ["svc:web"], "dst": ["*"], "ip": ["*"]}, '"svc:web" not valid on the src side of a rule'),
    ],
)
def test_grant_rules(rule: dict[str, Any], message: str) -> None:
    assert errors(policy(grants=[rule])) == [message]


@pytest.mark.parametrize(
    "rule",
    [
        {"src": ["*"], "dst": ["tag:server"], "ip": ["47", "80-443", "tcp:22", "udp:53", "icmp:*", "sctp:9"]},
        {
            "src": ["*"],
            "dst": ["*"],
            "app": {"tailscale.com/cap/drive": [{"shares": ["*"]}], "tailscale.com/cap/golink": [{}]},
        },
        {"src": ["autogroup:member"], "dst": ["autogroup:self"], "ip": ["*"]},
        {"src": ["tag:client"], "dst": ["autogroup:internet"], "ip": ["*"], "via": ["tag:server"]},
        {"src": ["*"], "dst": ["svc:web"], "ip": ["tcp:443"]},
    ],
)
def test_grant_rules_accepted(rule: dict[str, Any]) -> None:
    assert errors(policy(grants=[rule])) == []


# -- ssh --------------------------------------------------------------------------------------------


def ssh(**rule: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"action": "accept", "src": ["autogroup:member"], "dst": ["tag:server"], "users": ["root"]}
    base.update(rule)
    return policy(ssh=[{k: v for k, v in base.items() if v is not ...}])


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ({"action": ...}, "action must be specified"),
        ({"action": "Accept"}, '"Accept" is not a valid action'),
        ({"action": "deny"}, '"deny" is not a valid action'),
        ({"users": []}, "users must be specified"),
        ({"users": ...}, "users must be specified"),
        ({"users": [""]}, 'user "" is not valid'),
        ({"users": ["*"]}, 'user "*" is not valid'),
        ({"action": "check", "checkPeriod": "200h"}, "checkPeriod 200h0m0s is above the max (168h)"),
        ({"action": "check", "checkPeriod": "168h0m1s"}, "checkPeriod 168h0m1s is above the max (168h)"),
        ({"action": "check", "checkPeriod": "-1m"}, "checkPeriod -1m0s must be a positive duration"),
        ({"action": "check", "checkPeriod": "abc"}, 'time: invalid duration "abc"'),
        ({"acceptEnv": ["GIT_*", ""]}, "acceptEnv values cannot be empty"),
        ({"dst": ["web"]}, 'invalid dst "web"'),
        ({"dst": ["*"]}, 'invalid dst "*"'),
        ({"dst": ["tag:nope"]}, 'dst="tag:nope": tag not found: "tag:nope"'),
        (
            {"src": ["tag:client"], "dst": ["autogroup:self"]},
            "autogroup:self can only be used with users, groups, or supported autogroups",
        ),
        ({"recorder": ["tag:nope"]}, 'tag not found: "tag:nope"'),
    ],
)
def test_ssh_rules(rule: dict[str, Any], message: str) -> None:
    assert errors(ssh(**rule)) == [message]


@pytest.mark.parametrize(
    "rule",
    [
        {"action": " accept"},
        {"action": "check", "checkPeriod": "always"},
        {"action": "check", "checkPeriod": "168h"},
        {"users": [" root", "autogroup:nonroot", "localpart:*@example.com", "группа"]},
        {"dst": ["tag:server ", "bob@example.com", "autogroup:self"], "src": ["group:dev"]},
        {"src": [], "dst": []},
        {"acceptEnv": ["**", "LC_?"]},
    ],
)
def test_ssh_rules_accepted(rule: dict[str, Any]) -> None:
    assert errors(ssh(**rule)) == []


def test_empty_rules_are_warnings() -> None:
    assert sorted(warnings(ssh(src=[], dst=...))) == [
        "dst is empty: this rule matches nothing",
        "src is empty: this rule matches nothing",
    ]
    assert warnings(policy(grants=[{"src": ["*"], "dst": [], "ip": ["*"]}])) == [
        "dst is empty: this rule matches nothing"
    ]
    assert warnings(policy(acls=[{"action": "accept", "users": ["*"], "ports": []}])) == [
        "ports is empty: this rule matches nothing"
    ]


def test_ssh_warnings() -> None:
    assert warnings(ssh(action="check", checkPeriod="30s")) == ["checkPeriod 30s is below the documented minimum of 1m"]
    assert warnings(ssh(checkPeriod="1h")) == ['checkPeriod only applies to action "check"; it is ignored here']


# -- definitions ------------------------------------------------------------------------------------


def test_tag_names() -> None:
    assert errors({"tagOwners": {"tag:сервер": []}}) == [
        "tagOwners[\"tag:сервер\"]: tag names must start with a letter, after 'tag:'"
    ]
    assert errors({"tagOwners": {"tag:a_b": []}}) == [
        'tagOwners["tag:a_b"]: tag names can only contain numbers, letters, or dashes'
    ]
    assert errors({"tagOwners": {"server": []}}) == ["tagOwners[\"server\"]: tags must start with 'tag:'"]
    assert errors({"tagOwners": {"tag:": []}}) == ['tagOwners["tag:"]: tag names must not be empty']
    assert errors({"tagOwners": {"tag:a": ["tag:b"]}}) == ['tagOwners["tag:a"]: tag not found: "tag:b"']
    assert errors({"tagOwners": {"tag:a": ["tag:a", "autogroup:admin", "group:x@example.com"]}}) == []


def test_tag_position_is_the_key() -> None:
    [p] = run('{"tagOwners": {\n  "tag:1x": []}}')
    assert (p.line, p.column) == (2, 3)


def test_nested_groups() -> None:
    cycle = errors({"groups": {"group:a": ["group:b"], "group:b": ["group:a"]}})
    assert 'groups["group:b"]: "group:a": group members cannot be recursive' in cycle
    deep = errors({"groups": {"group:a": ["group:b"], "group:b": ["group:c"], "group:c": ["x@example.com"]}})
    assert deep == ['groups["group:b"]: "group:c": group members cannot be recursive']
    assert errors({"groups": {"group:a": ["tag:x"]}}) == ['groups["group:a"]: "tag:x": group members must be users']
    assert errors({"groups": {"admins": []}}) == ['groups["admins"]: group names must start with "group:"']


def test_hosts() -> None:
    assert errors({"hosts": {"derp": "10.0"}}) == ['hosts["derp"]: "10.0": invalid address']
    assert errors({"hosts": {"a@b": "10.0.0.1"}}) == [
        "hosts[\"a@b\"]: host names cannot contain '@' or ':' and must not be empty"
    ]
    assert errors({"hosts": {"v6": "fd7a::1", "net": "10.0.0.0/8"}}) == []


def test_node_attrs() -> None:
    assert errors(policy(nodeAttrs=[{"target": ["%bogus%"], "attr": ["funnel"]}])) == ['"%bogus%": invalid address']
    assert errors(policy(nodeAttrs=[{"target": ["tag:nope"], "attr": ["funnel"]}])) == ['tag not found: "tag:nope"']
    assert errors(policy(nodeAttrs=[{"target": ["autogroup:admin"], "ipPool": ["100.100.100.0/24"]}])) == [
        "IPPool(100.100.100.0/24): network within reserved range"
    ]
    assert errors(policy(nodeAttrs=[{"target": ["*"], "ipPool": ["10.0.0.0/8"]}])) == [
        "IPPool(10.0.0.0/8): network outside 100.64.0.0/10"
    ]
    assert (
        errors(
            policy(
                nodeAttrs=[
                    {"target": ["*", "web", "10.0.0.0/8", "group:dev", "autogroup:member"], "attr": ["nextdns:abc"]},
                    {"target": [], "ipPool": ["100.80.0.0/16"]},
                    {
                        "target": ["tag:server"],
                        "app": {
                            "tailscale.com/app-connectors": [
                                {"name": "x", "connectors": ["tag:server"], "domains": ["example.com"]}
                            ]
                        },
                    },
                ]
            )
        )
        == []
    )


def test_app_connector_parameters_are_shape_checked() -> None:
    text = (
        '{"tagOwners": {"tag:c": []}, "nodeAttrs": [{"target": ["*"], "app": {"tailscale.com/app-connectors": '
        '[{"name": "x", "connectors": ["tag:c"], "domain": ["example.com"]}]}}]}'
    )
    [p] = run(text)
    assert p.message == 'json: unknown field "domain"'
    assert p.path == ("nodeAttrs", 0, "app", "tailscale.com/app-connectors", 0, "domain")
    assert p.column == text.index('"domain"') + 1


def test_auto_approvers() -> None:
    assert errors(policy(autoApprovers={"routes": {"10.0.0.0/8": ["tag:nope"]}})) == ['tag not found: "tag:nope"']
    assert errors(policy(autoApprovers={"routes": {"10.0.0": ["tag:server"]}})) == [
        'autoApprovers.routes: "10.0.0": invalid prefix'
    ]
    assert errors(policy(autoApprovers={"exitNode": ["group:nope"]})) == ['group not found: "group:nope"']
    assert (
        errors(
            policy(
                autoApprovers={
                    "routes": {"::/0": ["group:dev", "autogroup:member"]},
                    "exitNode": ["tag:server", "bob@example.com"],
                    "services": {"svc:web": ["tag:server"]},
                }
            )
        )
        == []
    )


def test_postures() -> None:
    good = {
        "posture:ok": [
            "node:os IN ['macos', 'linux']",
            "node:tsReleaseTrack == 'stable'",
            "node:tsVersion >= '1.40'",
            "node:tsAutoUpdate",
            "ip:country NOT IN ['RU']",
        ]
    }
    assert errors(policy(postures=good, defaultSrcPosture=["posture:ok"])) == []
    assert errors(policy(postures={"posture:x": ["os = mac"]})) == [
        'postures["posture:x"]: invalid condition "os = mac": expected <namespace>:<attribute> [<operator> <value>]'
    ]
    assert errors(policy(defaultSrcPosture=["posture:nope"])) == ['posture not found: "posture:nope"']
    assert errors(policy(postures={"ok": []})) == ['postures["ok"]: posture names must start with "posture:"']


def test_ipsets() -> None:
    good = {
        "ipset:a": ["10.0.0.0/8", "host:web", "10.1.1.1-10.1.1.9"],
        "ipset:b": ["add ipset:a", "remove 10.0.0.1", "add autogroup:internet"],
    }
    assert errors(policy(ipsets=good, acls=[{"action": "accept", "src": ["ipset:a"], "dst": ["ipset:b:*"]}])) == []
    assert errors(policy(ipsets={"ipset:a": ["10.0.0.0/8", "remove 10.0.0.1"]})) == [
        'ipsets["ipset:a"]: "10.0.0.0/8": the operation (add or remove) is required when the set removes anything'
    ]
    assert errors(policy(ipsets={"ipset:a": ["add tag:server"]})) == [
        'ipsets["ipset:a"]: "tag:server": invalid target (use an IP, CIDR, range, host:<name>, ipset:<name> '
        "or autogroup:internet)"
    ]
    cyc = errors(policy(ipsets={"ipset:a": ["add ipset:b"], "ipset:b": ["add ipset:a"]}))
    assert 'ipsets["ipset:a"]: ipset references form a cycle' in cyc
    assert errors(policy(acls=[{"action": "accept", "src": ["ipset:nope"], "dst": ["*:*"]}])) == [
        'src=ipset not found: "ipset:nope"'
    ]


def test_tests_shape() -> None:
    assert errors(policy(tests=[{"src": "bob@example.com", "accept": ["web:22"], "deny": ["tag:server:443"]}])) == []
    assert errors(policy(tests=[{"src": "bob@example.com"}])) == [
        'test(s) failed: a test needs "accept" or "deny" destinations'
    ]
    assert errors(policy(tests=[{"src": "", "accept": ["web:22"]}])) == ["test(s) failed: test src must be specified"]
    assert errors(policy(tests=[{"src": "bob@example.com", "accept": ["web:80-90"]}])) == [
        'test(s) failed: test accept "web:80-90": the port must be a single number'
    ]
    assert errors(policy(tests=[{"src": "bob@example.com", "deny": ["10.0.0.0/8:22"]}])) == [
        'test(s) failed: test deny "10.0.0.0/8:22": the destination must be a single host, not a wildcard or a CIDR '
        "range"
    ]
    assert errors(policy(tests=[{"src": "bob@example.com", "accept": ["tag:server", "web", "bob@example.com"]}])) == []
    assert errors(policy(tests=[{"src": "bob@example.com", "accept": ["nohost"]}])) == [
        'test(s) failed: test accept "nohost": a destination is host:port'
    ]
    assert errors(policy(tests=[{"src": "bob@example.com", "accept": ["nohost:22"]}])) == [
        'test(s) failed: test accept "nohost:22": "nohost": invalid address'
    ]


def test_ssh_tests_shape() -> None:
    ok = {"src": "bob@example.com", "dst": ["tag:server", "web"], "accept": ["root"]}
    assert errors(policy(sshTests=[ok])) == []
    assert errors(policy(sshTests=[{**ok, "dst": ["autogroup:internet"]}])) == [
        'SSH tests dst contains disallowed element "autogroup:internet"'
    ]
    assert errors(policy(sshTests=[{**ok, "dst": ["tag:server:22"]}])) == [
        'SSH tests dst contains unknown tag "tag:server:22"'
    ]
    assert errors(policy(sshTests=[{"src": "bob@example.com", "dst": ["web"]}])) == [
        'an SSH test needs "accept", "check" or "deny" users'
    ]


def test_options() -> None:
    assert errors({"OneCGNATRoute": "mac-always", "disableIPv4": False, "randomizeClientPort": True}) == []
    assert errors({"OneCGNATRoute": "always"}) == [
        'OneCGNATRoute "always" is not valid: use "", "mac-always" or "mac-never"'
    ]
    assert warnings({"disableIPv4": True}) == [
        'disableIPv4 is deprecated: give the "disable-ipv4" node attribute in nodeAttrs instead'
    ]
    assert (
        errors({"attrConfig": {"custom:x": {"type": "string", "allowSetByNode": True, "broadcastToPeers": ["*"]}}})
        == []
    )
    assert errors({"attrConfig": {"x": {"type": "list"}}}) == [
        'attrConfig["x"]: names must start with "custom:"',
        'attrConfig["x"]: type "list" is not "string", "bool" or "number"',
    ]
    assert errors({"extraDNSRecords": [{"Name": "a.example.com", "Value": "100.64.0.1"}]}) == []
    assert errors({"extraDNSRecords": [{"Name": "a", "Value": "nope"}]}) == [
        'DNS record Value "nope" is not an IP address'
    ]


# -- derpMap ----------------------------------------------------------------------------------------


def region(rid: int, **extra: Any) -> dict[str, Any]:
    node = {"Name": f"{rid}a", "RegionID": rid, "HostName": f"derp{rid}.example.com"}
    base: dict[str, Any] = {"RegionID": rid, "RegionCode": f"r{rid}", "RegionName": f"R {rid}", "Nodes": [node]}
    base.update(extra)
    return base


def test_derpmap_valid_custom_region() -> None:
    assert messages({"derpMap": {"OmitDefaultRegions": True, "Regions": {"900": region(900)}}}) == []


def test_derpmap_errors() -> None:
    bad_node = {"Name": "", "RegionID": 901, "HostName": "bad host", "IPv4": "1.2.3", "STUNPort": -2, "DERPPort": 70000}
    errs = errors({"derpMap": {"Regions": {"900": region(900, RegionID=901, Nodes=[bad_node], RegionCode="")}}})
    assert errs == [
        "RegionID 901 must equal its key 900",
        "RegionCode must not be empty",
        "Name must not be empty",
        "RegionID 901 must equal the region's ID 900",
        "HostName 'bad host' is not a valid DNS name or IP address",
        "IPv4 '1.2.3' is not an IPv4 address (or \"none\")",
        "STUNPort -2 is out of range (0..65535, 0 means 3478, -1 disables STUN)",
        "DERPPort 70000 is out of range (0..65535, 0 means 443)",
    ]
    assert errors({"derpMap": {"Regions": {"0": None}}}) == ["region ID 0 is not valid: region IDs are 1..2^53-1"]
    dup = {"900": region(900), "901": region(901, Nodes=[{"Name": "900a", "RegionID": 901, "HostName": "x.example"}])}
    assert errors({"derpMap": {"Regions": dup}}) == ["node name '900a' is also used in region 900"]


def test_derpmap_warnings() -> None:
    assert warnings({"derpMap": {"Regions": {"1": region(1)}}}) == [
        "region 1 is outside 900-999, the IDs Tailscale reserves for custom regions: it replaces Tailscale's region 1"
    ]
    assert warnings({"derpMap": {"OmitDefaultRegions": True, "Regions": {"1": None, "900": region(900)}}}) == [
        "OmitDefaultRegions already removes every default region: the null region 1 is redundant"
    ]
    assert warnings({"derpMap": {"OmitDefaultRegions": True}}) == [
        "every DERP region is removed and no custom region is defined: clients would have no DERP relay at all"
    ]
    every = {str(i): None for i in range(1, 29)}
    assert warnings({"derpMap": {"Regions": every}}) == [
        "every DERP region is removed and no custom region is defined: clients would have no DERP relay at all"
    ]
    private = region(900, Nodes=[{"Name": "a", "RegionID": 900, "HostName": "h.example", "IPv4": "10.1.2.3"}])
    assert warnings({"derpMap": {"Regions": {"900": private}}}) == [
        "IPv4 10.1.2.3 is not a public address: clients outside your network cannot reach it"
    ]


def test_derpmap_positions() -> None:
    text = (
        '{"derpMap": {"Regions": {\n  "900": {"RegionID": 900, "RegionCode": "x", "RegionName": "X",\n'
        '    "Nodes": [{"Name": "a", "RegionID": 900, "HostName": "h.example", "DERPPort": 99999}]}}}}'
    )
    [p] = run(text)
    assert p.path == ("derpMap", "Regions", "900", "Nodes", 0, "DERPPort")
    assert p.pointer == "/derpMap/Regions/900/Nodes/0/DERPPort"
    assert (p.line, p.column) == (3, 83)


# -- library pieces ---------------------------------------------------------------------------------


def test_go_durations_and_quoting() -> None:
    assert format_duration(parse_duration("1h30m")) == "1h30m0s"
    assert format_duration(parse_duration("1.5s")) == "1.5s"
    assert format_duration(parse_duration("250ms")) == "250ms"
    assert format_duration(parse_duration("0")) == "0s"
    with pytest.raises(ValueError, match='missing unit in duration "5"'):
        parse_duration("5")
    assert quote('a"b\tc\x01é') == '"a\\"b\\tc\\x01é"'


def test_valid_policy_loads_into_the_model() -> None:
    data = decode(b'{"ACLs": [{"action": "accept", "src": ["*"], "dst": ["*:*"]}]}')
    assert findings(data) == []
    from derptool.policy.shape import check_shape

    canonical, _ = check_shape(data, Policy)
    model = Policy.model_validate(canonical)
    assert model.acls is not None and model.acls[0].dst == ["*:*"]


# -- robustness -------------------------------------------------------------------------------------


_KEYS = [
    "acls",
    "grants",
    "ssh",
    "groups",
    "hosts",
    "tagOwners",
    "autoApprovers",
    "nodeAttrs",
    "postures",
    "ipsets",
    "tests",
    "sshTests",
    "derpMap",
    "Regions",
    "Nodes",
    "src",
    "dst",
    "ip",
    "app",
    "via",
    "action",
    "users",
    "checkPeriod",
    "acceptEnv",
    "target",
    "attr",
    "ipPool",
    "routes",
    "exitNode",
    "accept",
    "deny",
    "RegionID",
    "HostName",
    "Name",
    "900",
    "1",
    "x",
    "OmitDefaultRegions",
    "proto",
    "srcPosture",
]
_STRINGS = st.sampled_from(
    [
        "*",
        "*:*",
        "tag:a",
        "group:a",
        "autogroup:self",
        "autogroup:self:*",
        "10.0.0.0/8",
        "::/0",
        "tcp:0",
        "icmp:*",
        "1h",
        "-1m",
        "",
        " ",
        "host:x",
        "ipset:a",
        "add 1.2.3.4",
        "remove ipset:a",
        "tag:a:22",
        "posture:x",
        "a@b",
        "\x00",
        "сервер",
    ]
) | st.text(max_size=8)
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False) | _STRINGS,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(_KEYS) | st.text(max_size=4), inner, max_size=5)
    ),
    max_leaves=25,
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(_KEYS), _JSON, max_size=5))
def test_any_data_gives_problems_never_an_exception(data: dict[str, Any]) -> None:
    problems = validate_bytes(json.dumps(data).encode(), "f")
    for p in problems:
        assert p.line >= 1 and p.column >= 1 and p.message and p.severity in ("error", "warning")


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=60))
def test_any_bytes_give_problems_never_an_exception(src: bytes) -> None:
    for p in validate_bytes(src, "f"):
        assert p.line >= 1 and p.column >= 1


def test_examples_load_into_the_models() -> None:

    from derptool.policy.shape import check_shape

    examples = sorted(EXAMPLES.glob("*.hujson"))
    assert examples
    for path in examples:
        canonical, shape = check_shape(decode(path.read_bytes()), Policy)
        assert shape.findings == []
        model = Policy.model_validate(canonical)
        if model.derp_map is not None:
            assert model.derp_map.is_overlay


def test_positions_in_commented_hujson() -> None:
    text = """// policy
{
\t/* groups */
\t"groups": {"group:a": ["x@example.com"],},
\t"acls": [
\t\t// the rule
\t\t{"action": "accept", "src": ["group:a"], "dst": [
\t\t\t"tag:web:443", // undefined tag
\t\t]},
\t],
}
"""
    [p] = run(text)
    assert p.message == 'dst="tag:web:443": tag not found: "tag:web"'
    assert (p.line, p.column) == (8, 4)  # columns count bytes: three tabs


def test_policy_shaped_like_tailscales_default_is_valid() -> None:
    text = """{
  "groups": {"group:example": ["alice@example.com", "bob@example.com"]},
  "tagOwners": {"tag:example": ["autogroup:admin"]},
  "acls": [
    {"action": "accept", "src": ["*"], "dst": ["*:*"]},
    {"action": "accept", "src": ["group:example"], "dst": ["tag:example:*"], "srcPosture": ["posture:mac"]},
  ],
  "defaultSrcPosture": ["posture:mac"],
  "postures": {"posture:mac": ["node:os == 'macos'", "node:tsReleaseTrack == 'stable'", "node:tsAutoUpdate"]},
  "ssh": [{"action": "check", "src": ["autogroup:member"], "dst": ["autogroup:self"],
           "users": ["autogroup:nonroot", "root"]}],
  "nodeAttrs": [
    {"target": ["autogroup:member"], "attr": ["funnel"]},
    {"target": ["*"], "app": {"tailscale.com/app-connectors": []}},
  ],
  "tests": [{"src": "alice@example.com", "accept": ["tag:example"], "deny": ["100.101.102.103:443"]}],
}"""
    assert run(text) == []


def test_validate_files_library(tmp_path: Any) -> None:
    from derptool.errors import InputError
    from derptool.policy import validate_files

    good = tmp_path / "good.hujson"
    good.write_text('{"grants": [{"src": ["*"], "dst": ["*"], "ip": ["*"]}]}')
    bad = tmp_path / "bad.hujson"
    bad.write_text('{"acls": [{"action": "drop"}]}')
    problems = validate_files([good, str(bad)])
    assert [(p.file, p.severity, p.message) for p in problems if p.severity == "error"] == [
        (str(bad), "error", 'action="drop" is not supported')
    ]
    [err] = [p for p in problems if p.severity == "error"]
    assert err.to_dict() == {
        "file": str(bad),
        "line": 1,
        "column": 22,
        "severity": "error",
        "path": "/acls/0/action",
        "message": 'action="drop" is not supported',
    }
    with pytest.raises(InputError, match="no such file"):
        validate_files([tmp_path / "missing.hujson"])
