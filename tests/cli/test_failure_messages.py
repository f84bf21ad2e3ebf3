"""Failures a person can read: offline latency says "No network" and what to try, /healthz answers 503 when no
region answered, a bare watch without the LocalAPI socket names the socket and the flag to give."""

from __future__ import annotations

import functools
import http.server
import importlib
import json
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from derptool.cli import app
from derptool.cli.latency import latency_table
from derptool.derpmap import parse_derpmap
from derptool.net.exporter import Exporter
from derptool.net.netcheck import Netcheck
from tests.support.maps import derp_map, region, stun_node
from tests.support.ports import free_port
from tests.support.repo import REPO
from tests.support.stun_responder import StunResponder

runner = CliRunner()
scrape = importlib.import_module("derptool.watch.scrape")  # the package exports a function of the same name


class _Gateway(http.server.BaseHTTPRequestHandler):
    """What answers port 80 on a network that has none: an error page for every host (``status``)."""

    status = 404

    def do_GET(self) -> None:
        body = b"not here"
        self.send_response(type(self).status)
        if type(self).status == 302:
            self.send_header("Location", "http://login.portal.test/")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def gateway() -> Iterator[tuple[int, type[_Gateway]]]:
    handler = type("Gateway", (_Gateway,), {"status": 404})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1], handler
    server.shutdown()
    server.server_close()


def _dead_map(responder: StunResponder, *, port80: bool) -> dict[str, Any]:
    """Two regions whose STUN never answers and whose HTTPS port is closed."""
    regions = []
    for i, host in enumerate(("127.0.75.1", "127.0.75.2")):
        silent = responder.add(host, silent=True)
        extra = {"CanPort80": True, "IPv4": "127.0.0.1", "HostName": "127.0.0.1", "STUNTestIP": host} if port80 else {}
        regions.append(region(901 + i, [stun_node(f"{901 + i}a", 901 + i, silent, **extra)]))
    return derp_map(*regions)


def test_offline_latency_says_no_network_and_what_to_try(responder: StunResponder, tmp_path: Path) -> None:
    path = tmp_path / "map.json"
    path.write_text(json.dumps(_dead_map(responder, port80=False)))
    result = runner.invoke(app, ["latency", "--map", str(path), "--timeout", "1s", "--no-ipv6"])
    assert result.exit_code == 1
    assert "No network: no DERP region answered over UDP or HTTPS" in result.stdout
    assert "--map snapshot" in result.stdout
    assert "CaptivePortal" not in result.stdout


def test_an_error_page_on_port_80_is_no_captive_portal(responder: StunResponder, gateway: tuple[int, Any]) -> None:
    port, _ = gateway
    dmap = parse_derpmap(_dead_map(responder, port80=True))
    report = Netcheck(dmap, ipv4=True, ipv6=False, timeout=1.0, captive_port=port).measure()
    assert report.no_network and report.captive_portal is True and report.captive_status == 404
    assert not report.login_portal
    text = latency_table(report)
    assert "CaptivePortal: no (HTTP 404 on port 80: the gateway, not a login page)" in text
    assert "CaptivePortal: yes" not in text and "No network" in text


def test_a_login_portal_is_still_a_captive_portal(responder: StunResponder, gateway: tuple[int, Any]) -> None:
    port, handler = gateway
    handler.status = 302
    dmap = parse_derpmap(_dead_map(responder, port80=True))
    report = Netcheck(dmap, ipv4=True, ipv6=False, timeout=1.0, captive_port=port).measure()
    assert report.login_portal
    text = latency_table(report)
    assert "CaptivePortal: yes" in text and "No network" not in text


def test_no_captive_check_once_a_region_answered_over_udp(responder: StunResponder, gateway: tuple[int, Any]) -> None:
    """The report is still running after the captive-portal delay (a slow region), but UDP already answered."""
    port, handler = gateway
    hits: list[str] = []
    handler.do_GET = lambda self: hits.append(self.path)
    fast = responder.add("127.0.76.1", delay_ms=1)
    slow = responder.add("127.0.76.2", delay_ms=500)
    node = functools.partial(stun_node, CanPort80=True, IPv4="127.0.0.1", HostName="127.0.0.1")
    dmap = parse_derpmap(
        derp_map(
            region(901, [node("901a", 901, fast, STUNTestIP=fast.host)]),
            region(902, [node("902a", 902, slow, STUNTestIP=slow.host)]),
        )
    )
    report = Netcheck(dmap, ipv4=True, ipv6=False, timeout=2.0, captive_port=port).measure()
    assert report.udp and report.captive_portal is None and hits == []
    assert report.duration_s > 0.3  # the report did outlast the captive-portal delay


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


def test_exporter_health_with_a_problem() -> None:
    with Exporter("127.0.0.1", 0, every=60) as exporter:
        base = f"http://127.0.0.1:{exporter.address[1]}/healthz"
        exporter.publish("x 1\n", problem="0 of 3 regions answered")
        assert _get(base) == (503, "unhealthy: 0 of 3 regions answered\n")
        exporter.publish("x 1\n")
        status, body = _get(base)
        assert status == 200 and body.startswith("ok: 2 round(s)")


def test_latency_healthz_is_503_when_no_region_answered(responder: StunResponder, tmp_path: Path) -> None:
    path = tmp_path / "map.json"
    path.write_text(json.dumps(_dead_map(responder, port80=False)))
    port = free_port()
    argv = [sys.executable, "-m", "derptool", "latency", "--map", str(path), "--timeout", "500ms", "--no-ipv6"]
    argv += ["--listen", f"127.0.0.1:{port}", "--every", "1s", "--count", "4"]
    proc = subprocess.Popen(argv, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        seen = (0, "")
        for _ in range(100):
            try:
                seen = _get(f"http://127.0.0.1:{port}/healthz")
            except OSError:
                seen = (0, "")
            if seen[0] == 503 and seen[1].startswith("unhealthy"):
                break
            time.sleep(0.1)
        assert seen == (503, "unhealthy: 0 of 2 regions answered\n")
    finally:
        proc.terminate()
        proc.wait(10)


def test_bare_watch_without_the_socket_names_it_and_the_flags(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, gateway: tuple[int, Any]
) -> None:
    port, _ = gateway  # the fallback URL answers 404, as a gateway does for 100.100.100.100
    missing = str(tmp_path / "tailscaled.sock")
    monkeypatch.setattr(scrape, "DEFAULT_URL", f"http://127.0.0.1:{port}/metrics")
    monkeypatch.setattr(scrape, "default_target", functools.partial(scrape.default_target, missing))
    result = runner.invoke(app, ["watch", "--once"])
    assert result.exit_code == 3
    assert result.stderr.count("\n") == 1
    assert f"no tailscaled LocalAPI socket at {missing}" in result.stderr
    assert "(HTTP 404" in result.stderr and "give --socket PATH" in result.stderr and "metrics URL" in result.stderr
