"""The page of ``derptool impact``: which regions a geofence removes, and what it costs each site.

The bar chart has one bar per site (``data-site``), sorted worst first: sites left with no region, then by
the increase of the round trip to their home region; the ``--max-increase`` budget is a dashed line.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from derptool.derpmap import DERPMap
from derptool.fleet.impact import Impact, SiteImpact
from derptool.report.page import Page, Section, table
from derptool.report.svg import FONT, el
from derptool.report.svg import text as svg_text
from derptool.report.svg import title as svg_title
from derptool.report.worldmap import CountryShape, mark_region, shipped_countries, world_map_svg

ROW = 15.0
_LABEL_W = 230.0
_BAR_X = 240.0
_BAR_W = 500.0
_WIDTH = 1000.0
PICTURE_ROWS = 40
"""Bars drawn in the PNG picture (the page has them all)."""


@dataclass(frozen=True)
class SiteBar:
    """One site of the chart: its home before and after (``after_code`` None: no region left)."""

    site: str
    before_code: str
    before_ms: float
    after_code: str | None
    after_ms: float | None

    @property
    def increase_ms(self) -> float | None:
        """The added round trip (None when no region is left)."""
        return None if self.after_ms is None else self.after_ms - self.before_ms

    @property
    def moved(self) -> bool:
        """True when the home region changes."""
        return self.after_code is None or self.after_code != self.before_code


def bars_from_impact(impact: Impact) -> list[SiteBar]:
    """The sites of *impact* as chart bars."""
    return [_bar(s) for s in impact.sites]


def _bar(s: SiteImpact) -> SiteBar:
    after = s.after
    return SiteBar(
        s.site,
        s.before.code,
        s.before.latency_ms,
        None if after is None else after.code,
        None if after is None else after.latency_ms,
    )


def _order(b: SiteBar) -> tuple[bool, float, str]:
    inc = b.increase_ms
    return (inc is not None, -(inc if inc is not None else 0.0), b.site)


def _short(name: str, room: int = 34) -> str:
    return name if len(name) <= room else name[: room - 1] + "…"


def _ms(v: float) -> str:
    return f"{v:.1f}"


def impact_chart_svg(bars: Sequence[SiteBar], *, max_increase_ms: float | None = None, limit: int | None = None) -> str:
    """The sorted bar chart of the increase per site, with the budget line when *max_increase_ms* is given.

    *limit* draws only the worst that many bars and says how many more there are.
    """
    ordered = sorted(bars, key=_order)
    shown = ordered if limit is None else ordered[:limit]
    finite = [b.increase_ms for b in ordered if b.increase_ms is not None and math.isfinite(b.increase_ms)]
    lo = min([0.0, *finite])
    hi = max([1.0, *finite, *([max_increase_ms * 1.1] if max_increase_ms is not None else [])])
    span = hi - lo

    def x_of(v: float) -> float:
        return _BAR_X + (v - lo) / span * _BAR_W

    top = 30.0
    rows: list[str] = []
    for i, b in enumerate(shown):
        y = top + i * ROW
        inc = b.increase_ms
        over = inc is None or (max_increase_ms is not None and inc > max_increase_ms)
        if inc is None:
            shape = el("rect", {"x": _BAR_X, "y": y + 2.0, "width": _BAR_W, "height": ROW - 4.0, "class": "stranded"})
            value = f"{b.before_code} {_ms(b.before_ms)} ms → no region left"
        else:
            x0, x1 = sorted((x_of(0.0), x_of(inc)))
            cls = "over" if over else ("faster" if inc < 0 else ("same" if not b.moved else "within"))
            shape = el("rect", {"x": x0, "y": y + 2.0, "width": max(x1 - x0, 1.0), "height": ROW - 4.0, "class": cls})
            value = (
                f"{b.before_code} {_ms(b.before_ms)} → {b.after_code} {_ms(b.after_ms or 0.0)} ms ({inc:+.1f})"
                if b.moved
                else f"{b.before_code} {_ms(b.before_ms)} ms, unchanged"
            )
        rows.append(
            el(
                "g",
                {
                    "class": "bar",
                    "data_site": b.site,
                    "data_increase_ms": None if inc is None else f"{inc:.1f}",
                    "data_over": "true" if over else "false",
                },
                [
                    svg_title(f"{b.site}: {value}"),
                    svg_text(_LABEL_W, y + ROW - 4.0, _short(b.site), class_="site", text_anchor="end"),
                    shape,
                    svg_text(_BAR_X + _BAR_W + 8.0, y + ROW - 4.0, value, class_="val"),
                ],
            )
        )
    bottom = top + len(shown) * ROW
    axis = [
        el("line", {"x1": x_of(0.0), "y1": top - 4.0, "x2": x_of(0.0), "y2": bottom, "class": "zero"}),
        svg_text(x_of(0.0), top - 8.0, "0 ms", class_="tick", text_anchor="middle"),
        svg_text(_BAR_X + _BAR_W, top - 8.0, f"{hi:+.0f} ms", class_="tick", text_anchor="end"),
    ]
    if lo < 0:
        axis.append(svg_text(_BAR_X, top - 8.0, f"{lo:+.0f} ms", class_="tick"))
    if max_increase_ms is not None:
        bx = x_of(max_increase_ms)
        axis.append(
            el(
                "g",
                {"class": "budget", "data_max_increase_ms": f"{max_increase_ms:g}"},
                [
                    svg_title(f"--max-increase {max_increase_ms:g} ms"),
                    el("line", {"x1": bx, "y1": top - 14.0, "x2": bx, "y2": bottom + 4.0}),
                    svg_text(bx, bottom + 16.0, f"budget {max_increase_ms:g} ms", class_="tick", text_anchor="middle"),
                ],
            )
        )
    height = bottom + 24.0
    if len(shown) < len(ordered):
        axis.append(svg_text(_BAR_X, bottom + 30.0, f"and {len(ordered) - len(shown)} more sites", class_="tick"))
        height += 14.0
    return el(
        "svg",
        {
            "xmlns": "http://www.w3.org/2000/svg",
            "class": "impactchart",
            "viewBox": f"0 0 {_WIDTH:g} {height:.0f}",
            "width": f"{_WIDTH:g}",
            "height": f"{height:.0f}",
            "role": "img",
            "aria_label": "latency increase per site",
        },
        [_CHART_STYLE, *axis, el("g", {"class": "bars"}, rows)],
    )


_CHART_STYLE = (
    "<style>"
    f"text{{{FONT}}}"
    ".bar .within{fill:#3182ce}.bar .over{fill:#e53e3e}.bar .faster{fill:#38a169}.bar .same{fill:#a0aec0}"
    ".bar .stranded{fill:#fed7d7;stroke:#c53030;stroke-width:1.5;stroke-dasharray:4 2}"
    ".site,.val{font-size:10px;fill:#1a202c}.tick{font-size:10px;fill:#333}"
    ".zero{stroke:#4a5568;stroke-width:1}.budget line{stroke:#c53030;stroke-width:1.5;stroke-dasharray:5 3}"
    ".bar:hover .site{font-weight:bold}"
    "</style>"
)


def bar_rows(bars: Sequence[SiteBar], max_increase_ms: float | None) -> tuple[list[list[str]], list[dict[str, str]]]:
    """The table rows of the bars (worst first) and their attributes (class ``over`` past the budget)."""
    rows, attrs = [], []
    for b in sorted(bars, key=_order):
        inc = b.increase_ms
        over = inc is None or (max_increase_ms is not None and inc > max_increase_ms)
        rows.append(
            [
                b.site,
                b.before_code,
                f"{b.before_ms:.1f} ms",
                b.after_code or "none",
                "-" if b.after_ms is None else f"{b.after_ms:.1f} ms",
                "no region left" if inc is None else ("unchanged" if not b.moved else f"{inc:+.1f} ms"),
            ]
        )
        attrs.append({"data_site": b.site, "class": "over" if over else ""})
    return rows, attrs


SITE_HEADERS = ["SITE", "HOME BEFORE", "LATENCY", "HOME AFTER", "LATENCY", "INCREASE"]


def sites_section(bars: Sequence[SiteBar], max_increase_ms: float | None, heading: str) -> Section:
    """A section with the chart (all bars on the page, the worst :data:`PICTURE_ROWS` in the PNG) and the
    table of sites."""
    rows, attrs = bar_rows(bars, max_increase_ms)
    return Section(
        heading,
        table(SITE_HEADERS, rows, row_attrs=attrs, numeric=(2, 4, 5)),
        figure=impact_chart_svg(bars, max_increase_ms=max_increase_ms),
        picture=impact_chart_svg(bars, max_increase_ms=max_increase_ms, limit=PICTURE_ROWS)
        if len(bars) > PICTURE_ROWS
        else None,
    )


def home_counts(bars: Iterable[SiteBar]) -> tuple[Mapping[str, int], Mapping[str, int]]:
    """How many sites each region (by code) is home to, before and after."""
    before = Counter(b.before_code for b in bars)
    after = Counter(b.after_code for b in bars if b.after_code is not None)
    return before, after


def impact_page(
    impact: Impact,
    dmap: DERPMap,
    *,
    max_increase_ms: float | None = None,
    map_description: str = "",
    countries: Iterable[CountryShape] | None = None,
) -> Page:
    """A page of *impact* over *dmap*: the map with the removed regions struck out (each region's hover says
    how many sites it is home to, before and after), the sorted bar chart, and the table of sites."""
    bars = bars_from_impact(impact)
    before, after = home_counts(bars)
    gone = set(impact.omitted)
    marks = []
    for r in dmap.region_list():
        b, a = before.get(r.region_code, 0), after.get(r.region_code, 0)
        note = f"home of {b} site(s) before, {a} after" if a or b else ""
        marks.append(mark_region(r, "omitted" if r.region_id in gone else None, note=note))
    moved = sum(1 for b in bars if b.moved and b.after_code is not None)
    stranded = sum(1 for b in bars if b.after_code is None)
    worst = impact.worst
    summary = [
        f"Removing {len(gone)} of {len(dmap.region_list())} regions"
        + (f"; map: {map_description}" if map_description else ""),
        f"{len(bars)} sites, {moved} change home region, {stranded} left with no measured region"
        + (
            f"; worst increase {worst.increase_ms:+.1f} ms ({worst.site})"
            if worst is not None and worst.increase_ms is not None
            else ""
        ),
    ]
    if max_increase_ms is not None:
        over = impact.over_budget(max_increase_ms)
        summary.append(f"{len(over)} site(s) over the budget of {max_increase_ms:g} ms (--max-increase)")
    shapes = shipped_countries() if countries is None else countries
    regions = Section(
        "Regions",
        "",
        figure=world_map_svg(marks, shapes, caption="DERP regions kept and removed by the geofence"),
    )
    return Page("DERP geofence impact", summary, [regions, sites_section(bars, max_increase_ms, "Sites")])
