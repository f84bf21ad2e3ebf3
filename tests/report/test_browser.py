"""Every page kind in a real browser: Debian's headless Chromium, the network cut off (every load goes to a
recording loopback proxy), the page read through the DevTools protocol.

For each page: a marker for every region of the map, each with the right state; no request but the page
itself (DevTools log) and none at the proxy; a full-page screenshot that is a picture, not a blank page.
Control pages prove the harness sees a load when there is one.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from derptool.report.impact_page import impact_page
from derptool.report.latency_page import latency_page
from derptool.report.map_page import map_page
from derptool.report.page import CSP, Page
from derptool.report.policy_diff_page import policy_diff_page
from tests.report.browser import MARKERS_JS, Browser, browser
from tests.report.pngcheck import distinct_colours
from tests.report.samples import HOSTILE, impact, latency_report, mixed_map, policy_diff, snapshot

BROWSER_OWN = ("google.com", "googleapis.com", "gstatic.com", "gvt1.com", "chromium.org")
"""Hosts Chromium itself calls in the background (updates, time); not loads of the page."""


@pytest.fixture(scope="module")
def chrome() -> Iterator[tuple[Browser, Any]]:
    with browser() as pair:
        yield pair


def _page_loads(proxy: Any, before: int) -> list[str]:
    return [line for line in proxy.seen[before:] if not any(host in line for host in BROWSER_OWN)]


def _visit(
    chrome: tuple[Browser, Any], tmp_path: Path, html: str
) -> tuple[dict[str, Any], list[str], bytes, list[str]]:
    b, proxy = chrome
    path = tmp_path / "page.html"
    path.write_text(html, encoding="utf-8")
    before = len(proxy.seen)
    visit = b.visit(path.as_uri(), MARKERS_JS)
    return json.loads(visit.value), visit.requests, visit.screenshot, _page_loads(proxy, before)


def _check_offline_and_drawn(url_requests: list[str], proxied: list[str], shot: bytes, tmp_path: Path) -> None:
    assert url_requests == [(tmp_path / "page.html").as_uri()]
    assert proxied == []
    assert distinct_colours(shot, step=4) > 40


def _mixed() -> tuple[Callable[[], Page], dict[int, str]]:
    dmap, states = mixed_map()
    return (lambda: map_page(dmap, source=HOSTILE)), states


def test_map_page(chrome: tuple[Browser, Any], tmp_path: Path) -> None:
    dmap, states = mixed_map()
    fra = dmap.regions[4]
    assert fra is not None
    shown = dmap.subset([rid for rid in dmap.regions if rid != 4])
    page = map_page(shown, source=HOSTILE, omitted=[fra])
    data, requests, shot, proxied = _visit(chrome, tmp_path, page.html())
    assert {r["id"]: r["state"] for r in data["regions"]} == {**states, 4: "omitted"}
    assert all(w > 0 and h > 0 for r in data["regions"] for w, h in [r["box"]])  # every marker is drawn
    evil = next(r for r in data["regions"] if r["id"] == 902)
    assert evil["title"].startswith("evil: " + HOSTILE)  # the hostile name is shown as text, nothing ran
    assert data["images"] == 0 and data["title"] == "DERP map"
    _check_offline_and_drawn(requests, proxied, shot, tmp_path)
    (tmp_path / "shot.png").write_bytes(shot)


def test_latency_page(chrome: tuple[Browser, Any], tmp_path: Path) -> None:
    dmap, states = mixed_map()
    report = latency_report(dmap)
    data, requests, shot, proxied = _visit(chrome, tmp_path, latency_page(report, dmap).html())
    assert {r["id"]: r["state"] for r in data["regions"]} == {**states, 777: "unknown"}
    measured = {r.id: r.latency_ms for r in report.regions if r.latency_ms is not None}
    assert {r["id"]: r["latency"] for r in data["regions"] if r["latency"] is not None} == measured
    _check_offline_and_drawn(requests, proxied, shot, tmp_path)


def test_impact_page(chrome: tuple[Browser, Any], tmp_path: Path) -> None:
    dmap = snapshot()
    page = impact_page(impact(30), dmap, max_increase_ms=25.0, map_description="snapshot")
    data, requests, shot, proxied = _visit(chrome, tmp_path, page.html())
    assert {r["id"]: r["state"] for r in data["regions"]} == {
        r.region_id: ("omitted" if r.region_id in (4, 14) else "kept") for r in dmap.region_list()
    }
    bars = data["bars"]
    assert len(bars) == 30 and bars[0]["site"] == "island" and bars[0]["increase"] is None
    increases = [b["increase"] for b in bars[1:]]
    assert increases == sorted(increases, reverse=True)
    assert [b["y"] for b in bars] == sorted(b["y"] for b in bars)  # drawn top to bottom in that order
    assert all(b["over"] == (b["increase"] is None or b["increase"] > 25.0) for b in bars)
    assert data["budget"] == [25.0]
    _check_offline_and_drawn(requests, proxied, shot, tmp_path)


def test_policy_diff_page(chrome: tuple[Browser, Any], tmp_path: Path) -> None:
    dmap = snapshot()
    page = policy_diff_page(policy_diff(), maps=[dmap], old="main", new="pr")
    data, requests, shot, proxied = _visit(chrome, tmp_path, page.html())
    states = {r["id"]: r["state"] for r in data["regions"]}
    assert states == {
        **{r.region_id: "kept" for r in dmap.region_list()},
        4: "omitted",
        14: "omitted",
        900: "self-hosted",
    }
    assert [b["site"] for b in data["bars"]] == ["rotterdam", "berlin"]
    assert len(data["tables"]) >= 7  # summary, access x2, ssh, egress, tests, derp, sites
    _check_offline_and_drawn(requests, proxied, shot, tmp_path)


def test_the_harness_sees_a_load_when_a_page_makes_one(chrome: tuple[Browser, Any], tmp_path: Path) -> None:
    """Control: a page with an image from elsewhere shows up in the DevTools log and at the proxy."""
    html = '<!DOCTYPE html><html><body><p>x</p><img src="http://leak.test/pixel.png"></body></html>'
    _, requests, _, proxied = _visit(chrome, tmp_path, html)
    assert "http://leak.test/pixel.png" in requests
    assert any("leak.test/pixel.png" in line for line in proxied)


def test_the_pages_policy_blocks_a_load_that_slipped_in(chrome: tuple[Browser, Any], tmp_path: Path) -> None:
    """Control: the same image on a page with the pages' Content-Security-Policy never reaches the network."""
    html = (
        f'<!DOCTYPE html><html><head><meta http-equiv="Content-Security-Policy" content="{CSP}"></head>'
        '<body><p>x</p><img src="http://leak.test/pixel.png"></body></html>'
    )
    _, _, _, proxied = _visit(chrome, tmp_path, html)
    assert proxied == []
