"""Country shapes, and the country a coordinate falls in.

The shapes ship with derptool (``data/countries.geojson``: Natural Earth's 1:50m Admin 0 countries, public
domain, simplified; ``data/README.md`` says how it was made), so placement needs no network. Point-in-polygon
and distances go through shapely.

Two allowances for the simplified shapes:

* coast: a point outside every shape takes the nearest country within :data:`COAST_KM` (a city on the shore, or a
  small island the shapes leave out), with the distance reported;
* border: a point inside two shapes (simplified borders overlap by up to a few hundred metres) takes the one it is
  deepest in, and a point within :data:`BORDER_KM` of another country names that country as ``near``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

import shapely
from shapely.geometry import Point, Polygon
from shapely.strtree import STRtree

from derptool._bundled import data_text

COAST_KM = 25.0
"""How far outside every shape a point may be and still take the nearest country (a coastal city)."""

BORDER_KM = 5.0
"""A placed point this close to another country's shape names that country as ``near``."""

_KM_PER_DEGREE = 111.195  # one degree of a great circle on a sphere of the Earth's mean radius (6371 km)

Ring = tuple[tuple[float, float], ...]
"""A closed ring of (longitude, latitude) pairs; the last pair repeats the first."""


@dataclass(frozen=True)
class Country:
    """One country of the shipped shapes."""

    code: str
    """ISO 3166-1 alpha-2 code (``XK`` for Kosovo, the user-assigned code in common use)."""
    name: str
    continent: str
    """Two-letter continent code: ``AF AN AS EU NA OC SA``."""
    polygons: tuple[tuple[Ring, ...], ...]
    """Each polygon is a tuple of rings: the outer ring first, then its holes."""


@dataclass(frozen=True)
class CountryMatch:
    """The country a coordinate was placed in."""

    country: Country
    distance_km: float
    """0 inside the country's shape; otherwise how far outside it the point is (the coast allowance)."""
    near: str | None = None
    """Another country's code when the point is within :data:`BORDER_KM` of it."""


def _rings(coordinates: Sequence[Sequence[Sequence[float]]]) -> tuple[Ring, ...]:
    return tuple(tuple((float(lon), float(lat)) for lon, lat in ring) for ring in coordinates)


@cache
def load_countries() -> tuple[Country, ...]:
    """Every country of the shipped shapes, sorted by code; loaded once per process."""
    text = data_text("countries.geojson")
    doc: dict[str, Any] = json.loads(text)
    out = []
    for feature in doc["features"]:
        props, geom = feature["properties"], feature["geometry"]
        parts = [geom["coordinates"]] if geom["type"] == "Polygon" else geom["coordinates"]
        out.append(
            Country(
                code=props["iso_a2"],
                name=props["name"],
                continent=props["continent"],
                polygons=tuple(_rings(p) for p in parts),
            )
        )
    return tuple(sorted(out, key=lambda c: c.code))


def country(code: str) -> Country | None:
    """The country with ISO code *code* (any case), or ``None``."""
    return _by_code().get(code.upper())


@cache
def _by_code() -> dict[str, Country]:
    return {c.code: c for c in load_countries()}


@dataclass(frozen=True)
class _Index:
    tree: STRtree
    shapes: list[Polygon]
    owner: list[int]
    """The index in :func:`load_countries` of each shape's country."""


@cache
def _index() -> _Index:
    shapes: list[Polygon] = []
    owner: list[int] = []
    for i, c in enumerate(load_countries()):
        for rings in c.polygons:
            shape = Polygon(rings[0], rings[1:])
            shapely.prepare(shape)
            shapes.append(shape)
            owner.append(i)
    return _Index(STRtree(shapes), shapes, owner)


def _wrap(degrees: float) -> float:
    return (degrees + 180.0) % 360.0 - 180.0


def _km_from(shape: shapely.Geometry, lat: float, lon: float) -> float:
    """Distance in km from (lat, lon) to *shape*, in a local equirectangular frame centred on the point."""
    scale = math.cos(math.radians(lat))

    def local(xy: Any) -> Any:
        out = xy.copy()
        out[:, 0] = ((xy[:, 0] - lon + 180.0) % 360.0 - 180.0) * scale * _KM_PER_DEGREE
        out[:, 1] = (xy[:, 1] - lat) * _KM_PER_DEGREE
        return out

    return float(shapely.distance(shapely.transform(shape, local), Point(0.0, 0.0)))


def _candidates(index: _Index, lat: float, lon: float, km: float) -> list[int]:
    """Shapes whose bounding boxes come within *km* of the point (both sides of the antimeridian)."""
    dlat = km / _KM_PER_DEGREE
    dlon = min(180.0, dlat / max(math.cos(math.radians(min(89.0, abs(lat) + dlat))), 1e-6))
    boxes = [shapely.box(lon - dlon, lat - dlat, lon + dlon, lat + dlat)]
    if lon - dlon < -180.0:
        boxes.append(shapely.box(lon - dlon + 360.0, lat - dlat, 180.0, lat + dlat))
    if lon + dlon > 180.0:
        boxes.append(shapely.box(-180.0, lat - dlat, lon + dlon - 360.0, lat + dlat))
    found: set[int] = set()
    for box in boxes:
        found.update(int(i) for i in index.tree.query(box))
    return sorted(found)


def country_at(lat: float, lon: float) -> CountryMatch | None:
    """The country at latitude *lat*, longitude *lon* (degrees, WGS 84), or ``None`` at sea or off the map.

    Raises :class:`ValueError` for a coordinate that is not finite or out of range.
    """
    if not (math.isfinite(lat) and math.isfinite(lon)) or not (-90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0):
        raise ValueError(f"coordinate ({lat}, {lon}) is out of range (latitude -90..90, longitude -180..180)")
    index = _index()
    countries = load_countries()
    point = Point(lon, lat)
    inside = [int(i) for i in index.tree.query(point, predicate="intersects")]
    reach = max(COAST_KM, BORDER_KM)
    distances: dict[int, float] = {}  # country -> km outside its nearest shape
    for i in _candidates(index, lat, lon, reach):
        if i in inside:
            continue
        km = _km_from(index.shapes[i], lat, lon)
        c = index.owner[i]
        distances[c] = min(km, distances.get(c, math.inf))
    if inside:
        # Overlapping simplified borders: the country the point is deepest inside.
        depth = {c: _km_from(index.shapes[i].boundary, lat, lon) for i in inside for c in [index.owner[i]]}
        chosen, distance = max(depth, key=lambda c: depth[c]), 0.0
        others = {c: 0.0 for c in depth if c != chosen}
    else:
        if not distances:
            return None
        chosen = min(distances, key=lambda c: distances[c])
        distance = distances[chosen]
        if distance > COAST_KM:
            return None
        others = {}
    for c, km in distances.items():
        if c != chosen:
            others[c] = min(km, others.get(c, math.inf))
    near = [c for c, km in others.items() if km <= BORDER_KM]
    near_code = countries[min(near, key=lambda c: others[c])].code if near else None
    return CountryMatch(countries[chosen], round(distance, 3), near_code)
