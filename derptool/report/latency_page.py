"""The page of ``derptool latency``: the world map coloured by the measured latency, and the region table."""

from __future__ import annotations

import time
from collections.abc import Iterable

from derptool.derpmap import DERPMap
from derptool.net.netcheck.report import Report
from derptool.report.page import Page, Section, table
from derptool.report.worldmap import CountryShape, RegionMark, mark_region, shipped_countries, world_map_svg


def _yes_no(value: bool | None) -> str:
    return "unknown" if value is None else ("yes" if value else "no")


def latency_page(report: Report, dmap: DERPMap, *, countries: Iterable[CountryShape] | None = None) -> Page:
    """A page of *report*: each region of *dmap* coloured by its latency (grey when it did not answer), the
    home region noted, and the regions in latency order. A region the report has and *dmap* lacks is
    ``unknown``."""
    by_id = {r.id: r for r in report.regions}
    marks: list[RegionMark] = []
    for region in dmap.region_list():
        result = by_id.get(region.region_id)
        note = "home" if region.region_id == report.preferred_region else ""
        if result is not None and result.error and result.latency_ms is None:
            note = result.error
        marks.append(mark_region(region, latency_ms=None if result is None else result.latency_ms, note=note))
    for r in report.regions:
        if r.id not in dmap.regions or dmap.regions[r.id] is None:
            marks.append(RegionMark(r.id, r.code, r.name, "unknown", country=r.country, latency_ms=r.latency_ms))
    pref = report.preferred
    summary = [
        f"Nearest DERP: {pref.name} ({pref.code}, region {pref.id})" if pref else "Nearest DERP: none",
        f"{len(report.reachable)} of {len(report.regions)} regions answered in {report.duration_s:.2f} s; "
        f"UDP: {_yes_no(report.udp)}, IPv4: {_yes_no(report.ipv4)}, IPv6: {_yes_no(report.ipv6)}; "
        f"map: {report.map_source}",
    ]
    if report.started:
        summary.append("measured " + time.strftime("%Y-%m-%d %H:%M:%S %Z", time.localtime(report.started)))
    rows = []
    attrs = []
    for r in report.regions:
        rows.append(
            [
                "*" if r.id == report.preferred_region else "",
                str(r.id),
                r.code,
                r.name,
                r.country or "-",
                "-" if r.latency_ms is None else f"{r.latency_ms:.1f} ms",
                r.method or "-",
                r.node or "-",
                r.error or ("Avoid: never preferred" if r.avoid else ""),
            ]
        )
        attrs.append({"data_region_id": r.id})
    headers = ["HOME", "ID", "CODE", "NAME", "COUNTRY", "LATENCY", "VIA", "NODE", "NOTE"]
    shapes = shipped_countries() if countries is None else countries
    section = Section(
        "Latency by region",
        table(headers, rows, row_attrs=attrs, numeric=(1, 5)),
        figure=world_map_svg(marks, shapes, measured=True, caption="DERP regions coloured by latency"),
    )
    return Page("DERP latency", summary, [section])
