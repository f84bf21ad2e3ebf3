"""Shared drawing: SVG elements with every value escaped, the map projection, and the latency colour scale.

The pages are written as plain SVG and HTML text: a handful of element kinds (path, circle, rect, line,
text, title, group) need no SVG library, and writing them directly keeps every attribute (``data-*``, titles)
under our control and every value escaped, whatever a map or report names its regions.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Mapping, Sequence
from html import escape

FONT = "font-family:'DejaVu Sans',Arial,'Liberation Sans',Helvetica,sans-serif"
"""The fonts of every SVG text (resvg, drawing the PNG, needs a family it can find; browsers too)."""

Attrs = Mapping[str, str | int | float | None]


def esc(text: object) -> str:
    """*text* escaped for HTML or SVG text and attribute values (quotes included)."""
    return escape(str(text), quote=True)


def num(value: float) -> str:
    """A coordinate written short: at most one decimal, no trailing ``.0``."""
    text = f"{value:.1f}"
    return text[:-2] if text.endswith(".0") else text


def _attrs(attrs: Attrs) -> str:
    parts = []
    for name, value in attrs.items():
        if value is None:
            continue
        text = num(value) if isinstance(value, float) else str(value)
        parts.append(f' {name.rstrip("_").replace("_", "-")}="{esc(text)}"')
    return "".join(parts)


def el(tag: str, attrs: Attrs | None = None, children: Iterable[str] | str = ()) -> str:
    """One element: ``<tag attrs>children</tag>`` (self-closed when it has no children).

    Attribute names use ``_`` for ``-`` (``data_region_id``); values are escaped; ``None`` leaves one out.
    *children* are markup already built (escape text with :func:`esc`).
    """
    inner = children if isinstance(children, str) else "".join(children)
    head = f"<{tag}{_attrs(attrs or {})}"
    return f"{head}>{inner}</{tag}>" if inner else f"{head}/>"


def title(text: str) -> str:
    """A ``<title>``: the tooltip a browser shows on hover."""
    return f"<title>{esc(text)}</title>"


def text(x: float, y: float, content: str, **attrs: str | int | float | None) -> str:
    """A ``<text>`` at (*x*, *y*) with *content* escaped."""
    return el("text", {"x": x, "y": y, **attrs}, esc(content))


# -- the world map's projection --------------------------------------------------------------------------------

MAP_WIDTH = 1000.0
NORTH, SOUTH = 84.0, -58.0
"""The latitudes the map shows (no DERP region lies in the polar caps)."""
MAP_HEIGHT = MAP_WIDTH * (NORTH - SOUTH) / 360.0


def project(lon: float, lat: float) -> tuple[float, float]:
    """(x, y) on the map of a longitude and latitude (equirectangular; latitudes outside the map are clamped)."""
    lat = min(NORTH, max(SOUTH, lat))
    return (lon + 180.0) / 360.0 * MAP_WIDTH, (NORTH - lat) / (NORTH - SOUTH) * MAP_HEIGHT


def ring_path(rings: Iterable[Sequence[Sequence[float]]], *, tolerance: float = 0.7) -> str:
    """An SVG path ``d`` for closed rings of (lon, lat) pairs.

    A point closer than *tolerance* map units to the last one kept is dropped, and a ring smaller than that
    is left out: the map stays the same to the eye at a fraction of the size.
    """
    out: list[str] = []
    for ring in rings:
        pts: list[str] = []
        lx = ly = math.inf
        xs: list[float] = []
        ys: list[float] = []
        for lon, lat in ring:
            x, y = project(lon, lat)
            if abs(x - lx) < tolerance and abs(y - ly) < tolerance:
                continue
            if pts and abs(x - lx) > MAP_WIDTH / 2:  # across the antimeridian: no line over the whole map
                pts.append(f"Z M{num(x)} {num(y)}")
                lx, ly = x, y
                continue
            pts.append(f"{num(x)} {num(y)}")
            xs.append(x)
            ys.append(y)
            lx, ly = x, y
        if len(pts) >= 3 and max(max(xs) - min(xs), max(ys) - min(ys)) >= tolerance:
            out.append(("M" + "L".join(pts) + "Z").replace("LZ M", "Z M"))
    return "".join(out)


# -- colours ----------------------------------------------------------------------------------------------------

LATENCY_STOPS: tuple[tuple[float, tuple[int, int, int]], ...] = (
    (5.0, (26, 152, 80)),
    (30.0, (145, 207, 96)),
    (80.0, (254, 224, 139)),
    (150.0, (252, 141, 89)),
    (300.0, (215, 48, 39)),
)
"""Latency (ms) to colour: green when near, yellow at a continent's width, red across the world (log scale)."""

UNMEASURED = "#9e9e9e"


def latency_colour(ms: float | None) -> str:
    """The fill for a region measured at *ms* (grey when not measured or not finite)."""
    if ms is None or not math.isfinite(ms):
        return UNMEASURED
    first, last = LATENCY_STOPS[0], LATENCY_STOPS[-1]
    if ms <= first[0]:
        rgb = first[1]
    elif ms >= last[0]:
        rgb = last[1]
    else:
        lo, hi = next((a, b) for a, b in itertools.pairwise(LATENCY_STOPS) if ms <= b[0])
        t = (math.log(ms) - math.log(lo[0])) / (math.log(hi[0]) - math.log(lo[0]))
        rgb = (
            round(lo[1][0] + (hi[1][0] - lo[1][0]) * t),
            round(lo[1][1] + (hi[1][1] - lo[1][1]) * t),
            round(lo[1][2] + (hi[1][2] - lo[1][2]) * t),
        )
    return "#{:02x}{:02x}{:02x}".format(*rgb)


def latency_legend(x: float, y: float, width: float = 240.0) -> str:
    """A colour bar for the latency scale, with its ticks in ms."""
    lo, hi = math.log(LATENCY_STOPS[0][0]), math.log(LATENCY_STOPS[-1][0])
    steps = 48
    cells = [
        el(
            "rect",
            {
                "x": x + width * i / steps,
                "y": y,
                "width": width / steps + 0.6,
                "height": 10.0,
                "fill": latency_colour(math.exp(lo + (hi - lo) * (i + 0.5) / steps)),
            },
        )
        for i in range(steps)
    ]
    ticks = []
    for ms in (5, 10, 30, 100, 300):
        tx = x + width * (math.log(ms) - lo) / (hi - lo)
        ticks.append(el("line", {"x1": tx, "y1": y + 10.0, "x2": tx, "y2": y + 14.0, "stroke": "#555"}))
        ticks.append(text(tx, y + 24.0, f"{ms}", text_anchor="middle", class_="tick"))
    label = text(x + width + 8.0, y + 9.0, "ms round trip (grey: not measured)", class_="tick")
    return el("g", {"class": "legend latency"}, [*cells, *ticks, label])
