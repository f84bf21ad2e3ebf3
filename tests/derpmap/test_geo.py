"""Region geography and selectors."""

from __future__ import annotations

import json

import pytest

from derptool.derpmap import DERPMap, merge, parse_derpmap
from derptool.derpmap.geo import describe_regions, resolve
from derptool.derpmap.geography import CONTINENTS, eu_members, geo_for
from derptool.errors import SelectorError
from tests.support.repo import SNAPSHOT

# Rough bounding boxes (lat_min, lat_max, lon_min, lon_max) of each country in the table. A region's
# published coordinates must fall inside the box of the country the table gives it: this catches a
# row assigned to the wrong country.
BOXES = {
    "US": (18.0, 50.0, -179.0, -66.0),
    "SG": (1.1, 1.5, 103.6, 104.1),
    "DE": (47.2, 55.1, 5.8, 15.1),
    "AU": (-44.0, -10.0, 112.0, 154.0),
    "IN": (6.0, 36.0, 68.0, 98.0),
    "JP": (24.0, 46.0, 122.0, 146.0),
    "GB": (49.8, 60.9, -8.7, 1.8),
    "BR": (-34.0, 5.3, -74.0, -34.0),
    "NL": (50.7, 53.6, 3.3, 7.3),
    "ZA": (-35.0, -22.0, 16.0, 33.0),
    "FR": (41.3, 51.2, -5.2, 9.6),
    "ES": (36.0, 43.8, -9.4, 3.4),
    "HK": (22.1, 22.6, 113.8, 114.5),
    "CA": (41.6, 83.2, -141.0, -52.6),
    "PL": (49.0, 54.9, 14.1, 24.2),
    "AE": (22.6, 26.1, 51.5, 56.4),
    "KE": (-4.8, 5.1, 33.9, 41.9),
    "FI": (59.8, 70.1, 20.5, 31.6),
}


@pytest.fixture(scope="module")
def dmap() -> DERPMap:
    path = SNAPSHOT
    return parse_derpmap(json.loads(path.read_text()))


def test_every_snapshot_region_has_a_geography_row_inside_its_country(dmap: DERPMap) -> None:
    for region in dmap.region_list():
        geo = geo_for(region)
        assert geo.country is not None, region.region_code
        assert geo.continent in CONTINENTS.values()
        assert geo.city == region.region_name
        lat0, lat1, lon0, lon1 = BOXES[geo.country]
        assert lat0 <= region.latitude <= lat1 and lon0 <= region.longitude <= lon1, region.region_code


def test_eu_has_27_members_and_not_the_uk() -> None:
    assert len(eu_members()) == 27
    assert "GB" not in eu_members() and "DE" in eu_members()


def codes(dmap: DERPMap, ids: list[int]) -> list[str]:
    return sorted(r.region_code for r in dmap.region_list() if r.region_id in ids)


def test_selectors(dmap: DERPMap) -> None:
    assert codes(dmap, resolve(["us"], dmap).region_ids) == sorted(
        ["nyc", "sfo", "dfw", "sea", "ord", "den", "mia", "lax", "hnl", "iad"]
    )
    assert codes(dmap, resolve(["DE"], dmap).region_ids) == ["fra", "nue"]
    assert codes(dmap, resolve(["eu"], dmap).region_ids) == ["ams", "fra", "hel", "mad", "nue", "par", "waw"]
    assert "lhr" in codes(dmap, resolve(["europe"], dmap).region_ids)
    assert codes(dmap, resolve(["south-america"], dmap).region_ids) == ["sao"]
    assert codes(dmap, resolve(["North_America"], dmap).region_ids) == codes(
        dmap, resolve(["us", "ca"], dmap).region_ids
    )
    assert resolve(["1"], dmap).region_ids == [1]
    assert resolve(["NYC"], dmap).region_ids == [1]
    assert resolve(["fra,ams", "1"], dmap).region_ids == [1, 4, 14]
    assert len(resolve(["all"], dmap).region_ids) == 28
    assert resolve(["country:jp"], dmap).region_ids == [7]
    assert resolve(["code:tok", "id:3"], dmap).region_ids == [3, 7]
    assert codes(dmap, resolve(["continent:oceania"], dmap).region_ids) == ["syd"]


@pytest.mark.parametrize(
    ("selector", "message"),
    [
        ("nyk", "did you mean nyc"),
        ("99", "names no region ID"),
        ("xx", r"matches no region of this map \(read as country XX\)"),
        ("na", "matches no region"),  # Namibia, not North America
        ("bogus:1", "unknown prefix 'bogus'"),
        ("continent:atlantis", "unknown continent"),
        ("country:zz", "names no country with regions"),
        ("", "empty region selector"),
    ],
)
def test_bad_selectors(dmap: DERPMap, selector: str, message: str) -> None:
    with pytest.raises(SelectorError, match=message):
        resolve([selector], dmap)


def test_custom_region_is_selectable_by_id_and_code_but_has_no_country(dmap: DERPMap) -> None:
    own = parse_derpmap(
        {
            "Regions": {
                "900": {
                    "RegionID": 900,
                    "RegionCode": "de",
                    "RegionName": "Own",
                    "Nodes": [{"Name": "o", "RegionID": 900, "HostName": "derp.example.com"}],
                }
            }
        }
    )
    merged = merge(dmap, own)
    region = merged.regions[900]
    assert region is not None and geo_for(region).country is None
    res = resolve(["de"], merged)
    assert res.region_ids == [900]
    assert "read as region code de (region 900), not as country DE" in res.notes[0]
    assert resolve(["country:de"], merged).region_ids == [4, 26]
    assert resolve(["900"], merged).region_ids == [900]
    row = next(r for r in describe_regions(merged) if r.id == 900)
    assert row.country == "unknown" and "custom" in row.flags


def test_a_region_whose_code_differs_from_the_table_gets_no_geography(dmap: DERPMap) -> None:
    moved = parse_derpmap(
        {
            "Regions": {
                "1": {
                    "RegionID": 1,
                    "RegionCode": "xyz",
                    "RegionName": "Elsewhere",
                    "Nodes": [{"Name": "x", "RegionID": 1, "HostName": "derp.example.com"}],
                }
            }
        }
    )
    region = moved.regions[1]
    assert region is not None and geo_for(region).country is None
