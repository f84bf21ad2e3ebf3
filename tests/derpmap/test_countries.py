"""Placing points in the shipped country shapes: land, coast and border cases against known countries."""

from __future__ import annotations

import json
import math

import pytest

from derptool.derpmap import parse_derpmap, semantic_problems
from derptool.derpmap.countries import COAST_KM, country_at, load_countries
from derptool.derpmap.geography import geo_for, place

# (latitude, longitude, expected ISO code): cities where DERP relays or data centres are, checked by hand.
LAND = [
    (42.36, -71.06, "US"),  # Boston
    (50.11, 8.68, "DE"),  # Frankfurt
    (48.21, 16.37, "AT"),  # Vienna
    (43.65, -79.38, "CA"),  # Toronto
    (-23.55, -46.63, "BR"),  # São Paulo
    (28.61, 77.21, "IN"),  # New Delhi
    (35.68, 139.69, "JP"),  # Tokyo
    (-1.29, 36.82, "KE"),  # Nairobi
    (52.23, 21.01, "PL"),  # Warsaw
    (19.43, -99.13, "MX"),  # Mexico City
    (1.29, 103.85, "SG"),  # Singapore (a city state the 1:110m shapes leave out)
    (22.28, 114.16, "HK"),  # Hong Kong
    (49.61, 6.13, "LU"),  # Luxembourg
    (55.75, 37.62, "RU"),  # Moscow
]
COAST = [
    (38.72, -9.14, "PT"),  # Lisbon, on the Tagus estuary
    (45.44, 12.33, "IT"),  # Venice, in its lagoon
    (21.31, -157.86, "US"),  # Honolulu
    (64.15, -21.94, "IS"),  # Reykjavík
    (55.68, 12.57, "DK"),  # Copenhagen
    (-18.14, 178.44, "FJ"),  # Suva, near the antimeridian
    (26.23, 50.59, "BH"),  # Manama
    (43.73, 7.42, "MC"),  # Monaco
]
BORDER = [
    (46.20, 6.14, "CH", "FR"),  # Geneva
    (47.56, 7.59, "CH", "FR"),  # Basel (Germany is close too)
    (48.58, 7.75, "FR", "DE"),  # Strasbourg
    (42.33, -83.05, "US", "CA"),  # Detroit
    (42.30, -83.02, "CA", "US"),  # Windsor, across the river from Detroit
    (32.53, -117.04, "MX", "US"),  # Tijuana
]


@pytest.mark.parametrize(("lat", "lon", "code"), LAND)
def test_land_points_fall_inside_their_country(lat: float, lon: float, code: str) -> None:
    match = country_at(lat, lon)
    assert match is not None and match.country.code == code
    assert match.distance_km == 0.0


@pytest.mark.parametrize(("lat", "lon", "code"), COAST)
def test_coastal_cities_take_the_nearest_country(lat: float, lon: float, code: str) -> None:
    match = country_at(lat, lon)
    assert match is not None and match.country.code == code
    assert match.distance_km <= COAST_KM


@pytest.mark.parametrize(("lat", "lon", "code", "near"), BORDER)
def test_border_cities_name_the_neighbour(lat: float, lon: float, code: str, near: str) -> None:
    match = country_at(lat, lon)
    assert match is not None and match.country.code == code
    assert match.near == near


def test_open_sea_is_no_country() -> None:
    assert country_at(30.0, -40.0) is None  # mid-Atlantic
    assert country_at(0.0, 0.0) is None  # "null island", what a map without coordinates says
    assert country_at(-40.0, 100.0) is None  # Indian Ocean


@pytest.mark.parametrize(
    ("lat", "lon"), [(91.0, 0.0), (0.0, 180.5), (math.nan, 0.0), (0.0, math.inf), (-math.inf, 1.0)]
)
def test_coordinates_out_of_range_are_refused(lat: float, lon: float) -> None:
    with pytest.raises(ValueError, match="out of range"):
        country_at(lat, lon)
    assert place(lat, lon).country is None


def test_the_loader_gives_codes_names_and_closed_rings() -> None:
    countries = load_countries()
    codes = [c.code for c in countries]
    assert len(codes) == len(set(codes)) > 200
    assert codes == sorted(codes)
    by_code = {c.code: c for c in countries}
    assert by_code["DE"].name == "Germany" and by_code["DE"].continent == "EU"
    assert by_code["NA"].name == "Namibia"  # a code that reads as "no value" in some tools
    for c in countries:
        assert len(c.code) == 2 and c.code.isupper() and c.name
        assert c.continent in {"AF", "AN", "AS", "EU", "NA", "OC", "SA"}
        for polygon in c.polygons:
            for ring in polygon:
                assert len(ring) >= 4 and ring[0] == ring[-1]
                assert all(-180 <= lon <= 180 and -90 <= lat <= 90 for lon, lat in ring)


def _region(rid: int, code: str, **extra: object) -> dict[str, object]:
    node = {"Name": f"{rid}a", "RegionID": rid, "HostName": f"derp{rid}.example.com"}
    return {"RegionID": rid, "RegionCode": code, "RegionName": code, "Nodes": [node], **extra}


def test_regions_outside_the_table_are_placed_by_coordinates() -> None:
    dmap = parse_derpmap(
        {
            "Regions": {
                "40": _region(40, "bos", Latitude=42.36, Longitude=-71.06),
                "1": _region(1, "nyc"),  # ID and code of the table: the table wins, no coordinates needed
                "901": _region(901, "home"),
            }
        }
    )
    bos = geo_for(dmap.regions[40])  # type: ignore[arg-type]
    assert (bos.country, bos.continent, bos.placed_by) == ("US", "NA", "coordinates")
    assert "placed by its coordinates" in bos.how_placed
    nyc = geo_for(dmap.regions[1])  # type: ignore[arg-type]
    assert (nyc.country, nyc.placed_by) == ("US", "table")
    home = geo_for(dmap.regions[901])  # type: ignore[arg-type]
    assert home.country is None and home.unknown_why is not None and "no Latitude/Longitude" in home.unknown_why


@pytest.mark.parametrize(
    ("lat", "lon", "why"),
    [
        ("north", 1.0, "Latitude is a string, not a number"),
        (None, 1.0, "Latitude is null, not a number"),
        (True, 1.0, "Latitude is a boolean, not a number"),
        ([1], 1.0, "Latitude is an array, not a number"),
        (95, 1.0, "Latitude 95 is out of range (-90..90)"),
        (10.0, -200, "Longitude -200 is out of range (-180..180)"),
        (10.0, 1e400, "Longitude inf is not a finite number"),
        (10**400, 1.0, "is out of range"),
    ],
)
def test_bad_coordinates_make_the_region_unknown_not_the_map_invalid(lat: object, lon: object, why: str) -> None:
    dmap = parse_derpmap({"Regions": {"950": _region(950, "odd", Latitude=lat, Longitude=lon)}})
    region = dmap.regions[950]
    assert region is not None
    geo = geo_for(region)
    assert geo.country is None and geo.unknown_why is not None and why in geo.unknown_why
    warnings = semantic_problems(dmap)
    assert [w.severity for w in warnings] == ["warning"] and why in warnings[0].message
    json.dumps(region.to_data(), allow_nan=False)  # the map still writes as valid JSON


def test_the_json_cannot_set_the_derived_reason() -> None:
    dmap = parse_derpmap({"Regions": {"950": _region(950, "odd", coordinates_problem="forged", Latitude=50.11)}})
    region = dmap.regions[950]
    assert region is not None and region.coordinates_problem is None
