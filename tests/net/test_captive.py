"""Captive-portal detection against a loopback HTTP server that behaves like derper, or like a portal."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from derptool.derpmap import parse_derpmap
from derptool.net import captive
from tests.support.http_servers import CaptiveServer


@pytest.fixture()
def server() -> Iterator[CaptiveServer]:
    s = CaptiveServer()
    yield s
    s.close()


def _map(**regions: Any) -> Any:
    out = {}
    for rid, (ip, extra) in regions.items():
        n = int(rid[1:])
        out[str(n)] = {
            "RegionID": n,
            "RegionCode": f"r{n}",
            "RegionName": f"R{n}",
            **extra,
            "Nodes": [
                {"Name": f"{n}a", "RegionID": n, "HostName": f"{n}a.example.test", "IPv4": ip, "CanPort80": True}
            ],
        }
    return parse_derpmap({"Regions": out})


def test_endpoints_as_netcheck_picks_them() -> None:
    dmap = parse_derpmap(
        {
            "Regions": {
                str(n): {
                    "RegionID": n,
                    "RegionCode": f"r{n}",
                    "RegionName": f"R{n}",
                    "Avoid": n == 2,
                    "NoMeasureNoHome": n == 3,
                    "Nodes": [
                        {
                            "Name": f"{n}{c}",
                            "RegionID": n,
                            "HostName": f"{n}{c}.example.test",
                            "IPv4": "" if c == "c" else f"192.0.2.{n * 10 + i}",
                            "CanPort80": c != "b",
                        }
                        for i, c in enumerate("abc")
                    ],
                }
                for n in range(1, 8)
            }
        }
    )
    got = captive.endpoints(dmap, preferred_region=6)
    # home region first; Avoid, NoMeasureNoHome, no CanPort80 and no IPv4 left out; at most five
    assert [e.node for e in got] == ["6a", "1a", "4a", "5a", "7a"]
    assert got[0].url == "http://192.0.2.60/generate_204" and got[0].host == "192.0.2.60"
    assert captive.endpoints(dmap, port=8080)[0].host == "192.0.2.10:8080"


def test_derper_like_answer_is_no_portal_and_the_request_is_netchecks(server: CaptiveServer) -> None:
    got = captive.detect(_map(r1=("127.0.0.1", {})), port=server.port)
    assert got.found is False
    path, headers = server.requests[0]
    assert path.startswith("/generate_204?t=")
    assert headers["x-tailscale-challenge"] == f"ts_127.0.0.1:{server.port}"
    assert "no-cache" in headers["cache-control"]


@pytest.mark.parametrize(
    ("mode", "why"), [("portal", "status 302"), ("bare204", "X-Tailscale-Response is None"), ("badecho", "ts_other")]
)
def test_other_answers_are_a_portal(server: CaptiveServer, mode: str, why: str) -> None:
    server.mode = mode
    got = captive.detect(_map(r1=("127.0.0.1", {})), port=server.port)
    assert got.found is True
    assert why in got.checks[0].detail


def test_unreachable_endpoints_say_nothing(server: CaptiveServer) -> None:
    port = server.port
    server.close()  # nothing listens there any more: connection refused
    got = captive.detect(_map(r1=("127.0.0.1", {})), port=port, timeout=1.0)
    assert got.found is None and got.checks[0].captive is None and "ConnectError" in got.checks[0].detail
    assert captive.detect(_map(r1=("", {})), port=port).found is None  # no endpoint at all


def test_one_portal_answer_is_enough(server: CaptiveServer) -> None:
    server.mode = "portal"
    # two endpoints: the home region's answers like a portal; the other never answers (refused)
    got = captive.detect(_map(r1=("127.0.0.2", {}), r2=("127.0.0.1", {})), preferred_region=2, port=server.port)
    assert got.found is True
