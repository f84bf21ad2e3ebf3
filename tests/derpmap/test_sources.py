"""Map sources against real servers on loopback: live fetch, ETag cache, failures and fallbacks, content kinds."""

from __future__ import annotations

import io
import json
import socket
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from derptool.derpmap import sources
from derptool.derpmap.sources import load_map
from derptool.errors import InputError, MapError, NetworkError
from tests.support.repo import DATA

HEADSCALE = DATA / "headscale-derp"


def own_region(rid: int = 900, code: str = "own") -> dict[str, Any]:
    return {
        "RegionID": rid,
        "RegionCode": code,
        "RegionName": "Own",
        "Nodes": [{"Name": f"{rid}a", "RegionID": rid, "HostName": "derp.example.com", "IPv4": "192.0.2.1"}],
    }


def small_map(code: str = "own") -> dict[str, Any]:
    return {"Regions": {"900": own_region(code=code)}}


@pytest.fixture
def notices() -> list[str]:
    return []


@pytest.fixture
def live(httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch) -> HTTPServer:
    """Point the live default map URL at a real HTTP server on loopback."""
    monkeypatch.setenv("DERPTOOL_DEFAULT_MAP_URL", httpserver.url_for("/derpmap/default"))
    return httpserver


def test_live_map_is_used_and_cached_then_304_served_from_cache(live: HTTPServer, notices: list[str]) -> None:
    body = json.dumps(small_map("first"))
    live.expect_ordered_request("/derpmap/default").respond_with_response(
        Response(body, headers={"ETag": '"v1"'}, content_type="application/json")
    )

    def not_modified(request: Request) -> Response:
        assert request.headers.get("If-None-Match") == '"v1"'
        return Response(status=304, headers={"ETag": '"v1"'})

    live.expect_ordered_request("/derpmap/default").respond_with_handler(not_modified)
    first = load_map("default", notice=notices.append)
    assert first.kind == "live" and first.derp_map.regions[900] is not None
    second = load_map("default", notice=notices.append)
    region = second.derp_map.regions[900]
    assert region is not None and region.region_code == "first"
    assert "not modified" in second.description
    assert notices == []
    live.check_assertions()


def test_server_error_falls_back_to_cache_with_a_notice(live: HTTPServer, notices: list[str]) -> None:
    live.expect_ordered_request("/derpmap/default").respond_with_json(small_map("cached"))
    live.expect_ordered_request("/derpmap/default").respond_with_data("oops", status=503)
    load_map("default")
    loaded = load_map("default", notice=notices.append)
    assert loaded.kind == "cache"
    region = loaded.derp_map.regions[900]
    assert region is not None and region.region_code == "cached"
    assert len(notices) == 1
    assert "HTTP 503" in notices[0] and "using the cached map of" in notices[0] and "from today" in notices[0]


def test_offline_falls_back_to_the_snapshot_with_its_age(notices: list[str]) -> None:
    # conftest points the live URL at a closed loopback port
    loaded = load_map("default", notice=notices.append)
    assert loaded.kind == "snapshot" and len(loaded.derp_map.region_list()) == 28
    assert len(notices) == 1
    assert "connection refused" in notices[0]
    assert "bundled snapshot of 2026-09-01" in notices[0] and "days old" in notices[0]


@pytest.mark.parametrize(
    ("respond", "reason"),
    [
        (lambda s: s.respond_with_data("{not json", content_type="application/json"), "not valid JSON"),
        (lambda s: s.respond_with_json({"Regions": {"1": {"RegionID": 1}}}), "RegionCode is required"),
        (lambda s: s.respond_with_data("x" * (sources.MAX_MAP_BYTES + 10)), "allowed"),
        (lambda s: s.respond_with_data("gone", status=404), "HTTP 404"),
    ],
)
def test_bad_live_answers_fall_back(live: HTTPServer, notices: list[str], respond: Any, reason: str) -> None:
    respond(live.expect_request("/derpmap/default"))
    loaded = load_map("default", notice=notices.append)
    assert loaded.kind == "snapshot"
    assert reason in notices[0]


@pytest.fixture
def stalling_server() -> Iterator[str]:
    """A TCP server that accepts connections and never answers."""
    with socket.socket() as srv:
        srv.bind(("127.0.0.1", 0))
        srv.listen(8)
        yield f"http://127.0.0.1:{srv.getsockname()[1]}/derpmap/default"


def test_a_stalling_server_times_out(stalling_server: str, monkeypatch: pytest.MonkeyPatch, notices: list[str]) -> None:
    monkeypatch.setattr(sources, "DEADLINE", 0.5)
    monkeypatch.setenv("DERPTOOL_DEFAULT_MAP_URL", stalling_server)
    loaded = load_map("default", notice=notices.append)
    assert loaded.kind == "snapshot"
    assert "timed out" in notices[0]
    with pytest.raises(NetworkError, match="timed out"):
        load_map(stalling_server)


