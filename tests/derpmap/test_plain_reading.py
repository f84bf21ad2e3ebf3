"""The fast reading of a map in tailcfg's exact shape builds what pydantic's validation builds, or steps aside."""

from __future__ import annotations

import copy
import json
import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from derptool.derpmap import DERPMap, parse_derpmap
from derptool.derpmap._plain import read_plain
from derptool.derpmap.model import semantic_problems
from derptool.errors import MapError
from tests.support.repo import REPO

SNAPSHOT = json.loads((REPO / "derptool" / "data" / "derpmap-snapshot.json").read_text())
NODE_KEYS = ["Name", "RegionID", "HostName", "CertName", "IPv4", "IPv6", "STUNPort", "STUNOnly", "DERPPort",
             "InsecureForTests", "STUNTestIP", "CanPort80", "name", "Extra"]  # fmt: skip
REGION_KEYS = ["RegionID", "RegionCode", "RegionName", "Latitude", "Longitude", "Avoid", "NoMeasureNoHome", "Nodes",
               "regionid", "coordinates_problem", "Other"]  # fmt: skip
MAP_KEYS = ["Regions", "HomeParams", "omitDefaultRegions", "regions", "OmitDefaultRegions"]

values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-3, max_value=70000),
    st.sampled_from([2**53, 2**53 - 1, 1, 0, -1, 65535, 65536, 901, 1.0, 3478.0, math.nan, math.inf, 1e308]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(["", "none", "127.0.0.1", "::1", "host.example", "-bad-", "1.2.3", "fe80::1%eth0", "nyc", "01"]),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.sampled_from(["1", "01", "x", "RegionScore"]), st.floats(), max_size=2),
)


def _pydantic(data: Any) -> DERPMap | None:
    try:
        dmap = DERPMap.model_validate(data)
    except ValidationError:
        return None
    return None if any(p.severity == "error" for p in semantic_problems(dmap)) else dmap


def _agree(data: Any) -> None:
    plain = read_plain(data)
    if plain is None:
        return  # stepped aside: pydantic reads it
    slow = _pydantic(data)
    assert slow is not None, "the fast reading accepted what pydantic rejects"
    assert plain == slow
    assert [r.coordinates_problem for r in plain.region_list()] == [r.coordinates_problem for r in slow.region_list()]


def test_the_snapshot_reads_alike_and_fast() -> None:
    plain = read_plain(SNAPSHOT)
    assert plain is not None and plain == _pydantic(SNAPSHOT) == DERPMap.from_trusted(SNAPSHOT)


@settings(max_examples=400, deadline=None)
@given(
    level=st.sampled_from(["node", "region", "map", "home", "key"]),
    key=st.integers(min_value=0, max_value=20),
    value=values,
    drop=st.booleans(),
)
def test_one_changed_value_reads_alike_or_steps_aside(level: str, key: int, value: Any, drop: bool) -> None:
    data = copy.deepcopy(SNAPSHOT)
    rid = sorted(data["Regions"], key=int)[key % len(data["Regions"])]
    reg = data["Regions"][rid]
    if level == "node":
        target, name = reg["Nodes"][0], NODE_KEYS[key % len(NODE_KEYS)]
    elif level == "region":
        target, name = reg, REGION_KEYS[key % len(REGION_KEYS)]
    elif level == "map":
        target, name = data, MAP_KEYS[key % len(MAP_KEYS)]
    elif level == "home":
        data["HomeParams"] = {"RegionScore": {rid: 0.5}}
        target, name = data["HomeParams"]["RegionScore"], str(value) if not drop else rid
    else:
        data["Regions"][str(value)] = data["Regions"].pop(rid)
        target, name = data, "Regions"
    if level != "key":
        if drop and name in target:
            del target[name]
        else:
            target[name] = value
    _agree(data)


@pytest.mark.parametrize(
    "change",
    [
        lambda d: d["Regions"]["1"].update(Latitude=91),  # cannot place: pydantic notes why
        lambda d: d["Regions"]["1"]["Nodes"][0].update(RegionID=2),
        lambda d: d.update(regions=d.pop("Regions")),  # another letter case
        lambda d: d["Regions"]["1"]["Nodes"][0].update(STUNPort=True),
        lambda d: d["Regions"]["1"].update(RegionCode=""),
    ],
)
def test_what_needs_a_note_or_an_error_goes_through_pydantic(change: Any) -> None:
    data = copy.deepcopy(SNAPSHOT)
    change(data)
    assert read_plain(data) is None
    slow = _pydantic(data)
    if slow is None:
        with pytest.raises(MapError):  # the error names the problem, as before
            parse_derpmap(data)
    else:
        assert parse_derpmap(data) == slow
