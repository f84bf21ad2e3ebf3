"""``derptool impact --prometheus`` against a real Prometheus (Debian's package) on loopback.

One Prometheus for the module scrapes three ``derptool latency --every 1s --listen`` exporters, each probing its
own loopback map (Tailscale's region IDs, different delays from the project's STUN responder, so each site sees
a different world). Two sites get their ``site`` label from the scrape config, the third (frankfurt) from its
exporter (``--site office-frankfurt``), as in the README's fleet recipe. Before the start, ``promtool``
backfills history for a fourth site, "tokyo": a sample a minute for 100 minutes, the newest older than
Prometheus' 5-minute lookback, so it shows up only over a --window.
Most of the ~7 s setup is Prometheus' own delay before the first scrape (its discovery updates come every 5 s).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest
from typer.testing import CliRunner

from derptool.cli import app
from tests.support import prometheus as prom
from tests.support.ports import free_port
from tests.support.prereq import needs
from tests.support.repo import REPO
from tests.support.stun_responder import StunResponder

pytestmark = needs(prom.missing())

runner = CliRunner()
ROOT = REPO
REGIONS = {13: "den", 21: "tor", 4: "fra", 27: "iad"}
SITES: dict[str, dict[int, float]] = {
    # gaps of 20 ms and more between a site's regions, so a loaded machine cannot reorder them
    "denver": {13: 10, 21: 60, 4: 120, 27: 50},
    "virginia": {27: 6, 13: 60, 21: 30, 4: 90},
    "frankfurt": {4: 4, 21: 100, 27: 90, 13: 140},
}
EXPORTER_LABELLED = "frankfurt"  # its exporter adds site="office-frankfurt" (--site); the others get it from Prometheus
TOKYO_TOK = [float(ms) for ms in range(1, 101)]  # region 7 (tok): 1..100 ms, one sample a minute
TOKYO_SYD = 70.0  # region 5 (syd): always 70 ms


def _site_map(responder: StunResponder, index: int, delays: dict[int, float]) -> dict[str, Any]:
    regions = {}
    for n, (rid, ms) in enumerate(sorted(delays.items()), start=1):
        ep = responder.add(f"127.0.{90 + index}.{n}", delay_ms=ms)
        node = {
            "Name": f"{rid}{'abc'[index]}",
            "RegionID": rid,
            "HostName": ep.host,
            "IPv4": ep.host,
            "IPv6": "none",
            "STUNPort": ep.port,
            "DERPPort": 9,
        }
        regions[str(rid)] = {"RegionID": rid, "RegionCode": REGIONS[rid], "RegionName": REGIONS[rid], "Nodes": [node]}
    return {"Regions": regions}


def _backfill() -> str:
    now = time.time()
    samples = []
    for i, ms in enumerate(TOKYO_TOK):
        at = now - 600 - (100 - i) * 60  # one a minute, the last 10 minutes ago
        samples.append(
            prom.Sample(
                {"instance": "tokyo", "site": "office-tokyo", "region_id": "7", "region_code": "tok", "method": "stun"},
                ms / 1000,
                at,
            )
        )
        samples.append(
            prom.Sample(
                {"instance": "tokyo", "site": "office-tokyo", "region_id": "5", "region_code": "syd", "method": "stun"},
                TOKYO_SYD / 1000,
                at,
            )
        )
    return prom.openmetrics("derptool_region_latency_seconds", samples)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[prom.PrometheusServer]:
    work = tmp_path_factory.mktemp("prometheus")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs: list[subprocess.Popen[bytes]] = []
    with StunResponder() as responder:
        targets = []
        try:
            for index, (site, delays) in enumerate(SITES.items()):
                path = work / f"{site}-map.json"
                path.write_text(json.dumps(_site_map(responder, index, delays)))
                port = free_port()
                exporter_site = ["--site", f"office-{site}"] if site == EXPORTER_LABELLED else []
                procs.append(
                    subprocess.Popen(
                        [
                            sys.executable,
                            "-m",
                            "derptool",
                            "latency",
                            "--map",
                            str(path),
                            "--every",
                            "1s",
                            "--timeout",
                            "3s",
                            "--listen",
                            f"127.0.0.1:{port}",
                            "-f",
                            "json",
                            *exporter_site,
                        ],
                        stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL,
                        stdin=subprocess.DEVNULL,
                        env=env,
                    )
                )
                labels = {"instance": site} if exporter_site else {"instance": site, "site": f"office-{site}"}
                targets.append(prom.Target(f"127.0.0.1:{port}", labels))
            with prom.PrometheusServer(work, targets, backfill=_backfill()) as srv:
                # every region of every site scraped (not just one region a site)
                srv.wait_for("derptool_region_latency_seconds", sum(len(d) for d in SITES.values()))
                # and a second round of each: a cold process' first round can be off by tens of ms on a busy machine
                srv.wait_for("changes(derptool_latency_run_timestamp_seconds[1m]) > 0", len(SITES))
                yield srv
        finally:
            for p in procs:
                p.terminate()
            for p in procs:
                try:
                    p.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()


def _impact(srv: prom.PrometheusServer, *args: str) -> Any:
    result = runner.invoke(app, ["impact", "--map", "snapshot", "--prometheus", srv.url, "-f", "json", *args])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_latest_values_one_site_per_instance(server: prom.PrometheusServer) -> None:
    data = _impact(server, "--region", "us")
    assert data["omitted"] == [1, 2, 9, 10, 12, 13, 16, 17, 24, 27]  # the snapshot's US regions
    sites = {s["site"]: s for s in data["sites"]}
    assert set(sites) == set(SITES)  # tokyo's history is older than the 5-minute lookback
    for name, delays in SITES.items():
        before, after = sites[name]["before"], sites[name]["after"]
        home = min(delays, key=lambda r: delays[r])
        assert before["region"] == home
        assert delays[home] <= before["latency_ms"] < delays[home] + 25
        kept = {r: ms for r, ms in delays.items() if r not in (13, 27)}
        new = min(kept, key=lambda r: kept[r])
        assert after["region"] == new
        assert kept[new] <= after["latency_ms"] < kept[new] + 25
        assert sites[name]["increase_ms"] == pytest.approx(after["latency_ms"] - before["latency_ms"], abs=0.002)
    assert [s["site"] for s in data["sites"]] == ["denver", "virginia", "frankfurt"]  # worst first
    assert sites["frankfurt"]["increase_ms"] == 0
    assert data["worst_increase_ms"] == sites["denver"]["increase_ms"]


def test_site_label_and_the_ci_gate(server: prom.PrometheusServer) -> None:
    args = ["impact", "--map", "snapshot", "--prometheus", server.url, "--region", "us", "--site-label", "site"]
    ok = runner.invoke(app, [*args, "--max-increase", "90"])
    assert ok.exit_code == 0, ok.output
    assert {line.split()[0] for line in ok.stdout.splitlines() if line.startswith("office-")} == {
        "office-denver",
        "office-virginia",
        "office-frankfurt",
    }
    over = runner.invoke(app, [*args, "--max-increase", "37"])
    assert over.exit_code == 1
    # denver moves from den (10 ms) to tor (60 ms): about +50 ms; virginia (+24) stays within 37
    assert re.search(
        r"1 site\(s\) over --max-increase 37 ms: office-denver \(\+(4[0-9]|5[0-9]|6[0-4])\.\d ms\)$",
        over.stderr.strip(),
    ), over.stderr


def test_quantile_over_a_window(server: prom.PrometheusServer) -> None:
    p50 = {s["site"]: s for s in _impact(server, "--region", "jp", "--window", "7d", "--quantile", "0.5")["sites"]}
    tokyo = p50["tokyo"]
    assert tokyo["before"] == {"region": 7, "latency_ms": 50.5}  # median of 1..100 ms
    assert tokyo["after"] == {"region": 5, "latency_ms": 70.0}
    assert tokyo["increase_ms"] == 19.5
    p90 = {s["site"]: s for s in _impact(server, "--region", "jp", "--window", "7d")["sites"]}  # 0.9 by default
    assert p90["tokyo"]["before"] == p90["tokyo"]["after"] == {"region": 5, "latency_ms": 70.0}  # p90 tok: 90.1
    assert set(p90) == {*SITES, "tokyo"}


def test_a_query_returning_nothing_says_so(server: prom.PrometheusServer) -> None:
    result = runner.invoke(
        app, ["impact", "--map", "snapshot", "--prometheus", server.url, "--region", "us", "--site-label", "datacenter"]
    )
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        f"derptool: error: Prometheus at {server.url} has no derptool_region_latency_seconds series with a "
        "'datacenter' label (latest value); is it scraping 'derptool latency --listen' exporters?"
    )
    assert result.stdout == ""


def test_site_label_from_the_exporter(server: prom.PrometheusServer) -> None:
    target = next(t for t in server.targets if t.labels["instance"] == EXPORTER_LABELLED)
    assert "site" not in target.labels  # only `latency --site office-frankfurt` can have set it
    series = server.query('derptool_region_up{instance="frankfurt"}')
    assert {s["metric"]["site"] for s in series} == {"office-frankfurt"} and len(series) == len(SITES["frankfurt"])
    data = _impact(server, "--region", "de", "--site-label", "site")
    sites = {s["site"]: s for s in data["sites"]}
    assert set(sites) == {f"office-{name}" for name in SITES}
    frankfurt = sites["office-frankfurt"]
    assert frankfurt["before"]["region"] == 4 and frankfurt["after"]["region"] == 27  # fra 4 ms, then iad 90 ms
    assert 90 <= frankfurt["after"]["latency_ms"] < 115 and frankfurt["increase_ms"] > 60
