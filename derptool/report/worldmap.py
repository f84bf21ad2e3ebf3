"""The world map every page shares: country shapes, and one marker per DERP region at its coordinates.

A marker is a ``<g class="region">`` carrying ``data-region-id``, ``data-state`` (one of :data:`STATES`) and,
when measured, ``data-latency-ms``; its ``<title>`` (the hover text) names code, city, country, nodes and
latency. Regions without coordinates (Latitude and Longitude both 0, as headscale maps often leave them) are
drawn in a row under the map, so every region of the map has its marker.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from derptool.derpmap import DERPMap, DERPRegion
from derptool.derpmap.countries import load_countries
from derptool.derpmap.geography import geo_for
from derptool.report.svg import FONT, MAP_HEIGHT, MAP_WIDTH, el, latency_colour, latency_legend, project, ring_path
from derptool.report.svg import text as svg_text
from derptool.report.svg import title as svg_title

State = Literal["kept", "omitted", "self-hosted", "unknown"]
STATES: tuple[State, ...] = ("kept", "omitted", "self-hosted", "unknown")
"""``kept``: the region stays; ``omitted``: the geofence or policy removes it; ``self-hosted``: a region in the
custom ID range (900-999) or one a policy adds; ``unknown``: named by a report or a diff but not in the map, so
its fate and place are not known."""

STATE_COLOURS: dict[State, str] = {
    "kept": "#2b6cb0",
    "omitted": "#bdbdbd",
    "self-hosted": "#805ad5",
    "unknown": "#ffffff",
}


class CountryShape(Protocol):
    """A country of the shipped shape dataset: ISO alpha-2 code, name, and polygons of (lon, lat) rings."""

    @property
    def code(self) -> str: ...

    @property
    def name(self) -> str: ...

    @property
    def polygons(self) -> Sequence[Any]: ...


@dataclass(frozen=True)
class RegionMark:
    """One region as a map marker."""

    id: int
    code: str
    name: str
    state: State
    city: str | None = None
    country: str | None = None
    """ISO alpha-2 code, when the region is in the geography table."""
    country_name: str | None = None
    nodes: int = 0
    lat: float | None = None
    lon: float | None = None
    """Coordinates; ``None`` when the map gives none."""
    latency_ms: float | None = None
    note: str = ""
    """Extra words for the hover text (``changed``, ``home before``...)."""

    @property
    def placed(self) -> bool:
        """True when the region has coordinates to draw it at."""
        return self.lat is not None and self.lon is not None

    def hover(self, *, measured: bool) -> str:
        """The hover text: code, name, city, country, region ID, nodes, latency and state."""
        where = ", ".join(x for x in (self.city, self.country_name) if x and x != self.name)
        country = f" ({self.country})" if self.country and self.country_name != self.country else ""
        parts = [f"{self.code}: {self.name}" + (f" — {where}{country}" if where else "")]
        parts.append(f"region {self.id}, {self.nodes} node{'s' if self.nodes != 1 else ''}")
        if measured:
            parts.append("latency " + ("not measured" if self.latency_ms is None else f"{self.latency_ms:.1f} ms"))
        parts.append(self.state + (f", {self.note}" if self.note else ""))
        return "\n".join(parts)


def mark_region(
    region: DERPRegion, state: State | None = None, *, latency_ms: float | None = None, note: str = ""
) -> RegionMark:
    """A marker for *region* (state ``self-hosted`` for custom IDs, else ``kept``, unless *state* is given)."""
    geo = geo_for(region)
    lat, lon = region.latitude, region.longitude
    placed = _on_earth(lat, lon) and not (lat == 0 and lon == 0)
    if not placed and not (lat == 0 and lon == 0):
        note = ", ".join(x for x in (note, f"coordinates ({lat}, {lon}) are not on Earth") if x)
    return RegionMark(
        id=region.region_id,
        code=region.region_code,
        name=region.region_name,
        state=state or ("self-hosted" if region.is_custom else "kept"),
        city=geo.city,
        country=geo.country,
        country_name=geo.country_name,
        nodes=len(region.nodes),
        lat=region.latitude if placed else None,
        lon=region.longitude if placed else None,
        latency_ms=latency_ms,
        note=note,
    )


def _on_earth(lat: float, lon: float) -> bool:
    return math.isfinite(lat) and math.isfinite(lon) and -90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0


def marks_for_map(
    dmap: DERPMap,
    *,
    omitted: Iterable[int] = (),
    latencies: Mapping[int, float | None] | None = None,
) -> list[RegionMark]:
    """A marker per region of *dmap*: ``omitted`` for the IDs in *omitted*, latency from *latencies*."""
    gone = set(omitted)
    lat = latencies or {}
    return [
        mark_region(r, "omitted" if r.region_id in gone else None, latency_ms=lat.get(r.region_id))
        for r in dmap.region_list()
    ]


# -- drawing ------------------------------------------------------------------------------------------------------

_UNPLACED_ROW = 34.0
_UNPLACED_PER_ROW = 12


def _rings(polygons: Sequence[Any]) -> Iterable[Sequence[Sequence[float]]]:
    """The rings of *polygons*, given as rings or as polygons of rings."""
    for item in polygons:
        if item and isinstance(item[0][0], int | float):
            yield item
        else:
            yield from item


def countries_svg(countries: Iterable[CountryShape], *, highlight: Mapping[str, str] | None = None) -> str:
    """The country shapes, one ``<path>`` each (filled with *highlight*'s colour for its ISO code, if any)."""
    shade = highlight or {}
    paths = []
    for c in countries:
        d = ring_path(_rings(c.polygons))
        if d:
            paths.append(
                el(
                    "path",
                    {"d": d, "data_country": c.code, "fill": shade.get(c.code.upper())},
                    svg_title(f"{c.name} ({c.code})"),
                )
            )
    return el("g", {"class": "countries"}, paths)


def _shape(mark: RegionMark, x: float, y: float, fill: str) -> list[str]:
    if mark.state == "self-hosted":
        r = 6.0
        d = f"M{x:.1f} {y - r:.1f}L{x + r:.1f} {y:.1f}L{x:.1f} {y + r:.1f}L{x - r:.1f} {y:.1f}Z"
        return [el("path", {"d": d, "fill": fill, "class": "mark"})]
    if mark.state == "unknown":
        return [el("circle", {"cx": x, "cy": y, "r": 4.5, "fill": fill, "class": "mark"})]
    shapes = [el("circle", {"cx": x, "cy": y, "r": 4.5, "fill": fill, "class": "mark"})]
    if mark.state == "omitted":
        s = 4.2
        shapes.append(el("path", {"d": f"M{x - s:.1f} {y - s:.1f}L{x + s:.1f} {y + s:.1f}", "class": "strike"}))
        shapes.append(el("path", {"d": f"M{x - s:.1f} {y + s:.1f}L{x + s:.1f} {y - s:.1f}", "class": "strike"}))
    return shapes


def _marker(mark: RegionMark, x: float, y: float, *, measured: bool) -> str:
    fill = latency_colour(mark.latency_ms) if measured and mark.state != "omitted" else STATE_COLOURS[mark.state]
    label = svg_text(x + 8.0, y + 3.0, mark.code, class_="code")
    return el(
        "g",
        {
            "class": f"region {mark.state}",
            "data_region_id": mark.id,
            "data_state": mark.state,
            "data_code": mark.code,
            "data_latency_ms": None if mark.latency_ms is None else f"{mark.latency_ms:.1f}",
        },
        [svg_title(mark.hover(measured=measured)), *_shape(mark, x, y, fill), label],
    )


def _legend(y: float, *, measured: bool, states: set[State]) -> str:
    items: list[str] = []
    x = 10.0
    for state in STATES:
        if state not in states:
            continue
        probe = RegionMark(0, "", "", state)
        fill = latency_colour(30.0) if measured and state in ("kept", "self-hosted") else STATE_COLOURS[state]
        items.append(el("g", {"class": f"key {state}"}, [*_shape(probe, x + 6.0, y + 6.0, fill)]))
        items.append(svg_text(x + 16.0, y + 10.0, state, class_="tick"))
        x += 28.0 + 7.0 * len(state)
    if measured:
        items.append(latency_legend(max(x + 20.0, 380.0), y + 1.0))
    return el("g", {"class": "legend"}, items)


def world_map_svg(
    marks: Sequence[RegionMark], countries: Iterable[CountryShape], *, measured: bool = False, caption: str = ""
) -> str:
    """The whole map as one ``<svg>``: countries, a marker per region (placed ones drawn far-to-near so none
    hides a kept one), a row of unplaced ones, and a legend.

    *measured*: colour markers by latency (the page was given a report); otherwise by state.
    """
    placed = [m for m in marks if m.placed]
    unplaced = [m for m in marks if not m.placed]
    order = {"omitted": 0, "unknown": 1, "kept": 2, "self-hosted": 3}
    placed.sort(key=lambda m: (order[m.state], m.id))
    body = [el("rect", {"class": "sea", "width": MAP_WIDTH, "height": MAP_HEIGHT}), countries_svg(countries)]
    body.append(
        el(
            "g",
            {"class": "regions"},
            [_marker(m, *project(m.lon or 0.0, m.lat or 0.0), measured=measured) for m in placed],
        )
    )
    height = MAP_HEIGHT
    if unplaced:
        rows = math.ceil(len(unplaced) / _UNPLACED_PER_ROW)
        strip = [svg_text(10.0, height + 18.0, "Regions without coordinates:", class_="tick")]
        for i, m in enumerate(unplaced):
            row, col = divmod(i, _UNPLACED_PER_ROW)
            x = 190.0 + col * (MAP_WIDTH - 200.0) / _UNPLACED_PER_ROW
            strip.append(_marker(m, x, height + 14.0 + row * _UNPLACED_ROW, measured=measured))
        body.append(el("g", {"class": "regions unplaced"}, strip))
        height += rows * _UNPLACED_ROW + 4.0
    body.append(_legend(height + 6.0, measured=measured, states={m.state for m in marks}))
    height += 36.0
    if caption:
        body.insert(0, svg_title(caption))
    return el(
        "svg",
        {
            "xmlns": "http://www.w3.org/2000/svg",
            "class": "worldmap",
            "viewBox": f"0 0 {MAP_WIDTH:g} {height:.0f}",
            "width": f"{MAP_WIDTH:g}",
            "height": f"{height:.0f}",
            "role": "img",
            "aria_label": caption or "DERP regions on a world map",
        },
        [_MAP_STYLE, *body],
    )


_MAP_STYLE = (
    "<style>"
    f"text{{{FONT}}}"
    ".sea{fill:#eef4fa}.countries path{fill:#dfe3e8;stroke:#fff;stroke-width:.5}"
    ".mark{stroke:#1a202c;stroke-width:1}.unknown .mark{stroke-dasharray:2 1.5}"
    ".region.omitted{opacity:.85}.region.omitted .code{fill:#777;text-decoration:line-through}"
    ".strike{stroke:#c53030;stroke-width:2}.self-hosted .mark{stroke:#322659;stroke-width:1.5}"
    ".code{font-size:8px;fill:#1a202c}.tick{font-size:10px;fill:#333}"
    ".region:hover .mark{stroke-width:2.5}"
    "</style>"
)


def shipped_countries() -> Sequence[CountryShape]:
    """The country shapes shipped with derptool (the dataset that places regions by their coordinates)."""
    return load_countries()


def marks_table_rows(marks: Sequence[RegionMark], *, measured: bool) -> list[list[str]]:
    """The markers as table rows (ID, code, name, city, country, nodes, [latency,] state)."""
    rows = []
    for m in sorted(marks, key=lambda m: m.id):
        row = [str(m.id), m.code, m.name, m.city or "-", m.country or "-", str(m.nodes)]
        if measured:
            row.append("-" if m.latency_ms is None else f"{m.latency_ms:.1f} ms")
        row.append(m.state + (f" ({m.note})" if m.note else ""))
        rows.append(row)
    return rows