def test_url_source_and_its_failure(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/m.json").respond_with_json(small_map())
    assert sorted(load_map(httpserver.url_for("/m.json")).derp_map.regions) == [900]
    httpserver.expect_request("/bad").respond_with_data("no", status=500)
    with pytest.raises(NetworkError) as info:
        load_map(httpserver.url_for("/bad"))
    assert info.value.exit_code == 3


def test_snapshot_spec_never_touches_the_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*_: Any, **__: Any) -> Any:
        raise AssertionError("network used")

    monkeypatch.setattr(sources, "fetch_url", boom)
    assert load_map("snapshot").description == "bundled snapshot of 2026-09-01"


def test_map_file_taken_whole(tmp_path: Path) -> None:
    path = tmp_path / "map.json"
    path.write_text(json.dumps(small_map()))
    loaded = load_map(str(path))
    assert sorted(loaded.derp_map.regions) == [900] and loaded.kind == "file"


def test_policy_file_derpmap_is_merged_over_the_default(tmp_path: Path) -> None:
    path = tmp_path / "policy.hujson"
    region = json.dumps(own_region())
    path.write_text(f"""// tailnet policy
{{
  "acls": [{{"action": "accept", "src": ["*"], "dst": ["*:*"]}}],
  "derpMap": {{
    /* no New York */
    "Regions": {{"1": null, "900": {region},}},
  }},
}}
""")
    loaded = load_map(str(path))
    regions = loaded.derp_map.regions
    assert 1 not in regions and 900 in regions and 2 in regions
    assert loaded.overlay is not None and "derpMap over the bundled snapshot" in loaded.description


def test_policy_without_derpmap_is_the_default_map(tmp_path: Path) -> None:
    path = tmp_path / "policy.hujson"
    path.write_text('{"acls": [], // none\n}')
    assert len(load_map(str(path)).derp_map.region_list()) == 28


def test_policy_with_omit_default_regions(tmp_path: Path) -> None:
    path = tmp_path / "policy.hujson"
    path.write_text(json.dumps({"derpMap": {"OmitDefaultRegions": True, "Regions": {"900": own_region()}}}))
    assert sorted(load_map(str(path)).derp_map.regions) == [900]


def test_headscale_yaml_examples() -> None:
    example = load_map(str(HEADSCALE / "headscale-derp-example.yaml"))
    assert 1 not in example.derp_map.regions and 900 in example.derp_map.regions
    node = example.derp_map.regions[900].nodes[0]  # type: ignore[union-attr]
    assert (node.host_name, node.ipv4, node.ipv6, node.stun_port) == (
        "myderp.example.com",
        "198.51.100.1",
        "2001:db8::1",
        0,
    )
    custom = load_map(str(HEADSCALE / "headscale-docs-custom-regions.yaml"))
    assert sorted(custom.derp_map.regions) == [900, 901]
    assert custom.derp_map.regions[901].nodes[0].can_port80  # type: ignore[union-attr]
    removal = load_map(str(HEADSCALE / "headscale-docs-remove-region.yaml"))
    assert 1 not in removal.derp_map.regions and len(removal.derp_map.region_list()) == 27


def test_headscale_yaml_scalars_take_tailcfg_types(tmp_path: Path) -> None:
    path = tmp_path / "derp.yaml"
    path.write_text("""regions:
  900:
    regionid: 900
    regioncode: own
    regionname: Own
    nodes:
      - name: 1
        regionid: 900
        hostname: derp.example.com
        ipv6: "2001:0:1:2::1"
        stunport: -1
        derpport: 8443
        stunonly: yes
""")
    region = load_map(str(path)).derp_map.regions[900]
    assert region is not None
    node = region.nodes[0]
    assert (node.name, node.stun_port, node.derp_port, node.stun_only, node.ipv6) == (
        "1",
        -1,
        8443,
        True,
        "2001:0:1:2::1",
    )


def test_stdin(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(json.dumps(small_map()).encode())))
    loaded = load_map("-")
    assert loaded.kind == "stdin" and sorted(loaded.derp_map.regions) == [900]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"Regions": {"900": }}', r"bad\.json:1:\d+: invalid HuJSON"),
        ("regions: [unclosed", r"bad\.json:\d+:\d+: invalid YAML"),
        ('{"hello": 1}', "neither a DERP map"),
        ('{"Regions": {"900": {"RegionID": 900}}}', "RegionCode is required"),
        ("", "empty; expected a DERP map"),
        ('{"Regions": NaN}', r"bad\.json:1:13: invalid HuJSON: invalid literal: NaN"),
    ],
)
def test_bad_files(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises((InputError, MapError), match=message) as info:
        load_map(str(path))
    assert info.value.exit_code == 2


def test_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file"):
        load_map(str(tmp_path / "nope.json"))
    with pytest.raises(InputError, match="is a directory"):
        load_map(str(tmp_path))
