"""``derptool impact`` at fleet scale, figures from one run.

1. Files: 1 000 site reports of 30 regions each (``derptool latency --format json`` shape), read and assessed by
   the library, as a ratio to reading the same files with ``json.load`` (goal: < 1 s in all).
2. Prometheus: 100 sites x 30 regions backfilled into a real Prometheus (Debian's ``prometheus``/``promtool``),
   quantiles over a window, query plus assessment (goal: < 2 s). Skipped when Prometheus is missing.

    python bench/impact_bench.py [--sites 1000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from derptool.derpmap.sources import load_snapshot
from derptool.edit.omit import plan_omit
from derptool.fleet import assess
from derptool.fleet.files import load_reports


def _write_reports(folder: Path, sites: int, rng: random.Random) -> None:
    regions = load_snapshot().derp_map.region_list()[:30]
    for i in range(sites):
        rows = [
            {
                "id": r.region_id,
                "code": r.region_code,
                "name": r.region_name,
                "country": None,
                "continent": None,
                "latency_ms": round(rng.uniform(2, 250), 3),
                "v4_latency_ms": None,
                "v6_latency_ms": None,
                "method": "stun",
                "node": f"{r.region_id}a",
                "error": None,
            }
            for r in regions
        ]
        rows.sort(key=lambda r: float(r["latency_ms"] or 0))
        report = {
            "map_source": "bench",
            "preferred_region": rows[0]["id"],
            "udp": True,
            "ipv4": True,
            "ipv6": False,
            "global_v4": "192.0.2.1:41641",
            "global_v6": None,
            "mapping_varies_by_dest_ip": False,
            "regions": rows,
        }
        (folder / f"site{i:05d}.json").write_text(json.dumps(report))


def _files(sites: int, rounds: int) -> None:
    dmap = load_snapshot().derp_map
    omitted = plan_omit(dmap, omit=["us"]).omitted_ids
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        _write_reports(folder, sites, random.Random(1))
        plain, ours = [], []
        for _ in range(rounds):
            start = time.perf_counter()
            for f in sorted(folder.iterdir()):
                with f.open("rb") as fh:
                    json.load(fh)
            plain.append(time.perf_counter() - start)
            start = time.perf_counter()
            loaded = load_reports([str(folder)])
            impact = assess(loaded.reports, dmap, omitted)
            ours.append(time.perf_counter() - start)
            assert len(impact.sites) == sites
        p, o = statistics.median(plain), statistics.median(ours)
        print(
            f"files: {sites} reports x 30 regions: json.load {p * 1000:.0f} ms, read + assess {o * 1000:.0f} ms "
            f"(ratio {o / p:.2f}x); goal < 1 s: {'met' if o < 1 else 'MISSED'}"
        )


def _prometheus(rounds: int) -> None:
    from tests.support import prometheus as prom

    why = prom.missing()
    if why:
        print(f"prometheus: skipped ({why})")
        return
    from derptool.fleet.prometheus import build_query, query_prometheus

    dmap = load_snapshot().derp_map
    regions = dmap.region_list()[:30]
    omitted = plan_omit(dmap, omit=["us"]).omitted_ids
    rng = random.Random(2)
    now = time.time()
    samples = [
        prom.Sample(
            {"instance": f"site{s:03d}", "region_id": str(r.region_id), "region_code": r.region_code},
            rng.uniform(0.002, 0.25),
            now - 3600 + 60 * k,
        )
        for s in range(100)
        for r in regions
        for k in range(0, 60, 5)
    ]
    with (
        tempfile.TemporaryDirectory() as tmp,
        prom.PrometheusServer(
            Path(tmp), [], backfill=prom.openmetrics("derptool_region_latency_seconds", samples)
        ) as srv,
    ):
        # backfilled blocks are history (older than the 5-minute lookback of a "latest" query): window quantiles
        for label, window, q in (("p90 over 1 h", "1h", 0.9), ("p50 over 7 d", "7d", 0.5)):
            query = build_query("instance", window, q)
            times = []
            count = 0
            for _ in range(rounds):
                start = time.perf_counter()
                result = query_prometheus(srv.url, query)
                count = len(assess(result.reports, dmap, omitted).sites)
                times.append(time.perf_counter() - start)
            med = statistics.median(times)
            print(
                f"prometheus: 100 sites x 30 regions, {label}: {med * 1000:.0f} ms for {count} sites; "
                f"goal < 2 s: {'met' if med < 2 else 'MISSED'}"
            )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sites", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    _files(args.sites, args.rounds)
    _prometheus(args.rounds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
