"""Running the probe plan against real servers on loopback: our delaying responder, coturn and TLS servers.

Every map here is built by the test with loopback addresses; nothing leaves 127.0.0.0/8 and ::1.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from derptool.derpmap import DERPMap, parse_derpmap
from derptool.net.netcheck import Report, measure
from tests.support.http_servers import TLSServer, server_context
from tests.support.maps import by_id, derp_map, region, stun_node
from tests.support.ports import free_udp_port
from tests.support.prereq import missing_command, need
from tests.support.stun_responder import StunResponder


def run_map(data: dict[str, Any], **kw: Any) -> Report:
    dmap: DERPMap = parse_derpmap(data)
    return measure(dmap, map_source="test map", **kw)


# -- latency and ranking against known delays -----------------------------------------------------


def test_latency_matches_applied_delays_and_ranking(responder: StunResponder) -> None:
    delays = {901: 60.0, 902: 5.0, 903: 120.0, 904: 30.0, 905: 90.0}
    eps = {
        rid: [responder.add(f"127.0.{rid - 890}.{j + 1}", delay_ms=d) for j in range(3)] for rid, d in delays.items()
    }
    regions = [region(rid, [stun_node(f"n{rid}-{j}", rid, ep) for j, ep in enumerate(eps[rid])]) for rid in delays]
    report = run_map(derp_map(*regions))
    got = by_id(report)
    assert [r.id for r in report.regions] == sorted(delays, key=delays.__getitem__)
    assert report.preferred_region == 902
    assert report.udp and report.ipv4 and not report.ipv6
    for rid in delays:
        res = got[rid]
        assert res.method == "stun" and res.error is None
        # the answer the client used is the first answer of the node it names
        ep = eps[rid][int(res.node.rsplit("-", 1)[1])]
        applied = ep.applied_ms[0]
        assert applied >= delays[rid]
        assert applied - 0.05 <= res.latency_ms < applied + 10
        assert res.v4_latency_ms == res.latency_ms and res.v6_latency_ms is None
    # one socket for every probe: all servers saw the same address, so the mapping does not vary
    assert report.mapping_varies_by_dest_ip is False
    assert report.global_v4 is not None and report.global_v4.startswith("127.0.0.1:")


def test_fastest_region_first_answer_cancels_later_probes(responder: StunResponder) -> None:
    eps = [responder.add(f"127.0.20.{j + 1}", delay_ms=10) for j in range(3)]
    report = run_map(derp_map(region(910, [stun_node(f"n{j}", 910, ep) for j, ep in enumerate(eps)])))
    assert by_id(report)[910].node == "n0"
    # probes 1 and 2 were due at 100 and 200 ms, after the answer: never sent
    assert [ep.requests for ep in eps] == [1, 0, 0]


def test_region_score_and_avoid(responder: StunResponder) -> None:
    fast = responder.add("127.0.21.1", delay_ms=5)
    mid = responder.add("127.0.21.2", delay_ms=40)
    slow = responder.add("127.0.21.3", delay_ms=80)
    data = derp_map(
        region(1, [stun_node("fast", 1, fast)], Avoid=True),
        region(2, [stun_node("mid", 2, mid)]),
        region(3, [stun_node("slow", 3, slow)]),
        HomeParams={"RegionScore": {"3": 0.25}},
    )
    report = run_map(data)
    assert [r.id for r in report.regions] == [1, 2, 3]  # sorted by measured latency
    assert by_id(report)[1].latency_ms is not None  # Avoid: measured...
    assert report.preferred_region == 3  # ...never preferred; 80 ms x 0.25 beats 40 ms


def test_ipv6_loopback(responder: StunResponder) -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6")
    ep6 = responder.add("::1", delay_ms=15)
    ep4 = responder.add("127.0.22.1", delay_ms=40)
    report = run_map(derp_map(region(920, [stun_node("v4", 920, ep4), stun_node("v6", 920, ep6)])))
    res = by_id(report)[920]
    assert report.ipv4 and report.ipv6
    assert res.v6_latency_ms is not None and res.v4_latency_ms is not None
    assert res.v6_latency_ms < res.v4_latency_ms
    assert res.latency_ms == res.v6_latency_ms and res.node == "v6"
    assert report.global_v6 is not None and report.global_v6.startswith("[::1]:")


def test_mapping_varies_by_dest_ip(responder: StunResponder) -> None:
    a = responder.add("127.0.23.1", mapped=("198.51.100.1", 1000))
    b = responder.add("127.0.23.2", mapped=("198.51.100.1", 2000))
    report = run_map(derp_map(region(1, [stun_node("a", 1, a)]), region(2, [stun_node("b", 2, b)])))
    assert report.mapping_varies_by_dest_ip is True
    assert report.global_v4 in ("198.51.100.1:1000", "198.51.100.1:2000")


def test_host_name_resolved(responder: StunResponder) -> None:
    ep = responder.add("127.0.0.1", delay_ms=5)
    # "localhost" resolves from /etc/hosts; IPv6 stays off so no DNS query is made for AAAA
    report = run_map(derp_map(region(1, [stun_node("n", 1, ep, HostName="localhost", IPv4="")])))
    assert by_id(report)[1].method == "stun"


# -- faults -----------------------------------------------------------------------------------------


def test_closed_port_fails_fast_not_at_timeout(responder: StunResponder) -> None:
    ok = responder.add("127.0.30.1", delay_ms=5)
    port = free_udp_port("127.0.30.2")
    closed = {
        "Name": "closed",
        "RegionID": 2,
        "HostName": "127.0.30.2",
        "IPv6": "none",
        "STUNPort": port,
        "DERPPort": 9,
    }
    timeout = 4.0
    t0 = time.perf_counter()
    report = run_map(derp_map(region(1, [stun_node("ok", 1, ok)]), region(2, [closed])), timeout=timeout)
    elapsed = time.perf_counter() - t0
    res = by_id(report)[2]
    assert res.latency_ms is None
    assert "connection refused (ICMP port unreachable)" in res.error
    assert "HTTPS: connection refused" in res.error
    assert elapsed < timeout / 4
    assert by_id(report)[1].latency_ms is not None  # the bad region spoils nothing


def test_silent_address_times_out(responder: StunResponder) -> None:
    silent = responder.add("127.0.31.1", silent=True)
    ok = responder.add("127.0.31.2", delay_ms=5)
    timeout = 1.0
    t0 = time.perf_counter()
    report = run_map(
        derp_map(region(1, [stun_node("s", 1, silent)]), region(2, [stun_node("ok", 2, ok)])), timeout=timeout
    )
    elapsed = time.perf_counter() - t0
    res = by_id(report)[1]
    assert res.latency_ms is None and "no answer in the 0.6 s STUN phase" in res.error
    assert silent.requests == 3  # all three probes went out
    assert elapsed >= 0.6 * timeout * 0.9  # waited for the STUN phase...
    assert elapsed < timeout * 1.5  # ...and stopped at the overall timeout
    assert by_id(report)[2].latency_ms is not None


@pytest.mark.parametrize("fault", ["wrong-txid", "spoof", "garbage", "truncated"])
def test_bad_answers_before_the_real_one_are_ignored(responder: StunResponder, fault: str) -> None:
    ep = responder.add("127.0.32.1", delay_ms=40, faults=[fault])
    report = run_map(derp_map(region(1, [stun_node("n", 1, ep)])))
    res = by_id(report)[1]
    assert res.latency_ms is not None
    assert res.latency_ms >= ep.applied_ms[0] - 0.05  # not the early bad packet's time
    if fault == "spoof":
        assert report.global_v4 is not None


@pytest.mark.parametrize(
    ("fault", "why"),
    [
        ("garbage", "unknown transaction ID"),
        ("truncated", "invalid answer"),
        ("spoof", "not the server"),
        ("wrong-txid", "unknown transaction ID"),
    ],
)
def test_bad_answers_alone_are_no_answer(responder: StunResponder, fault: str, why: str) -> None:
    ep = responder.add("127.0.33.1", silent=True, faults=[fault])
    report = run_map(derp_map(region(1, [stun_node("n", 1, ep)])), timeout=1.0)
    res = by_id(report)[1]
    assert res.latency_ms is None
    assert why in res.error
    assert not report.udp


def test_unresolvable_host_name_is_that_nodes_error(responder: StunResponder) -> None:
    ok = responder.add("127.0.34.1", delay_ms=5)
    bad = stun_node("bad", 1, HostName="derp.invalid", STUNPort=3478)
    report = run_map(derp_map(region(1, [bad, stun_node("ok", 1, ok)]), region(2, [stun_node("x", 2, ok)])))
    assert by_id(report)[1].latency_ms is not None  # node "ok" (probe 1) answered
    assert by_id(report)[1].node == "ok"
    assert any(p.error and "cannot resolve derp.invalid" in p.error for p in report.probes)
    report = run_map(derp_map(region(1, [bad])))
    assert "cannot resolve derp.invalid" in by_id(report)[1].error


def test_every_node_stun_disabled_and_no_derp() -> None:
    n = stun_node("off", 1, HostName="127.0.35.1", IPv4="127.0.35.1", STUNPort=-1)
    report = run_map(derp_map(region(1, [n])), timeout=1.0)
    res = by_id(report)[1]
    assert res.latency_ms is None
    assert "STUN is disabled on every node" in res.error and "HTTPS: connection refused" in res.error
    assert report.preferred_region is None


def test_no_measure_no_home_is_reported_unmeasured(responder: StunResponder) -> None:
    ep = responder.add("127.0.36.1")
    report = run_map(derp_map(region(1, [stun_node("n", 1, ep)], NoMeasureNoHome=True)))
    assert ep.requests == 0
    assert by_id(report)[1].error == "not measured: NoMeasureNoHome"


# -- HTTPS --------------------------------------------------------------------------------------------


def _https_node(name: str, rid: int, port: int, **kw: Any) -> dict[str, Any]:
    return {
        "Name": name,
        "RegionID": rid,
        "HostName": "127.0.0.1",
        "IPv4": "127.0.0.1",
        "IPv6": "none",
        "STUNPort": -1,
        "DERPPort": port,
        **kw,
    }


def test_https_fallback_times_established_connection(ca: Any, tmp_path: Path) -> None:
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    handshake, answer = 0.3, 0.03
    with TLSServer(server_context(ca, "127.0.0.1"), delay=answer, handshake_delay=handshake) as srv:
        report = run_map(derp_map(region(1, [_https_node("h", 1, srv.port)])), ca_file=str(ca_file))
    res = by_id(report)[1]
    assert res.method == "https" and res.node == "h", res.error
    assert srv.paths == ["/derp/latency-check"]
    # timed on the open connection: the answer delay counts, the slow handshake does not
    assert answer * 1000 <= res.latency_ms < handshake * 1000
    assert not report.udp


def test_https_verification_fails_without_the_ca(ca: Any) -> None:
    with TLSServer(server_context(ca, "127.0.0.1")) as srv:
        report = run_map(derp_map(region(1, [_https_node("h", 1, srv.port)])))
    assert "TLS verification failed" in by_id(report)[1].error


def test_https_insecure_for_tests_skips_verification(ca: Any) -> None:
    with TLSServer(server_context(ca, "wrong.example.test")) as srv:
        report = run_map(derp_map(region(1, [_https_node("h", 1, srv.port, InsecureForTests=True)])))
    assert by_id(report)[1].method == "https"


def test_https_cert_name_is_the_expected_name(ca: Any, tmp_path: Path) -> None:
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    with TLSServer(server_context(ca, "derp.example.test")) as srv:
        plain = run_map(derp_map(region(1, [_https_node("h", 1, srv.port)])), ca_file=str(ca_file))
        named = run_map(
            derp_map(region(1, [_https_node("h", 1, srv.port, CertName="derp.example.test")])), ca_file=str(ca_file)
        )
    assert "TLS verification failed" in by_id(plain)[1].error  # HostName 127.0.0.1 is not on the cert
    assert by_id(named)[1].method == "https"


def test_https_error_status_is_a_failure(ca: Any) -> None:
    with TLSServer(server_context(ca, "x"), status=503) as srv:
        report = run_map(derp_map(region(1, [_https_node("h", 1, srv.port, InsecureForTests=True)])))
    assert "HTTP status 503" in by_id(report)[1].error


def test_https_flag_measures_every_region(ca: Any, responder: StunResponder) -> None:
    ep = responder.add("127.0.37.1", delay_ms=5)
    with TLSServer(server_context(ca, "x"), delay=0.02) as srv:
        node = stun_node(
            "n",
            1,
            ep,
            HostName="127.0.0.1",
            IPv4="127.0.0.1",
            STUNTestIP=ep.host,
            DERPPort=srv.port,
            InsecureForTests=True,
        )
        data = derp_map(region(1, [node]))
        plain = run_map(data)
        both = run_map(data, https=True)
    assert by_id(plain)[1].method == "stun"
    res = by_id(both)[1]
    assert res.method == "https" and res.latency_ms >= 20
    assert res.v4_latency_ms is not None and res.v4_latency_ms < 20  # STUN still ran
    assert len(srv.paths) == 1


# -- interop with coturn ------------------------------------------------------------------------------


def test_coturn_region(tmp_path: Path, responder: StunResponder) -> None:
    need(missing_command("turnserver"))
    exe = shutil.which("turnserver")
    assert exe is not None
    port = free_udp_port()
    proc = subprocess.Popen(
        [
            exe,
            "-n",
            "--listening-ip",
            "127.0.0.1",
            "--listening-port",
            str(port),
            "--no-tls",
            "--no-dtls",
            "--no-tcp",
            "--stun-only",
            "--no-cli",
            "--pidfile",
            str(tmp_path / "pid"),
            "--db",
            str(tmp_path / "db"),
            "--log-file",
            str(tmp_path / "log"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=tmp_path,
    )
    try:
        node = {
            "Name": "coturn",
            "RegionID": 1,
            "HostName": "127.0.0.1",
            "IPv6": "none",
            "STUNPort": port,
            "DERPPort": 9,
        }
        slow = responder.add("127.0.38.1", delay_ms=150)
        data = derp_map(region(1, [node]), region(2, [stun_node("slow", 2, slow)]))
        deadline = time.monotonic() + 10
        while True:
            report = run_map(data, timeout=1.0)
            if by_id(report)[1].latency_ms is not None or time.monotonic() > deadline or proc.poll() is not None:
                break
            time.sleep(0.1)
    finally:
        proc.terminate()
        proc.wait(10)
    res = by_id(report)[1]
    assert res.method == "stun", res.error
    assert report.preferred_region == 1
    # coturn and our responder saw the same socket
    assert report.mapping_varies_by_dest_ip is False


def test_https_that_never_answers_stops_at_the_overall_timeout() -> None:
    with socket.socket() as listener:  # accepts TCP (backlog) but never speaks TLS
        listener.bind(("127.0.0.1", 0))
        listener.listen(4)
        node = _https_node("h", 1, listener.getsockname()[1], InsecureForTests=True)
        timeout = 1.0
        t0 = time.perf_counter()
        report = run_map(derp_map(region(1, [node])), timeout=timeout)
        elapsed = time.perf_counter() - t0
    assert "HTTPS: no answer before the 1.0 s deadline" in by_id(report)[1].error
    assert timeout * 0.9 <= elapsed < timeout * 1.5


def test_stun_only_region_has_no_https_fallback() -> None:
    port = free_udp_port("127.0.39.1")
    node = {"Name": "s", "RegionID": 1, "HostName": "127.0.39.1", "IPv6": "none", "STUNPort": port, "STUNOnly": True}
    report = run_map(derp_map(region(1, [node])), timeout=1.0)
    res = by_id(report)[1]
    assert "connection refused" in res.error and "no HTTPS fallback: every node is STUN-only" in res.error
    assert "HTTPS:" not in res.error


def test_auto_families_skip_what_the_machine_cannot_use(
    monkeypatch: pytest.MonkeyPatch, responder: StunResponder
) -> None:
    import ipaddress

    from derptool.net.stunclient import StunSocket

    monkeypatch.setattr("derptool.net.netcheck.engine.usable_families", lambda: set())
    real_send = StunSocket.send

    def guarded(self: StunSocket, ip: str, port: int) -> Any:
        assert ipaddress.ip_address(ip).is_loopback, "a probe would have left loopback"
        return real_send(self, ip, port)

    monkeypatch.setattr(StunSocket, "send", guarded)
    ep = responder.add("127.0.43.1", delay_ms=1)
    far = {"Name": "far", "RegionID": 2, "HostName": "198.51.100.1", "IPv6": "none", "STUNOnly": True}
    report = run_map(derp_map(region(1, [stun_node("lo", 1, ep)]), region(2, [far])), ipv4=None, ipv6=None)
    assert by_id(report)[1].latency_ms is not None  # loopback is always probed
    res = by_id(report)[2]
    assert res.error is not None and "no STUN probe sent: this machine has no usable IPv4/IPv6" in res.error
    assert res.probe_errors == 0
