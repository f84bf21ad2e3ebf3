"""Reports in a row (``latency --every``): incremental plans, the home region's history, captive portal, bind.

Library (:class:`derptool.net.netcheck.client.Netcheck`) and CLI, against the delay responder on loopback;
the captive-portal checks against a loopback HTTP server that answers as derper or as a portal.
"""

from __future__ import annotations

import json
import socket
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from derptool.cli import app
from derptool.derpmap import parse_derpmap
from derptool.errors import InputError
from derptool.net.netcheck import measure
from derptool.net.netcheck.client import FULL_REPORT_INTERVAL, Netcheck
from tests.support.http_servers import CaptiveServer
from tests.support.maps import derp_map, region, stun_node
from tests.support.ports import free_udp_port
from tests.support.stun_responder import Endpoint, StunResponder

runner = CliRunner()
DELAYS = {901: 5.0, 902: 15.0, 903: 30.0, 904: 45.0, 905: 60.0, 906: 80.0}


def _six(responder: StunResponder) -> tuple[dict[str, Any], dict[int, Endpoint]]:
    eps = {rid: responder.add(f"127.0.71.{rid - 900}", delay_ms=ms) for rid, ms in DELAYS.items()}
    return derp_map(*(region(rid, [stun_node(f"{rid}a", rid, ep)]) for rid, ep in eps.items())), eps


def test_rounds_after_the_first_are_incremental_and_carry_the_rest(responder: StunResponder) -> None:
    data, eps = _six(responder)
    now = [1000.0]
    client = Netcheck(parse_derpmap(data), ipv4=True, ipv6=False, timeout=2.0, clock=lambda: now[0])
    first = client.measure()
    assert not first.incremental and first.preferred_region == 901
    assert all(r.probed and r.latency_ms is not None for r in first.regions)
    before = {rid: ep.requests for rid, ep in eps.items()}
    now[0] += 30
    second = client.measure()
    assert second.incremental and second.to_data()["plan"] == "incremental"
    sent = {rid: ep.requests - before[rid] for rid, ep in eps.items()}
    # the three fastest (the home region among them) are probed; the others get no packet at all
    assert {rid for rid, n in sent.items() if n} == {901, 902, 903}
    assert [r.id for r in second.regions] == [901, 902, 903, 904, 905, 906]  # sorted, carried ones included
    carried = {r.id: r for r in second.regions if not r.probed}
    assert set(carried) == {904, 905, 906}
    for rid, r in carried.items():
        old = next(o for o in first.regions if o.id == rid)
        assert r.latency_ms == old.latency_ms and r.measured_at == first.started
    assert [r["probed"] for r in second.to_data()["regions"]] == [True] * 3 + [False] * 3
    now[0] += FULL_REPORT_INTERVAL + 1  # a full report at least every 5 minutes, as netcheck
    assert not client.measure().incremental


def test_home_keeps_its_five_minute_history_across_rounds(responder: StunResponder) -> None:
    a = responder.add("127.0.72.1", delay_ms=10)
    b = responder.add("127.0.72.2", delay_ms=50)
    dmap = parse_derpmap(derp_map(region(901, [stun_node("901a", 901, a)]), region(902, [stun_node("902a", 902, b)])))
    now = [0.0]
    client = Netcheck(dmap, ipv4=True, ipv6=False, timeout=2.0, clock=lambda: now[0])
    assert client.measure().preferred_region == 901
    a.delay_ms, b.delay_ms = 60, 30
    now[0] += 60
    report = client.measure()
    got = {r.id: r.latency_ms for r in report.regions}
    assert got[902] is not None and got[901] is not None and got[902] < got[901] - 20
    # 901's 10 ms of a minute ago is still in the history: it stays home
    assert report.preferred_region == 901
    # one report alone (no history) would move home to 902: 30 ms beats 60 ms by more than 10 ms and a third
    assert measure(dmap, ipv4=True, ipv6=False, timeout=2.0, previous_preferred=901).preferred_region == 902
    now[0] += 400  # the 10 ms is older than 5 minutes now
    assert client.measure().preferred_region == 902


def _captive_map(stun: Endpoint, server: CaptiveServer) -> Any:
    node = stun_node("901a", 901, stun, CanPort80=True, IPv4="127.0.0.1", HostName="127.0.0.1", STUNTestIP=stun.host)
    return parse_derpmap(derp_map(region(901, [node])))


@pytest.mark.parametrize(("mode", "found"), [("derper", False), ("portal", True)])
def test_captive_portal_checked_when_stun_is_slow(responder: StunResponder, mode: str, found: bool) -> None:
    server = CaptiveServer()
    server.mode = mode
    try:
        silent = responder.add("127.0.73.1", silent=True)
        client = Netcheck(_captive_map(silent, server), ipv4=True, ipv6=False, timeout=1.0, captive_port=server.port)
        report = client.measure()
    finally:
        server.close()
    assert report.captive_portal is found and report.to_data()["captive_portal"] is found
    assert server.requests and server.requests[0][0].startswith("/generate_204?t=")


def test_captive_portal_not_checked_when_stun_answers_quickly(responder: StunResponder) -> None:
    server = CaptiveServer()
    try:
        fast = responder.add("127.0.73.2", delay_ms=2)
        report = Netcheck(
            _captive_map(fast, server), ipv4=True, ipv6=False, timeout=1.0, captive_port=server.port
        ).measure()
    finally:
        server.close()
    assert report.udp and report.captive_portal is None and server.requests == []


