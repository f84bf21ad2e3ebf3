"""Where a region is: its country and continent.

Geography comes from the bundled table (``data/geography.json``) for a region whose ID *and* code match a row.
Any other region (a region Tailscale added since, a self-hosted one) is placed by its ``Latitude``/``Longitude``
in the shipped country shapes (:mod:`.countries`), and marked as placed so. A region with neither is *unknown*:
no country, continent or ``eu`` selector matches it, and :attr:`RegionGeo.unknown_why` says why. Measuring
latency needs only this module, not the selectors of :mod:`.geo`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from typing import Any, Literal

from derptool._bundled import data_text
from derptool.derpmap import DERPRegion

CONTINENTS: dict[str, str] = {
    "africa": "AF",
    "antarctica": "AN",
    "asia": "AS",
    "europe": "EU",
    "north-america": "NA",
    "oceania": "OC",
    "south-america": "SA",
}
"""Continent selector names and their two-letter codes."""

CONTINENT_NAMES: dict[str, str] = {
    "AF": "Africa",
    "AN": "Antarctica",
    "AS": "Asia",
    "EU": "Europe",
    "NA": "North America",
    "OC": "Oceania",
    "SA": "South America",
}

_SELECTOR_OF_CODE = {code: name for name, code in CONTINENTS.items()}


def continent_selector(code: str | None) -> str | None:
    """The selector name of a two-letter continent code (``NA`` -> ``north-america``); ``None`` if unknown.

    Shown instead of the code, because a two-letter word is a country as a selector (``na`` is Namibia).
    """
    return _SELECTOR_OF_CODE.get(code) if code else None


@dataclass(frozen=True)
class RegionGeo:
    """Where a region is: ISO country code, continent code and city (``None`` when unknown)."""

    country: str | None = None
    continent: str | None = None
    city: str | None = None
    placed_by: Literal["table", "coordinates"] | None = None
    """``table`` for a region of the geography table, ``coordinates`` for one placed by its Latitude/Longitude."""
    unknown_why: str | None = None
    """For a region without a country: why it could not be placed."""
    distance_km: float = 0.0
    """Placed by coordinates: how far off the country's (simplified) coast the point is; 0 inside it."""
    near: str | None = None
    """Placed by coordinates: another country within a few km of the point (the placement is close to a border)."""
    name: str | None = None
    """The country's name from the shapes, for a country the geography table does not list."""

    @property
    def country_name(self) -> str | None:
        """The country's English short name, when known."""
        if self.country is None:
            return None
        row: dict[str, str] | None = _table()["countries"].get(self.country)
        return row["name"] if row else (self.name or self.country)

    @property
    def how_placed(self) -> str:
        """One line on where the geography came from: for ``map``'s notes and omit's warnings."""
        if self.country is None:
            return f"country unknown: {self.unknown_why or 'not placed'}"
        if self.placed_by == "coordinates":
            where = "inside" if not self.distance_km else f"{self.distance_km:.1f} km off the coast of"
            border = f", {self.near} is within {_BORDER_KM:g} km" if self.near else ""
            return f"placed by its coordinates: {where} {self.country_name} ({self.country}){border}"
        return f"{self.country_name} ({self.country}) from the geography table"

    @property
    def in_eu(self) -> bool:
        """True when the country is a member state of the European Union."""
        return self.country in eu_members()


@cache
def _table() -> dict[str, Any]:
    text = data_text("geography.json")
    return json.loads(text)  # type: ignore[no-any-return]


@cache
def eu_members() -> frozenset[str]:
    """ISO codes of the European Union's member states."""
    return frozenset(_table()["eu_members"])


_BORDER_KM = 5.0  # countries.BORDER_KM, repeated so that this module does not import shapely


def geo_for(region: DERPRegion) -> RegionGeo:
    """The geography of *region*: from the table, else from its coordinates, else unknown (with why)."""
    row = _table()["regions"].get(str(region.region_id))
    if row is not None and row["code"].lower() == region.region_code.lower():
        country = row["country"]
        continent = _table()["countries"][country]["continent"]
        return RegionGeo(country=country, continent=continent, city=row["city"], placed_by="table")
    if region.coordinates_problem:
        return RegionGeo(unknown_why=region.coordinates_problem)
    if region.latitude == 0.0 and region.longitude == 0.0:
        return RegionGeo(unknown_why="not in derptool's geography table and has no Latitude/Longitude")
    return place(region.latitude, region.longitude)


@cache
def place(lat: float, lon: float) -> RegionGeo:
    """The geography of the point (*lat*, *lon*) from the shipped country shapes (``placed_by="coordinates"``),
    or an unknown :class:`RegionGeo` saying why."""
    # Imported here, once per process and only for a region outside the table: shapely and numpy take
    # about 0.4 s to import, which every command that shows a map would otherwise pay.
    from derptool.derpmap.countries import COAST_KM, country_at

    try:
        match = country_at(lat, lon)
    except ValueError as err:
        return RegionGeo(unknown_why=str(err))
    if match is None:
        return RegionGeo(unknown_why=f"coordinates ({lat:g}, {lon:g}) are more than {COAST_KM:g} km from any country")
    code = match.country.code
    row = _table()["countries"].get(code)
    return RegionGeo(
        country=code,
        continent=row["continent"] if row else match.country.continent,
        placed_by="coordinates",
        distance_km=match.distance_km,
        near=match.near,
        name=match.country.name,
    )
