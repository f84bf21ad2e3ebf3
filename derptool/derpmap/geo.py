"""Region geography and region selectors.

A selector names a set of regions of a map, case-insensitively:

* ``all``;
* a region ID (``1``) or a region code (``nyc``);
* an ISO 3166-1 alpha-2 country code (``us``, ``DE``);
* ``eu``: the member states of the European Union (the jurisdiction data-residency rules name; the UK is not in it);
* a continent by name: ``africa``, ``antarctica``, ``asia``, ``europe``, ``north-america``, ``oceania``,
  ``south-america`` (never by two-letter code: ``NA`` is Namibia);
* ``unknown``: the regions whose country is unknown (see below), so that an allow-list can keep them on purpose;
* an explicit reading, when a word could mean two things: ``id:1``, ``code:nyc``, ``country:de``,
  ``continent:europe``.

Geography comes from the bundled table (``data/geography.json``) for a region whose ID *and* code match a row.
Any other region (a region Tailscale added since, a self-hosted one) is placed by its ``Latitude``/``Longitude``
in the shipped country shapes (:mod:`.countries`), and marked as placed so. A region with neither is *unknown*:
no country, continent or ``eu`` selector matches it, and :attr:`RegionGeo.unknown_why` says why.
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any, Literal

from derptool.derpmap import DERPMap, DERPRegion
from derptool.errors import SelectorError

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

_PREFIXES = ("id", "code", "country", "continent")


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
    text = resources.files("derptool.data").joinpath("geography.json").read_text(encoding="utf-8")
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


@dataclass
class Resolution:
    """The result of resolving selectors: matching region IDs, and notes to show the user."""

    region_ids: list[int] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    matches: dict[str, list[int]] = field(default_factory=dict)
    """Region IDs matched by each selector, as the user wrote it."""
    geographic: bool = False
    """True when a selector was read as a country, continent or ``eu`` (which unknown regions never match)."""


def _by_country(dmap: DERPMap, countries: set[str]) -> list[int]:
    return [r.region_id for r in dmap.region_list() if geo_for(r).country in countries]


def _by_continent(dmap: DERPMap, continent: str) -> list[int]:
    return [r.region_id for r in dmap.region_list() if geo_for(r).continent == continent]


def _normalise_continent(word: str) -> str:
    return word.replace("_", "-").replace(" ", "-")


def _candidates(dmap: DERPMap) -> list[str]:
    words = ["all", "eu", "unknown", *CONTINENTS]
    for r in dmap.region_list():
        words.append(str(r.region_id))
        words.append(r.region_code.lower())
        country = geo_for(r).country
        if country:
            words.append(country.lower())
    return sorted(set(words))


def _no_match(selector: str, dmap: DERPMap, why: str) -> SelectorError:
    close = difflib.get_close_matches(selector.lower(), _candidates(dmap), n=4, cutoff=0.5)
    hint = f"; did you mean {', '.join(close)}?" if close else "; run 'derptool map' to list the regions"
    return SelectorError(f"region selector {selector!r} {why}{hint}")


def resolve_one(selector: str, dmap: DERPMap) -> tuple[list[int], str | None]:
    """Resolve one selector against *dmap*: the matching region IDs and an optional note on its reading."""
    raw = selector.strip()
    word = raw.lower()
    if not word:
        raise SelectorError("empty region selector; give an ID, code, country, continent, 'eu' or 'all'")
    regions = dmap.region_list()
    by_code = {r.region_code.lower(): r.region_id for r in regions}

    if ":" in word:
        kind, _, value = word.partition(":")
        if kind not in _PREFIXES:
            raise SelectorError(
                f"region selector {raw!r}: unknown prefix {kind!r}; use one of {', '.join(p + ':' for p in _PREFIXES)}"
            )
        if kind == "id":
            if (
                not (value.isascii() and value.isdigit())
                or int(value) not in dmap.regions
                or dmap.regions[int(value)] is None
            ):
                raise _no_match(raw, dmap, "names no region ID of this map")
            return [int(value)], None
        if kind == "code":
            if value not in by_code:
                raise _no_match(value, dmap, "names no region code of this map")
            return [by_code[value]], None
        if kind == "country":
            ids = _by_country(dmap, {value.upper()})
            if not ids:
                raise _no_match(value, dmap, "names no country with regions in this map")
            return ids, None
        cont = CONTINENTS.get(_normalise_continent(value))
        if cont is None:
            raise SelectorError(f"region selector {raw!r}: unknown continent; use one of {', '.join(CONTINENTS)}")
        ids = _by_continent(dmap, cont)
        if not ids:
            raise _no_match(value, dmap, "matches no region of this map")
        return ids, None

    if word == "all":
        return [r.region_id for r in regions], None
    if word == "unknown" and word not in by_code:
        return [r.region_id for r in regions if geo_for(r).country is None], None
    if word.isascii() and word.isdigit():
        rid = int(word)
        if rid not in dmap.regions or dmap.regions[rid] is None:
            raise _no_match(raw, dmap, "names no region ID of this map")
        return [rid], None

    readings: list[tuple[str, list[int]]] = []
    if word in by_code:
        readings.append((f"region code {word} (region {by_code[word]})", [by_code[word]]))
    if word == "eu":
        readings.append(("the European Union", _by_country(dmap, set(eu_members()))))
    elif len(word) == 2 and word.isalpha():
        readings.append((f"country {word.upper()}", _by_country(dmap, {word.upper()})))
    cont = CONTINENTS.get(_normalise_continent(word))
    if cont is not None:
        readings.append((f"continent {CONTINENT_NAMES[cont]}", _by_continent(dmap, cont)))

    if not readings:
        raise _no_match(raw, dmap, "is not a region ID, region code, country, continent, 'eu' or 'all'")
    chosen_label, chosen = readings[0]
    if not chosen and len(readings) == 1:
        raise _no_match(raw, dmap, f"matches no region of this map (read as {chosen_label})")
    note = None
    if len(readings) > 1:
        others = ", ".join(label for label, _ in readings[1:])
        note = (
            f"selector {raw!r} read as {chosen_label}, not as {others}; "
            f"write country:{word}, code:{word} or continent:{word} to choose"
        )
    return chosen, note


def is_geographic(selector: str, dmap: DERPMap) -> bool:
    """True when *selector* is read as a country, continent or ``eu`` rather than as regions by ID or code."""
    word = selector.strip().lower()
    kind, _, _ = word.partition(":")
    if ":" in word:
        return kind in ("country", "continent")
    if word in ("all", "unknown") or (word.isascii() and word.isdigit()):
        return False
    return word not in {r.region_code.lower() for r in dmap.region_list()}


def resolve(selectors: list[str], dmap: DERPMap) -> Resolution:
    """Resolve *selectors* against *dmap*; the union of their regions, sorted by ID.

    Raises :class:`SelectorError` for a selector that matches nothing, naming the closest valid ones.
    """
    out = Resolution()
    seen: set[int] = set()
    for selector in selectors:
        if "," in selector and not selector.replace(",", "").strip():
            raise SelectorError(
                f"region selector {selector!r} names no region (only commas); give an ID, code, country, "
                "continent, 'eu' or 'all'"
            )
        for part in (p for p in selector.split(",") if p.strip()) if "," in selector else [selector]:
            ids, note = resolve_one(part, dmap)
            out.geographic = out.geographic or is_geographic(part, dmap)
            out.matches[part] = ids
            if note:
                out.notes.append(note)
            seen.update(ids)
    out.region_ids = sorted(seen)
    return out


@dataclass(frozen=True)
class RegionInfo:
    """One region as ``derptool map`` shows it."""

    id: int
    code: str
    name: str
    country: str
    continent: str
    """The continent's selector name (``north-america``), or ``unknown``."""
    nodes: int
    hosts: list[str]
    flags: list[str]
    placement: str = ""
    """How the geography was found, for a region outside the table (``RegionGeo.how_placed``); else empty."""


def describe_regions(dmap: DERPMap) -> list[RegionInfo]:
    """A summary row per region (sorted by ID): geography, node count, host names and flags."""
    rows = []
    for r in dmap.region_list():
        geo = geo_for(r)
        flags = []
        if r.avoid:
            flags.append("Avoid")
        if r.no_measure_no_home:
            flags.append("NoMeasureNoHome")
        if r.stun_only:
            flags.append("STUN-only")
        if r.is_custom:
            flags.append("custom")
        if geo.placed_by == "coordinates":
            flags.append("by-coordinates")
        rows.append(
            RegionInfo(
                id=r.region_id,
                code=r.region_code,
                name=r.region_name,
                country=geo.country or "unknown",
                continent=continent_selector(geo.continent) or "unknown",
                nodes=len(r.nodes),
                hosts=[n.host_name for n in r.nodes],
                flags=flags,
                placement="" if geo.placed_by == "table" else geo.how_placed,
            )
        )
    return rows
