"""Benchmark: the HTML pages of ``derptool.report`` — CPU to render the full public map, size of a big impact page.

Run: python bench/report_bench.py [--repeat 5] [--sites 1000]

1. The map page of the bundled snapshot of the public map (every region, every country shape):
   * as the user runs it, ``derptool map --map snapshot --format html`` in a child process, its CPU time
     (user + system from ``os.wait4``, imports included) beside the anchor ``derptool map --map snapshot
     --format json`` run the same way, interleaved, best of ``--repeat``;
   * the library alone, in this process: the first render (country shapes loaded) and the best warm render.
   Goal: under 1 s of CPU.
2. The impact page for ``--sites`` sites (every one with a bar and a table row) over the public map: its
   size in bytes, and the CPU to build it. Goal: under 2 MB for 1 000 sites.
3. For reference: the PNG of the map page (resvg), CPU and size.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

from derptool.derpmap.sources import load_snapshot
from derptool.fleet.impact import Home, Impact, SiteImpact


def child_cpu(args: list[str]) -> float:
    """CPU seconds (user + system) of ``python -m derptool ARGS`` in a child process."""
    proc = subprocess.Popen([sys.executable, "-m", "derptool", *args], stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"derptool {' '.join(args)} exited {proc.returncode}")
    return usage.ru_utime + usage.ru_stime


def cpu(fn: object, repeat: int) -> tuple[float, float]:
    """(first, best of the rest) CPU seconds of calling *fn*."""
    times = []
    for _ in range(repeat + 1):
        start = time.process_time()
        fn()  # type: ignore[operator]
        times.append(time.process_time() - start)
    return times[0], min(times[1:])


def impact_of(sites: int, dmap_ids: list[int]) -> Impact:
    """*sites* sites spread over the map's regions, homed in a removed region or not, some stranded."""
    rows = []
    for i in range(sites):
        before = dmap_ids[i % len(dmap_ids)]
        after = None if i % 97 == 0 else Home(dmap_ids[(i * 7 + 3) % len(dmap_ids)], "x", 10.0 + (i * 37) % 200)
        rows.append(SiteImpact(f"site-{i:05d}.example.internal", Home(before, "y", 5.0 + i % 40), after))
    return Impact(dmap_ids[:10], rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--sites", type=int, default=1000)
    opts = parser.parse_args()

    from derptool.report.impact_page import impact_page
    from derptool.report.map_page import map_page

    page_args = ["map", "--map", "snapshot", "--format", "html"]
    anchor_args = ["map", "--map", "snapshot", "--format", "json"]
    pages, anchors = [], []
    for _ in range(opts.repeat):  # interleaved, so drift hits both alike
        anchors.append(child_cpu(anchor_args))
        pages.append(child_cpu(page_args))
    page, anchor = min(pages), min(anchors)
    print(f"derptool {' '.join(page_args)}: {page:.3f} s CPU (best of {opts.repeat}, imports included)")
    print(f"anchor: derptool {' '.join(anchor_args)}: {anchor:.3f} s CPU; page/anchor = {page / anchor:.2f}x")
    print(f"  the page's own cost over the anchor: {page - anchor:.3f} s CPU")

    dmap = load_snapshot().derp_map
    html = ""

    def render_map() -> None:
        nonlocal html
        html = map_page(dmap, source="bundled snapshot").html()

    first, warm = cpu(render_map, opts.repeat)
    print(
        f"map page, library: first render {first:.3f} s CPU (country shapes loaded), warm {warm:.3f} s; "
        f"{len(html.encode()):,} bytes, {len(dmap.region_list())} regions"
    )
    verdict = "ok" if page < 1.0 else "OVER"
    print(f"goal: the full public map's page under 1 s of CPU: {page:.3f} s as a command ({verdict})")

    ids = [r.region_id for r in dmap.region_list()]
    big = impact_of(opts.sites, ids)
    out = b""

    def render_impact() -> None:
        nonlocal out
        out = impact_page(big, dmap, max_increase_ms=50.0).html().encode()

    _, impact_cpu = cpu(render_impact, max(1, opts.repeat // 2))
    size_verdict = "ok" if len(out) < 2_000_000 else "OVER"
    print(
        f"impact page, {opts.sites} sites: {len(out):,} bytes ({len(out) / 1e6:.2f} MB; goal < 2 MB: {size_verdict}), "
        f"{impact_cpu:.3f} s CPU"
    )

    try:
        from derptool.report.page import png_available

        if png_available():
            page_obj = map_page(dmap, source="bundled snapshot")
            start = time.process_time()
            png = page_obj.png()
            print(f"map PNG (resvg): {time.process_time() - start:.3f} s CPU, {len(png):,} bytes")
    except Exception as err:  # reference figure only
        print(f"map PNG: not measured ({err})")


if __name__ == "__main__":
    main()
