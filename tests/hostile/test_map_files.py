"""Hostile map inputs: the cache, limits, encodings, YAML aliases, snake_case keys, ``diff ... default`` offline.

Issue 17, items 6, 7, 8, 10, 13, 16 and 21; each test failed before its fix.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from typer.testing import CliRunner
from werkzeug import Request, Response

from derptool.cli import app
from derptool.derpmap import sources
from derptool.derpmap.sources import load_map
from derptool.errors import LimitError, MapError, NetworkError


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


def write_cache(cache: Path, meta: Any, body: bytes = b"") -> None:
    cache.mkdir(parents=True, exist_ok=True)
    (cache / "derpmap-default.meta.json").write_bytes(meta if isinstance(meta, bytes) else json.dumps(meta).encode())
    (cache / "derpmap-default.json").write_bytes(body or json.dumps(small_map("cached")).encode())


GOOD = "2026-01-01T00:00:00+00:00"


@pytest.mark.parametrize(
    ("meta", "body", "why"),
    [
        ({"etag": '"ét\u00e9"', "fetched": GOOD}, b"", "ETag"),
        ({"etag": 5, "fetched": GOOD}, b"", "ETag"),
        (b"[1,2,3]", b"", "not a JSON object"),
        (b"{not json", b"", "not valid JSON"),
        ({"etag": None, "fetched": "2026-01-01T00:00:00"}, b"", "no time zone"),
        ({"etag": None, "fetched": 17}, b"", "fetch time"),
    ],
)
def test_a_bad_cache_is_ignored_with_one_notice(
    httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch, _isolated_cache: Path, meta: Any, body: bytes, why: str
) -> None:
    """Item 6: a non-ASCII or non-string ETag, meta that is not an object, a naive timestamp or a deeply
    nested cached map used to crash every `--map default` run (UnicodeEncodeError, TypeError, ...)."""
    url = httpserver.url_for("/derpmap/default")
    monkeypatch.setenv("DERPTOOL_DEFAULT_MAP_URL", url)
    if isinstance(meta, dict):
        meta["url"] = url
    write_cache(_isolated_cache, meta, body)

    def no_conditional_request(request: Request) -> Response:
        assert "If-None-Match" not in request.headers
        return Response(json.dumps(small_map("live")), headers={"ETag": '"v2"'}, content_type="application/json")

    httpserver.expect_request("/derpmap/default").respond_with_handler(no_conditional_request)
    notices: list[str] = []
    loaded = load_map("default", notice=notices.append)
    assert loaded.kind == "live"
    assert len(notices) == 1 and "ignoring the cached DERP map" in notices[0] and why in notices[0]
    # the next fetch replaced the bad cache: it now works without a notice
    notices.clear()
    httpserver.clear()
    httpserver.expect_request("/derpmap/default").respond_with_data("", status=304, headers={"ETag": '"v2"'})
    assert load_map("default", notice=notices.append).kind == "live" and notices == []


@pytest.mark.parametrize(
    ("etag", "body", "why"),
    [
        ("\u00e9", b"", "ETag"),
        (None, b"[" * 100_000 + b"]" * 100_000, "nested deeper"),
        (None, b"\x00\x00garbage", "not valid"),
    ],
)
def test_bad_cache_offline_falls_through_to_the_snapshot(
    _isolated_cache: Path, etag: str | None, body: bytes, why: str
) -> None:
    """Item 6: offline with a bad cache (bad ETag, a deeply nested cached map), the chain goes on to the
    bundled snapshot with one notice about the cache (the deep map was a RecursionError traceback)."""
    write_cache(_isolated_cache, {"url": sources.default_map_url(), "etag": etag, "fetched": GOOD}, body)
    notices: list[str] = []
    loaded = load_map("default", notice=notices.append)
    assert loaded.kind == "snapshot"
    assert len(notices) == 2
    assert "ignoring the cached DERP map" in notices[0] and why in notices[0] and "bundled snapshot" in notices[1]


def test_non_ascii_etag_from_the_server_is_not_stored(
    httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch, _isolated_cache: Path
) -> None:
    """Item 6: the server's bad ETag never reaches the cache, so later runs keep working."""
    url = httpserver.url_for("/derpmap/default")
    monkeypatch.setenv("DERPTOOL_DEFAULT_MAP_URL", url)
    httpserver.expect_request("/derpmap/default").respond_with_response(
        Response(json.dumps(small_map()), headers=[("ETag", '"\u00e9t\u00e9"'.encode().decode("latin-1"))])
    )
    load_map("default")
    meta = json.loads((_isolated_cache / "derpmap-default.meta.json").read_text())
    assert meta["etag"] is None
    assert load_map("default").kind == "live"


def test_cache_dir_is_the_platform_one(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Item 21: without DERPTOOL_CACHE_DIR the cache is platformdirs' user cache directory."""
    import platformdirs

    monkeypatch.delenv("DERPTOOL_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert sources.cache_dir() == Path(platformdirs.user_cache_dir("derptool", appauthor=False))
    assert sources.cache_dir() == tmp_path / "xdg" / "derptool"
    monkeypatch.setenv("DERPTOOL_CACHE_DIR", str(tmp_path / "mine"))
    assert sources.cache_dir() == tmp_path / "mine"


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
    """Item 7: RecursionError / ValueError tracebacks before; a LimitError (exit 2) now."""
    p = tmp_path / "map.json"
    p.write_bytes(doc)
    with pytest.raises(LimitError, match=error) as info:
        load_map(str(p))
    assert info.value.exit_code == 2


def test_deep_but_within_the_limit_decodes(tmp_path: Path) -> None:
    """Item 7: 5 000 levels (past Python's default recursion limit, within Go's) still decode."""
    deep = b'{"Regions": {}, "X": ' + b"[" * 5000 + b"]" * 5000 + b"}"
    p = tmp_path / "map.json"
    p.write_bytes(deep)
    assert load_map(str(p)).derp_map.regions == {}


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
    """Item 8: the aliases are refused before anything is expanded (it took 66 s and 3.9 GB before)."""
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
    """Item 13: `region_id` got "Input should be a valid integer (got string '1')"; now the key is named."""
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
    """Item 10: a policy map with a BOM or in UTF-16 was read as YAML ("invalid YAML"); now it is decoded."""
    p = tmp_path / "policy.hujson"
    region = json.dumps(small_map()["Regions"]["900"])
    text = '// my policy\n{"derpMap": {"OmitDefaultRegions": true, "Regions": {"900": ' + region + "}}}\n"
    p.write_bytes(text.encode(encoding))
    assert sorted(load_map(str(p)).derp_map.regions) == [900]


runner = CliRunner()


def test_diff_against_default_offline_exits_3(tmp_path: Path) -> None:
    """Item 16: `diff saved.json default` offline compared with the old snapshot and said 0; now exit 3."""
    saved = tmp_path / "saved.json"
    saved.write_text(json.dumps(small_map()))
    result = runner.invoke(app, ["diff", str(saved), "default"])
    assert result.exit_code == 3
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("derptool: error: cannot fetch the live DERP map")
    assert "'snapshot'" in lines[0]
    offline = runner.invoke(app, ["diff", "snapshot", "snapshot"])
    assert offline.exit_code == 0 and "bundled snapshot" in offline.stdout
