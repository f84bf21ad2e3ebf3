"""Region selectors: which regions of a map a word names (the geography itself is :mod:`.geography`'s).

A selector names a set of regions of a map, case-insensitively:

* ``all``;
* a region ID (``1``) or a region code (``nyc``);
* an ISO 3166-1 alpha-2 country code (``us``, ``DE``);
* ``eu``: the member states of the European Union (the jurisdiction data-residency rules name; the UK is not in it);
* a continent by name: ``africa``, ``antarctica``, ``asia``, ``europe``, ``north-america``, ``oceania``,
  ``south-america`` (never by two-letter code: ``NA`` is Namibia);
* ``unknown``: the regions whose country is unknown (see :mod:`.geography`), so that an allow-list can keep
  them on purpose;
* an explicit reading, when a word could mean two things: ``id:1``, ``code:nyc``, ``country:de``,
  ``continent:europe``.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field

from derptool.derpmap import DERPMap
from derptool.derpmap.geography import CONTINENT_NAMES, CONTINENTS, continent_selector, eu_members, geo_for
from derptool.errors import SelectorError

_PREFIXES = ("id", "code", "country", "continent")


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


def selector_words(dmap: DERPMap) -> list[tuple[str, str]]:
    """Every selector word that names regions of *dmap*, with what it names: for shell completion.

    ``all``, ``eu``, ``unknown``, the continents, and each region's ID, code and country, sorted by word.
    """
    words: dict[str, str] = {
        "all": "every region",
        "eu": "the member states of the European Union",
        "unknown": "regions whose country is unknown",
    }
    for name, code in CONTINENTS.items():
        words[name] = f"continent {CONTINENT_NAMES[code]}"
    for r in dmap.region_list():
        geo = geo_for(r)
        words[str(r.region_id)] = f"region {r.region_code} ({r.region_name})"
        words[r.region_code.lower()] = f"region {r.region_id} ({r.region_name})"
        if geo.country:
            words.setdefault(geo.country.lower(), f"country {geo.country_name}")
    return sorted(words.items())


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
