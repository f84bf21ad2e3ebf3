"""Grant ``ip`` entries read as Tailscale reads them (``tailcfg.ParseProtoPortRanges``).

One parser, :func:`derptool.policy.selectors.parse_proto_port_range`, serves validation, the policy engine and
``grants --ip``. The table below holds what Tailscale v1.102.5's parser answers for each form (its messages are
what the control plane says, e.g. ``port range "icmp": invalid first integer`` in the captured verdicts); where
the Go peer ``protoports`` is built (``.ci/build-go-peers``) the table and a batch of generated entries are
also checked against it, in one process.
"""

from __future__ import annotations

import json
import random
import subprocess
from typing import Any

import pytest

from derptool.edit.grants import plan_egress
from derptool.errors import UsageError
from derptool.policy import validate_bytes
from derptool.policy.engine.ports import IPSpec, parse_grant_ip
from derptool.policy.selectors import ProtoPortRange, parse_proto_port_range
from tests.support.prereq import go_peer, missing_go_peer, needs

ANY = (0, 65535)
ACCEPTED: list[tuple[str, tuple[int, int, int]]] = [
    ("*", (0, *ANY)),
    ("*:8096", (0, 8096, 8096)),  # the reported case: any protocol, one port
    ("*:*", (0, *ANY)),
    ("*:1000-2000", (0, 1000, 2000)),
    ("22", (0, 22, 22)),
    ("47", (0, 47, 47)),  # a port (any protocol), not protocol 47: captured verdict grant-k22
    ("80-443", (0, 80, 443)),
    ("443-443", (0, 443, 443)),
    ("65535", (0, 65535, 65535)),
    ("080", (0, 80, 80)),  # leading zeros: Go's ParseUint takes them
    ("tcp:443", (6, 443, 443)),
    ("TCP:443", (6, 443, 443)),  # read in lower case
    ("Udp:*", (17, *ANY)),
    ("udp:53", (17, 53, 53)),
    ("sctp:9", (132, 9, 9)),
    ("icmp:*", (1, *ANY)),
    ("icmpv4:*", (1, *ANY)),
    ("icmpv6:*", (58, *ANY)),
    ("ipv6-icmp:*", (58, *ANY)),
    ("ip-in-ip:*", (4, *ANY)),
    ("ipv4:*", (4, *ANY)),
    ("gre:*", (47, *ANY)),
    ("esp:*", (50, *ANY)),
    ("ah:*", (51, *ANY)),
    ("igmp:*", (2, *ANY)),
    ("egp:*", (8, *ANY)),
    ("igp:*", (9, *ANY)),
    ("dccp:5000", (33, 5000, 5000)),
    ("tsmp:*", (99, *ANY)),
    ("6:22", (6, 22, 22)),  # protocol by number
    ("47:*", (47, *ANY)),
    ("0:*", (0, *ANY)),  # protocol 0 is "any", as "*"
    ("255:*", (255, *ANY)),
    ("006:22", (6, 22, 22)),
    ("icmp:80", (1, 80, 80)),  # Tailscale takes ports on any protocol (validate warns)
]
REJECTED: list[tuple[str, str]] = [
    ("", "empty string"),
    ("icmp", 'port range "icmp": invalid first integer'),  # captured verdict grant-j7
    ("tcp:0", "port range \"0\": first port must be >0, or use '*' for wildcard"),  # verdict grant-k23
    ("0", "port range \"0\": first port must be >0, or use '*' for wildcard"),
    ("0-10", "port range \"0-10\": first port must be >0, or use '*' for wildcard"),
    ("tcp:65536", 'port range "65536": invalid first integer'),
    ("tcp:1-65536", 'port range "1-65536": invalid last integer'),
    ("tcp:90-80", 'port range "90-80": first port must be >= last port'),
    ("tcp:1-2-3", 'port range "1-2-3": too many dashes(-)'),
    ("tcp:-80", 'port range "-80": invalid first integer'),
    ("tcp:80-", 'port range "80-": invalid last integer'),
    ("tcp:", 'invalid port list: ""'),
    (":80", "empty protocol"),
    ("80,443", 'port range "80,443": invalid first integer'),  # no port lists in grants
    ("tcp:80,443", 'port range "80,443": invalid first integer'),
    ("tcp,udp:80", 'host cannot contain a comma (",")'),
    ("http:80", 'proto name "http" not known; use protocol number 0-255'),
    ("FC:*", 'proto name "fc" not known; use protocol number 0-255'),  # not a name Tailscale's parser knows
    ("256:*", 'proto name "256" not known; use protocol number 0-255'),
    ("-1:*", 'proto name "-1" not known; use protocol number 0-255'),
    ("tcp:80:90", 'proto name "tcp:80" not known; use protocol number 0-255'),  # split at the last colon
    ("tcp:ssh", 'port range "ssh": invalid first integer'),
    ("TCP:8O", 'port range "8o": invalid first integer'),  # messages show the lower-cased entry
    ("tcp:+80", 'port range "+80": invalid first integer'),
    ("tcp:٨٠", 'port range "٨٠": invalid first integer'),  # only ASCII digits
    ("²:*", 'proto name "²" not known; use protocol number 0-255'),
]


@pytest.mark.parametrize(("entry", "expected"), ACCEPTED, ids=[e for e, _ in ACCEPTED])
def test_accepted_forms(entry: str, expected: tuple[int, int, int]) -> None:
    """Every form Tailscale's parser takes, with the protocol and ports it reads."""
    assert parse_proto_port_range(entry) == ProtoPortRange(*expected)