def test_bind_address_and_port(responder: StunResponder) -> None:
    ep = responder.add("127.0.74.1", delay_ms=1)
    dmap = parse_derpmap(derp_map(region(901, [stun_node("901a", 901, ep)])))
    port = free_udp_port()
    report = Netcheck(dmap, ipv4=True, ipv6=False, timeout=1.0, bind_ip="127.0.0.1", bind_port=port).measure()
    assert report.global_v4 == f"127.0.0.1:{port}"  # the server saw the probe come from the bound port
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as busy:
        busy.bind(("127.0.0.1", 0))
        with pytest.raises(InputError, match=r"cannot bind the STUN socket to 127\.0\.0\.1:"):
            measure(dmap, ipv4=True, ipv6=False, timeout=1.0, bind_ip="127.0.0.1", bind_port=busy.getsockname()[1])


def test_bind_address_of_the_other_family_leaves_no_socket(responder: StunResponder) -> None:
    ep = responder.add("::1", delay_ms=1)
    dmap = parse_derpmap(derp_map(region(901, [stun_node("901a", 901, ep)])))
    report = measure(dmap, ipv4=False, ipv6=True, timeout=1.0, bind_ip="127.0.0.1")
    assert report.regions[0].latency_ms is None
    assert "no IPv6 socket: the bind address 127.0.0.1 is IPv4" in (report.regions[0].error or "")


# -- the CLI ------------------------------------------------------------------------------------


def _write(tmp_path: Path, data: dict[str, Any]) -> str:
    path = tmp_path / "map.json"
    path.write_text(json.dumps(data))
    return str(path)


def test_cli_json_line_one_timestamped_object_per_round(responder: StunResponder, tmp_path: Path) -> None:
    data, _ = _six(responder)
    result = runner.invoke(
        app,
        [
            "latency",
            "--map",
            _write(tmp_path, data),
            "-f",
            "json-line",
            "--every",
            "50ms",
            "--count",
            "3",
            "--timeout",
            "1s",
            "--ipv4",
            "--no-ipv6",
        ],
    )
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert len(lines) == 3
    objs = [json.loads(line) for line in lines]
    assert [o["plan"] for o in objs] == ["full", "incremental", "incremental"]
    times = [datetime.fromisoformat(o["time"].replace("Z", "+00:00")) for o in objs]
    assert times == sorted(times) and times[0] < times[2] and all(t.utcoffset() is not None for t in times)
    assert all(o["preferred_region"] == 901 and len(o["regions"]) == 6 for o in objs)
    assert sum(not r["probed"] for r in objs[2]["regions"]) == 3


def test_cli_table_shows_port_mapping_and_incremental_rounds(responder: StunResponder, tmp_path: Path) -> None:
    data, _ = _six(responder)
    result = runner.invoke(
        app,
        [
            "latency",
            "--map",
            _write(tmp_path, data),
            "--every",
            "50ms",
            "--count",
            "2",
            "--timeout",
            "1s",
            "--ipv4",
            "--no-ipv6",
        ],
    )
    assert result.exit_code == 0, result.output
    assert result.stdout.count("PortMapping: not checked (--port-mapping)") == 2
    assert "3 of 3 regions probed (incremental round" in result.stdout
    assert "not probed this round (measured " in result.stdout


def test_cli_bind_options(responder: StunResponder, tmp_path: Path) -> None:
    ep = responder.add("127.0.75.1", delay_ms=1)
    path = _write(tmp_path, derp_map(region(901, [stun_node("901a", 901, ep)])))
    port = free_udp_port()
    result = runner.invoke(
        app,
        [
            "latency",
            "--map",
            path,
            "-f",
            "json",
            "--bind-address",
            "127.0.0.1",
            "--bind-port",
            str(port),
            "--timeout",
            "1s",
        ],
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["global_v4"] == f"127.0.0.1:{port}"
    port = free_udp_port()
    result = runner.invoke(
        app,
        ["nat", "--map", path, "-f", "json", "--bind-address", "127.0.0.1", "--bind-port", str(port), "--timeout", "1"],
    )
    assert result.exit_code == 0, result.output
    nat = json.loads(result.stdout)
    assert nat["local"] == f"127.0.0.1:{port}" and nat["mapped"] == [f"127.0.0.1:{port}"]
    assert nat["port_mapping"] is None and nat["captive_portal"] is None


@pytest.mark.parametrize(
    ("command", "args", "message"),
    [
        *((c, ["--bind-address", "nope"], "--bind-address: 'nope' is not an IP address") for c in ("latency", "nat")),
        *((c, ["--bind-port", "70000"], "70000") for c in ("latency", "nat")),
        ("latency", ["--bind-address", "127.0.0.1", "--ipv6"], "cannot send IPv6 probes"),
    ],
)
def test_cli_bad_bind_options_exit_2(tmp_path: Path, command: str, args: list[str], message: str) -> None:
    path = _write(
        tmp_path,
        derp_map(region(901, [stun_node("901a", 901, None, HostName="127.0.0.1", IPv4="127.0.0.1", STUNPort=9)])),
    )
    result = runner.invoke(app, [command, "--map", path, *args])
    assert result.exit_code == 2
    assert message in result.stderr


def test_cli_bind_port_in_use_exit_2(responder: StunResponder, tmp_path: Path) -> None:
    ep = responder.add("127.0.75.2", delay_ms=1)
    path = _write(tmp_path, derp_map(region(901, [stun_node("901a", 901, ep)])))
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as busy:
        busy.bind(("127.0.0.1", 0))
        port = str(busy.getsockname()[1])
        for command in ("latency", "nat"):
            result = runner.invoke(app, [command, "--map", path, "--bind-address", "127.0.0.1", "--bind-port", port])
            assert result.exit_code == 2, (command, result.output)
            assert "derptool: error: cannot bind the STUN socket to 127.0.0.1:" in result.stderr
