"""DERP map models: tailcfg names, omitempty round trip, letter case, validation and merging."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from derptool.derpmap import DERPMap, merge, parse_derpmap, semantic_problems
from derptool.errors import MapError


def snapshot_data(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())  # type: ignore[no-any-return]


def node(name: str = "900a", rid: int = 900, **extra: Any) -> dict[str, Any]:
    return {"Name": name, "RegionID": rid, "HostName": "derp.example.com", **extra}


def region(rid: int = 900, code: str = "own", **extra: Any) -> dict[str, Any]:
    return {"RegionID": rid, "RegionCode": code, "RegionName": "Own", "Nodes": [node(rid=rid)], **extra}


def test_snapshot_round_trips_to_the_same_data(snapshot_path: Path) -> None:
    data = snapshot_data(snapshot_path)
    dmap = parse_derpmap(data)
    assert dmap.to_data() == data
    assert len(dmap.region_list()) == 28
    assert dmap.node_count() == 88


def test_every_field_is_written_with_its_tailcfg_name_and_omitempty() -> None:
    full = {
        "HomeParams": {"RegionScore": {"900": 0.5}},
        "Regions": {
            "900": {
                "RegionID": 900,
                "RegionCode": "own",
                "RegionName": "Own",
                "Latitude": 1.5,
                "Longitude": -2.5,
                "Avoid": True,
                "NoMeasureNoHome": True,
                "Nodes": [
                    {
                        "Name": "a",
                        "RegionID": 900,
                        "HostName": "derp.example.com",
                        "CertName": "c.example.com",
                        "IPv4": "192.0.2.1",
                        "IPv6": "2001:db8::1",
                        "STUNPort": -1,
                        "STUNOnly": True,
                        "DERPPort": 8443,
                        "InsecureForTests": True,
                        "STUNTestIP": "192.0.2.2",
                        "CanPort80": True,
                    }
                ],
            }
        },
        "omitDefaultRegions": True,
    }
    assert parse_derpmap(full).to_data() == full
    minimal = {
        "Regions": {
            "900": {
                "RegionID": 900,
                "RegionCode": "own",
                "RegionName": "Own",
                "Nodes": [{"Name": "a", "RegionID": 900, "HostName": "h.example"}],
            }
        }
    }
    assert parse_derpmap(minimal).to_data() == minimal


def test_keys_are_matched_in_any_letter_case() -> None:
    dmap = parse_derpmap(
        {
            "OmitDefaultRegions": True,
            "regions": {
                "900": {
                    "regionid": 900,
                    "REGIONCODE": "own",
                    "RegionName": "Own",
                    "nodes": [{"name": "a", "regionId": 900, "hostname": "h.example", "stunport": 3479}],
                }
            },
        }
    )
    assert dmap.omit_default_regions
    region_900 = dmap.regions[900]
    assert region_900 is not None
    assert region_900.nodes[0].stun_port == 3479
    assert dmap.to_data()["omitDefaultRegions"] is True


def test_effective_ports() -> None:
    dmap = parse_derpmap(
        {"Regions": {"900": region(Nodes=[node("a"), node("b", STUNPort=-1, DERPPort=8443), node("c", STUNPort=3479)])}}
    )
    r = dmap.regions[900]
    assert r is not None
    assert [n.effective_stun_port for n in r.nodes] == [3478, None, 3479]
    assert [n.effective_derp_port for n in r.nodes] == [443, 8443, 443]


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (
            lambda d: d["Regions"]["900"].update(RegionID=901, Nodes=[node(rid=901)]),
            'Regions["900"] has RegionID 901; it must equal its key 900',
        ),
        (lambda d: d["Regions"]["900"]["Nodes"][0].update(RegionID=1), "has RegionID 1 but belongs to region 900"),
        (lambda d: d["Regions"]["900"]["Nodes"][0].update(STUNPort=70000), "STUNPort 70000 is out of range"),
        (lambda d: d["Regions"]["900"]["Nodes"][0].update(STUNPort=-2), "STUNPort -2 is out of range"),
        (lambda d: d["Regions"]["900"]["Nodes"][0].update(DERPPort=-1), "DERPPort -1 is out of range"),
        (lambda d: d["Regions"]["900"]["Nodes"][0].update(IPv4="2001:db8::1"), "is not an IPv4 address"),
        (lambda d: d["Regions"]["900"]["Nodes"][0].update(IPv6="192.0.2.1"), "is not an IPv6 address"),
        (lambda d: d["Regions"]["900"]["Nodes"][0].update(HostName="bad host"), "not a valid DNS name"),
        (lambda d: d["Regions"]["900"]["Nodes"][0].update(HostName=""), "HostName must not be empty"),
        (lambda d: d["Regions"]["900"]["Nodes"][0].pop("HostName"), "HostName is required"),
        (lambda d: d["Regions"]["900"]["Nodes"][0].update(DERPPort="443"), "valid integer (got string '443')"),
        (lambda d: d["Regions"].update({"0": None}), "Regions key 0 is not a positive safe integer"),
        (lambda d: d["Regions"]["900"].update(RegionID=2**53), "RegionID 9007199254740992 is not a positive safe"),
        (lambda d: d["Regions"].update({"abc": None}), "Regions.abc"),
    ],
)
def test_invalid_maps_give_one_clear_message_with_a_path(mutate: Any, expected: str) -> None:
    data = {"Regions": {"900": region()}}
    mutate(data)
    with pytest.raises(MapError) as info:
        parse_derpmap(data, source="m.json")
    assert expected in str(info.value)
    assert str(info.value).startswith("m.json: ")


def test_not_an_object() -> None:
    with pytest.raises(MapError, match="must be a JSON object"):
        parse_derpmap([1, 2])


def test_duplicate_node_names_and_region_codes_are_reported() -> None:
    data = {"Regions": {"900": region(900, "own"), "901": region(901, "OWN")}}
    data["Regions"]["901"]["Nodes"][0]["Name"] = "900a"
    dmap = DERPMap.model_validate(data)
    messages = [p.message for p in semantic_problems(dmap)]
    assert "region code 'OWN' is also used by region 900" in messages
    assert "node name '900a' is also used in region 900" in messages
    with pytest.raises(MapError, match="also used by region 900"):
        parse_derpmap(data)


def test_merge_null_removes_omit_default_drops_full_region_replaces(snapshot_path: Path) -> None:
    base = parse_derpmap(snapshot_data(snapshot_path))
    replacement = copy.deepcopy(snapshot_data(snapshot_path)["Regions"]["2"])
    replacement["Nodes"] = replacement["Nodes"][:1]
    overlay = parse_derpmap({"Regions": {"1": None, "2": replacement, "900": region()}})
    merged = merge(base, overlay)
    assert 1 not in merged.regions
    merged_2 = merged.regions[2]
    assert merged_2 is not None and len(merged_2.nodes) == 1
    assert 900 in merged.regions and 3 in merged.regions
    assert not merged.is_overlay

    only_own = merge(base, parse_derpmap({"OmitDefaultRegions": True, "Regions": {"900": region()}}))
    assert sorted(only_own.regions) == [900]


def test_overlay_detection() -> None:
    assert parse_derpmap({"Regions": {"1": None}}).is_overlay
    assert parse_derpmap({"omitDefaultRegions": True, "Regions": {}}).is_overlay
    assert not parse_derpmap({"Regions": {"900": region()}}).is_overlay


@pytest.mark.parametrize(
    ("fields", "v4", "v6"),
    [
        ({}, "derp.example.com", "derp.example.com"),
        ({"IPv4": "192.0.2.1", "IPv6": "none"}, "192.0.2.1", None),
        ({"IPv4": "none", "IPv6": "2001:db8::1"}, None, "2001:db8::1"),
        ({"IPv4": "192.0.2.1", "STUNTestIP": "127.0.0.5"}, "127.0.0.5", None),
        ({"HostName": "192.0.2.9"}, "192.0.2.9", None),
        ({"HostName": "2001:db8::9"}, None, "2001:db8::9"),
    ],
)
def test_stun_host_per_family(fields: dict[str, Any], v4: str | None, v6: str | None) -> None:
    dmap = parse_derpmap({"Regions": {"900": region(Nodes=[node(**fields)])}})
    n = dmap.regions[900].nodes[0]  # type: ignore[union-attr]
    assert (n.stun_host(4), n.stun_host(6)) == (v4, v6)


def test_trusted_snapshot_reads_as_validated() -> None:
    import json
    from importlib import resources

    from derptool.derpmap import DERPMap, parse_derpmap

    data = json.loads(resources.files("derptool.data").joinpath("derpmap-snapshot.json").read_bytes())
    trusted = DERPMap.from_trusted(data)
    checked = parse_derpmap(data, source="snapshot")
    assert trusted == checked
    assert trusted.to_data() == checked.to_data() == data
