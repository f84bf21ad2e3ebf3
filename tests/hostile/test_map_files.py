"""Hostile DERP map files and URLs: depth and number limits, capped bodies, YAML aliases, snake_case keys,
encodings, and ``diff ... default`` offline."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pytest_httpserver import HTTPServer
from typer.testing import CliRunner

from derptool.cli import app
from derptool.derpmap import sources
from derptool.derpmap.sources import load_map, load_snapshot, map_from_bytes
from derptool.errors import InputError, LimitError, MapError, NetworkError


def small_map(code: str = "own") -> dict[str, Any]:
    return {
        "Regions": {
            "900": {
                "RegionID": 900,
                "RegionCode": code,
                "RegionName": "Own",
                "Nodes": [{"Name": "900a", "RegionID": 900, "HostName": "derp.example.test", "IPv4": "192.0.2.1"}],
            }
        }
    }


@pytest.mark.parametrize(
    ("doc", "error"),
    [
        (b"[" * 100_000 + b"]" * 100_000, "nested deeper than the 10000"),
        (b'{"Regions": {"900": {"RegionID": ' + b"9" * 5000 + b"}}}", "5000 characters"),
        (b'{"derpMap": ' + b"[" * 20_000 + b"}", "nested deeper"),
        (b"regions:\n  900: " + b"[" * 20_000 + b"\n", "nested deeper"),
        (b"regions:\n" + b"- " * 12_000 + b"x\n", "nested deeper than the 10000"),
        (b"regions:\n" + b"- " * 100_000 + b"x\n", "nested too deeply"),
    ],
)
def test_depth_and_number_limits_on_map_inputs(tmp_path: Path, doc: bytes, error: str) -> None:
    """RecursionError / ValueError tracebacks before; a LimitError (exit 2) now."""
    p = tmp_path / "map.json"
    p.write_bytes(doc)
    with pytest.raises(LimitError, match=error) as info:
        load_map(str(p))
    assert info.value.exit_code == 2


def test_deep_but_within_the_limit_decodes(tmp_path: Path) -> None:
    """5 000 levels (past Python's default recursion limit, within Go's) still decode."""
    deep = b'{"Regions": {}, "X": ' + b"[" * 5000 + b"]" * 5000 + b"}"
    p = tmp_path / "map.json"
    p.write_bytes(deep)
    assert load_map(str(p)).derp_map.regions == {}


def test_recursion_room_matches_the_depth_limit() -> None:
    from derptool import fileio
    from derptool.cli._app import RECURSION_ROOM

    assert RECURSION_ROOM == 4 * fileio.MAX_DEPTH + 1000


def test_url_body_is_capped(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/big").respond_with_data(b" " * (sources.MAX_MAP_BYTES + 1))
    with pytest.raises(NetworkError, match="allowed"):
        load_map(httpserver.url_for("/big"))


BOMB = (
    b"a: &a [x, x, x, x, x, x, x, x, x]\n"
    + b"".join(b"%c: &%c [%s]\n" % (98 + i, 98 + i, b", ".join([b"*%c" % (97 + i)] * 9)) for i in range(8))
    + b"regions: *i\n"
)


def test_yaml_alias_bomb_is_refused_at_once(tmp_path: Path) -> None:
    """The aliases are refused before anything is expanded (it took 66 s and 3.9 GB before)."""
    p = tmp_path / "derp.yaml"
    p.write_bytes(BOMB)
    start = time.perf_counter()
    with pytest.raises(LimitError, match=r"anchor &a: derptool reads no anchors or aliases") as info:
        load_map(str(p))
    assert time.perf_counter() - start < 2
    assert str(info.value).startswith(f"{p}:1:4:")


def test_single_alias_is_refused(tmp_path: Path) -> None:
    p = tmp_path / "derp.yaml"
    p.write_bytes(b"regions:\n  900:\n    regionid: 900\n    regioncode: x\n    nodes: *n\n")
    with pytest.raises(LimitError, match=r"alias \*n"):
        load_map(str(p))


@pytest.mark.parametrize(("key", "right", "line"), [("region_id", "regionid", 3), ("host_name", "hostname", 7)])
def test_snake_case_keys_are_named(tmp_path: Path, key: str, right: str, line: int) -> None:
    """A snake_case key (`region_id`) is named with the spelling headscale reads, not a type error about its value."""
    yaml_text = (
        f"regions:\n  900:\n    {'region_id' if key == 'region_id' else 'regionid'}: 900\n"
        "    regioncode: own\n    regionname: Own\n    nodes:\n"
        f"      - {'host_name' if key == 'host_name' else 'hostname'}: derp.example.test\n"
        "        name: 900a\n        regionid: 900\n"
    )
    p = tmp_path / "derp.yaml"
    p.write_text(yaml_text)
    with pytest.raises(MapError, match=f"key '{key}' is not one headscale reads .*write '{right}'") as info:
        load_map(str(p))
    assert info.value.line == line


@pytest.mark.parametrize("encoding", ["utf-8-sig", "utf-16", "utf-16-be", "utf-32"])
def test_bom_and_utf16_maps_are_decoded(tmp_path: Path, encoding: str) -> None:
    """A policy map with a BOM or in UTF-16 was read as YAML ("invalid YAML"); now it is decoded."""
    p = tmp_path / "policy.hujson"
    region = json.dumps(small_map()["Regions"]["900"])
    text = '// my policy\n{"derpMap": {"OmitDefaultRegions": true, "Regions": {"900": ' + region + "}}}\n"
    p.write_bytes(text.encode(encoding))
    assert sorted(load_map(str(p)).derp_map.regions) == [900]


runner = CliRunner()


def test_diff_against_default_offline_exits_3(tmp_path: Path) -> None:
    """`diff saved.json default` offline is a network failure (exit 3), not a comparison with the old snapshot."""
    saved = tmp_path / "saved.json"
    saved.write_text(json.dumps(small_map()))
    result = runner.invoke(app, ["diff", str(saved), "default"])
    assert result.exit_code == 3
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("derptool: error: cannot fetch the live DERP map")
    assert "'snapshot'" in lines[0]
    offline = runner.invoke(app, ["diff", "snapshot", "snapshot"])
    assert offline.exit_code == 0 and "bundled snapshot" in offline.stdout


# -- fuzzing: DERP map JSON and headscale YAML give a map or one InputError, nothing else -----------------------

_FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
_scalar = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8)
_json = st.recursive(
    _scalar,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=15,
)
_node = st.fixed_dictionaries(
    {},
    optional={
        "Name": _scalar,
        "RegionID": _scalar,
        "HostName": st.sampled_from(["derp.example.com", "", "a b", "1.2.3.4", "-x"]) | _scalar,
        "IPv4": st.sampled_from(["1.2.3.4", "300.1.1.1", "::1", "none"]) | _scalar,
        "STUNPort": st.integers(-70000, 70000) | _scalar,
        "DERPPort": st.integers(-70000, 70000) | _scalar,
    },
)
_region = st.fixed_dictionaries(
    {},
    optional={
        "RegionID": st.integers(-5, 2**40) | _scalar,
        "RegionCode": _scalar,
        "RegionName": _scalar,
        "Latitude": st.floats() | _scalar,
        "Nodes": st.lists(_node, max_size=3) | _scalar,
    },
)
_map = st.fixed_dictionaries(
    {"Regions": st.dictionaries(st.sampled_from(["1", "900", "０", "-1", "1_0", "x", ""]), _region | st.none())},
    optional={"HomeParams": _json, "OmitDefaultRegions": _scalar},
)


def _decodes_or_input_error(data: bytes) -> None:
    try:
        map_from_bytes(data, "fuzz", "file", base=load_snapshot)
    except InputError as err:
        assert "\n" not in str(err)


@_FUZZ
@given(_map | _json)
def test_fuzz_derp_map_json(doc: object) -> None:
    _decodes_or_input_error(json.dumps(doc).encode())


@_FUZZ
@given(_map)
def test_fuzz_headscale_yaml(doc: dict[str, object]) -> None:
    import yaml

    lowered = {"regions": {k: v for k, v in doc["Regions"].items()}}  # type: ignore[attr-defined]
    _decodes_or_input_error(yaml.safe_dump(lowered).encode())


@_FUZZ
@given(st.binary(max_size=200) | st.text(max_size=200).map(str.encode))
def test_fuzz_any_bytes_as_a_map(data: bytes) -> None:
    _decodes_or_input_error(data)
