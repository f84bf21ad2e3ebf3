"""The one STUN socket: the same receive rules hold for ``latency``, ``nat`` and ``check``.

Each of the three users meets the same three faults on loopback: a stray answer with an unknown
transaction ID, an answer from another source port than the server probed, and a closed port (ICMP port
unreachable, which must fail at once, far below the timeout). Then the socket itself: strays and late
answers are dropped by ID without touching ``ipaddress``, the receive buffer is large, and no other
module of ``derptool.net`` opens a UDP socket.
"""

from __future__ import annotations

import asyncio
import re
import socket
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from derptool.derpmap import parse_derpmap
from derptool.errors import ProbeFailed, StunTimeout
from derptool.net import check, natprobe
from derptool.net.netcheck import Report, measure
from derptool.net.stunclient import RECEIVE_BUFFER, BlockingStunClient, StunAnswer, StunSocket
from tests.support.maps import by_id, derp_map, region, stun_node
from tests.support.ports import free_udp_port
from tests.support.repo import REPO
from tests.support.stun_responder import StunResponder

NET = REPO / "derptool" / "net"
linux_only = pytest.mark.skipif(
    not sys.platform.startswith("linux"),
    reason="ICMP errors are read from the socket error queue (IP_RECVERR), Linux only",
)


# -- the three users ------------------------------------------------------------------------------


def _latency(ep_host: str, port: int, timeout: float = 1.0) -> Report:
    node = stun_node("n", 1, HostName=ep_host, IPv4=ep_host, STUNPort=port, STUNOnly=True)
    return measure(parse_derpmap(derp_map(region(1, [node]))), timeout=timeout, ipv6=False)


def _nat(host: str, port: int, timeout: float = 1.0) -> Any:
    nodes = {"Name": "n", "RegionID": 1, "HostName": "n.example", "IPv4": host, "IPv6": "none", "STUNPort": port}
    dmap = parse_derpmap({"Regions": {"1": {"RegionID": 1, "RegionCode": "r1", "RegionName": "R1", "Nodes": [nodes]}}})
    return natprobe.run(dmap, timeout=timeout, families=(4,))


def _check(host: str, port: int, timeout: float = 2.0) -> check.NodeCheck:
    return check.check_node(check.NodeTarget(host=host, stun_port=port, stun_only=True), timeout=timeout)


def _stun_step(node: check.NodeCheck) -> check.Check:
    return next(c for c in node.checks if c.name == "stun")


@pytest.mark.parametrize(("fault", "why"), [("wrong-txid", "unknown transaction ID"), ("spoof", "not the server")])
def test_a_bad_answer_alone_is_ignored_by_all_three(responder: StunResponder, fault: str, why: str) -> None:
    ep = responder.add("127.0.60.1", silent=True, faults=[fault])

    report = _latency(ep.host, ep.port)
    res = by_id(report)[1]
    assert res.latency_ms is None and why in res.error
    assert not report.udp

    nat_report = _nat(ep.host, ep.port)
    assert nat_report.observations[0].mapped is None
    assert nat_report.observations[0].error == "no answer"
    assert nat_report.result.nat_type == "blocked"
    expected_note = "unknown transaction ID" if fault == "wrong-txid" else "another address than the probed server"
    assert any(expected_note in n for n in nat_report.notes)

    node = _check(ep.host, ep.port, timeout=1.0)
    step = _stun_step(node)
    assert step.status == "fail" and why in step.detail


@pytest.mark.parametrize("fault", ["wrong-txid", "spoof"])
def test_the_real_answer_after_a_bad_one_counts_for_all_three(responder: StunResponder, fault: str) -> None:
    ep = responder.add("127.0.61.1", delay_ms=30, faults=[fault])

    report = _latency(ep.host, ep.port)
    res = by_id(report)[1]
    assert res.latency_ms is not None and res.latency_ms >= ep.applied_ms[0] - 0.05  # not the bad packet's time
    assert report.notes  # the ignored packet is told, on stderr by the CLI

    nat_report = _nat(ep.host, ep.port)
    assert nat_report.observations[0].mapped is not None
    assert nat_report.result.nat_type != "blocked"

    step = _stun_step(_check(ep.host, ep.port))
    assert step.status == "pass"


@linux_only
def test_a_closed_port_fails_fast_for_all_three() -> None:
    port = free_udp_port("127.0.0.1")
    timeout = 4.0

    t0 = time.perf_counter()
    res = by_id(_latency("127.0.0.1", port, timeout=timeout))[1]
    latency_s = time.perf_counter() - t0
    assert res.latency_ms is None and "connection refused (ICMP port unreachable)" in res.error

    t0 = time.perf_counter()
    nat_report = _nat("127.0.0.1", port, timeout=timeout)
    nat_s = time.perf_counter() - t0
    assert nat_report.observations[0].error == "connection refused (ICMP port unreachable)"
    assert nat_report.result.nat_type == "blocked"

    t0 = time.perf_counter()
    step = _stun_step(_check("127.0.0.1", port, timeout=timeout))
    check_s = time.perf_counter() - t0
    assert step.status == "fail" and "connection refused (ICMP port unreachable)" in step.detail

    # "fails fast": each took a small part of the timeout (3 s STUN phase for check, 2.4 s for latency)
    for took in (latency_s, nat_s, check_s):
        assert took < timeout / 4, (latency_s, nat_s, check_s)