@pytest.mark.parametrize(("entry", "message"), REJECTED, ids=[e or "empty" for e, _ in REJECTED])
def test_rejected_forms_and_messages(entry: str, message: str) -> None:
    """Every form Tailscale's parser refuses, with its message."""
    assert parse_proto_port_range(entry) == message


def _policy(*ips: str) -> bytes:
    return json.dumps({"grants": [{"src": ["*"], "dst": ["*"], "ip": list(ips)}]}).encode()


def test_validate_accepts_any_protocol_with_a_port() -> None:
    """The live GitOps policy's ``"ip": ["*:8096"]`` is valid (it was "proto "*" is not known")."""
    assert [p.message for p in validate_bytes(_policy("*:8096", "0:*", "47:*", "Udp:53"), "p")] == []


def test_validate_reports_tailscales_message_and_a_hint_for_port_lists() -> None:
    """Rejected entries get Tailscale's message; a comma list also says how to write it."""
    problems = validate_bytes(_policy("tcp:90-80", "80,443", "http:80"), "p")
    assert [(p.severity, p.path[-1], p.message) for p in problems] == [
        ("error", 0, 'port range "90-80": first port must be >= last port'),
        ("error", 1, 'port range "80,443": invalid first integer (list each port as its own entry)'),
        ("error", 2, 'proto name "http" not known; use protocol number 0-255'),
    ]


def test_ports_on_a_protocol_without_ports_is_a_warning() -> None:
    """Tailscale's parser takes ``icmp:80`` (headscale refuses it): a warning, not an error."""
    problems = validate_bytes(_policy("icmp:80", "gre:*", "6:22"), "p")
    assert [(p.severity, p.path[-1]) for p in problems] == [("warning", 0)]
    assert '"icmp:*"' in problems[0].message


def test_engine_reads_grant_ip_with_the_same_parser() -> None:
    """The engine compiled ``*:8096`` to nothing (the rule was dropped); now any protocol, port 8096."""
    assert parse_grant_ip("*:8096") == IPSpec(None, [(8096, 8096)])
    assert parse_grant_ip("0:22") == IPSpec(None, [(22, 22)])
    assert parse_grant_ip("TCP:80-90") == IPSpec([6], [(80, 90)])
    assert parse_grant_ip("47") == IPSpec(None, [(47, 47)])
    for entry, _ in REJECTED:
        assert parse_grant_ip(entry) is None


def test_grants_command_ip_option_uses_the_same_parser() -> None:
    """``grants --ip '*:8096'`` is taken; a bad entry names Tailscale's reason and the forms."""
    assert plan_egress(["autogroup:member"], ["tag:exit"], ip=["*:8096"]).grant["ip"] == ["*:8096"]
    with pytest.raises(UsageError, match=r'--ip tcp:90-80: port range "90-80": first port must be >= last port \('):
        plan_egress(["autogroup:member"], ["tag:exit"], ip=["tcp:90-80"])


# -- against Tailscale's own parser (the Go peer) --------------------------------------------------------


def _peer() -> str | None:
    return go_peer("protoports")


def _generated(count: int, seed: int = 17) -> list[str]:
    """Entries built from the pieces the grammar is made of, valid and not."""
    rnd = random.Random(seed)
    protos = [
        "",
        "*",
        "tcp",
        "TCP",
        "udp",
        "icmp",
        "Icmpv6",
        "0",
        "6",
        "06",
        "255",
        "256",
        "-1",
        "x",
        "a,b",
        "ipv6-icmp",
        "ip-in-ip",
        "fc",
        " tcp",
        "tcp:80",
        "٣",
        "tsmp",
        "dccp",
    ]
    ports = [
        "",
        "*",
        "0",
        "1",
        "22",
        "080",
        "65535",
        "65536",
        "1-2",
        "2-1",
        "0-5",
        "5-",
        "-5",
        "1-2-3",
        "80,443",
        "ssh",
        " 22",
        "+1",
        "1-*",
        "*-1",
        "99999999999999999999",
        "١",
    ]
    out = []
    for _ in range(count):
        p, q = rnd.choice(protos), rnd.choice(ports)
        out.append(q if rnd.random() < 0.3 else f"{p}:{q}")
    return out


def _go_answers(peer: str, entries: list[str]) -> list[Any]:
    done = subprocess.run([peer], input=json.dumps(entries), capture_output=True, text=True, timeout=60, check=True)
    answers: list[Any] = json.loads(done.stdout)
    return answers


def _ours(entry: str) -> dict[str, Any]:
    got = parse_proto_port_range(entry)
    if isinstance(got, str):
        return {"error": got}
    return {"proto": got.proto, "first": got.first, "last": got.last}


@needs(missing_go_peer("protoports"))
def test_same_answers_as_tailscales_parser() -> None:
    """The table and 2 000 generated entries give what tailcfg.ParseProtoPortRanges gives."""
    peer = _peer()
    assert peer is not None
    entries = [e for e, _ in ACCEPTED] + [e for e, _ in REJECTED] + _generated(2000)
    answers = _go_answers(peer, entries)
    assert len(answers) == len(entries)
    differ = [(e, go, _ours(e)) for e, go in zip(entries, answers, strict=True) if go != _ours(e)]
    assert differ == []