# -- the socket ------------------------------------------------------------------------------------


def _reply_to_requests(server: socket.socket, count: int) -> list[tuple[bytes, tuple[str, int]]]:
    got = []
    server.settimeout(2)
    for _ in range(count):
        data, peer = server.recvfrom(2048)
        got.append((data[8:20], peer))
    return got


def test_strays_and_late_answers_are_dropped_by_id_without_parsing_addresses(monkeypatch: pytest.MonkeyPatch) -> None:
    from derptool.net import stun, stunclient

    class NoParsing:
        def __getattr__(self, name: str) -> Any:
            raise AssertionError(f"the STUN socket used ipaddress.{name} while receiving")

    monkeypatch.setattr(stunclient, "ipaddress", NoParsing())  # only the socket's module is watched
    strays = 2000

    async def scenario() -> tuple[StunAnswer, StunSocket]:
        sock = StunSocket(4)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as server:
            server.bind(("127.0.0.1", 0))
            port = server.getsockname()[1]
            loop = asyncio.get_running_loop()
            # a first probe is answered late: after the caller gave up on it
            first = sock.send("127.0.0.1", port)
            sock.forget(first)
            task = loop.create_task(sock.request("127.0.0.1", port, deadline=loop.time() + 3))
            await asyncio.sleep(0.05)
            (tx1, peer), (tx2, _) = _reply_to_requests(server, 2)
            for i in range(strays):
                server.sendto(stun.binding_response(i.to_bytes(12, "big"), "127.0.0.1", 1), peer)
            server.sendto(stun.binding_response(tx1, "127.0.0.1", peer[1]), peer)  # the late one
            server.sendto(stun.binding_response(tx2, "127.0.0.1", peer[1]), peer)
            answer = await task
        sock.close()
        return answer, sock

    answer, sock = asyncio.run(scenario())
    assert answer.mapped.startswith("127.0.0.1:")
    assert sock.stats.late == 1
    assert sock.stats.stray == strays  # none lost: the receive buffer holds the burst
    assert sock.stats.answers == 1


def test_the_receive_buffer_is_large() -> None:
    async def size() -> int:
        sock = StunSocket(4)
        try:
            return int(sock.sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF))
        finally:
            sock.close()

    got = asyncio.run(size())
    rmem_max = RECEIVE_BUFFER
    path = Path("/proc/sys/net/core/rmem_max")
    if path.exists():
        rmem_max = int(path.read_text())
    import os

    wanted = RECEIVE_BUFFER if os.geteuid() == 0 else min(RECEIVE_BUFFER, rmem_max)
    assert got >= wanted


def test_blocking_client_gives_one_result_per_destination(responder: StunResponder) -> None:
    good = responder.add("127.0.62.1", delay_ms=5)
    silent = responder.add("127.0.62.2", silent=True)
    with BlockingStunClient() as client:
        port = client.socket(4).local_port
        results = client.query([(good.host, good.port), (silent.host, silent.port)], timeout=0.6, retransmit=0.2)
        assert client.socket(4).local_port == port  # one socket for the family
    ok, missing = results
    assert isinstance(ok, StunAnswer) and ok.response.port == port
    assert isinstance(missing, StunTimeout) and isinstance(missing, ProbeFailed)
    assert silent.requests >= 3  # retransmitted, each with a fresh transaction ID


def test_net_has_one_udp_socket_class() -> None:
    offenders = []
    for path in NET.rglob("*.py"):
        if path.name == "stunclient.py" and path.parent == NET:
            continue
        if path.name == "portmap.py" and path.parent == NET:
            continue  # UPnP/NAT-PMP/PCP to the LAN gateway: not STUN, its own socket (as Go's portmapper)
        text = path.read_text()
        if re.search(r"SOCK_DGRAM|recvfrom\(|recvmsg\(|MSG_ERRQUEUE|select\.select", text):
            offenders.append(str(path.relative_to(NET)))
    assert offenders == []
    users = {
        "netcheck/engine.py": "StunSocket",
        "natprobe.py": "BlockingStunClient",
        "check/stun.py": "BlockingStunClient",
    }
    for rel, name in users.items():
        assert re.search(rf"from derptool\.net\.stunclient import .*\b{name}\b", (NET / rel).read_text()), rel
    assert len(re.findall(r"^class \w*Socket\b", (NET / "stunclient.py").read_text(), re.M)) == 1


def test_the_cli_prints_ignored_packets_on_stderr_and_keeps_stdout_clean(
    responder: StunResponder, tmp_path: Path
) -> None:
    import json

    from typer.testing import CliRunner

    from derptool.cli import app

    ep = responder.add("127.0.63.1", delay_ms=20, faults=["spoof"])
    node = stun_node("n", 900, ep, STUNOnly=True)
    path = tmp_path / "map.json"
    path.write_text(json.dumps(derp_map(region(900, [node]))))
    runner = CliRunner()
    for args in (
        ["latency", "--map", str(path), "--format", "json", "--timeout", "1s", "--no-ipv6"],
        ["nat", "--map", str(path), "--format", "json", "--timeout", "1"],
        ["check", "127.0.63.1", "--stun-port", str(ep.port), "--format", "json"],
    ):
        res = runner.invoke(app, args)
        assert "ignored STUN packets: 1 from another address than the probed server" in res.stderr, args
        json.loads(res.stdout)  # stdout is the JSON document alone
