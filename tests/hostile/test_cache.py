"""The live-map cache as hostile input: bad metadata, ETags, timestamps and bodies cost one notice, never a crash.

A bad cache is ignored with one notice: the live map is fetched when it answers, the bundled snapshot is used
when it does not, and the next good fetch replaces the bad cache.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from derptool.cli import app
from derptool.derpmap import sources
from derptool.derpmap.sources import load_map
from tests.support.hostile import runner


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
    """A non-ASCII or non-string ETag, meta that is not an object, a naive timestamp or a deeply
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
    """Offline with a bad cache (bad ETag, a deeply nested cached map), the chain goes on to the
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
    """The server's bad ETag never reaches the cache, so later runs keep working."""
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
    """Without DERPTOOL_CACHE_DIR the cache is platformdirs' user cache directory."""
    import platformdirs

    monkeypatch.delenv("DERPTOOL_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert sources.cache_dir() == Path(platformdirs.user_cache_dir("derptool", appauthor=False))
    assert sources.cache_dir() == tmp_path / "xdg" / "derptool"
    monkeypatch.setenv("DERPTOOL_CACHE_DIR", str(tmp_path / "mine"))
    assert sources.cache_dir() == tmp_path / "mine"


BAD_CACHES = [
    ({"etag": "\u00e9t\u00e9"}, b""),
    ({"etag": 7}, b""),
    ([1, 2, 3], b""),
    ({"fetched": "2026-01-01T00:00:00"}, b""),
    ({}, b"[" * 100_000 + b"]" * 100_000),
]


@pytest.mark.parametrize(("meta", "body"), BAD_CACHES, ids=["etag-utf8", "etag-int", "list", "naive", "deep"])
def test_bad_cache_is_one_notice(
    _isolated_cache: Path, httpserver: object, monkeypatch: pytest.MonkeyPatch, meta: object, body: bytes
) -> None:
    """With the live map answering 503, a bad cache is one notice line and the snapshot is used."""
    from pytest_httpserver import HTTPServer

    assert isinstance(httpserver, HTTPServer)
    url = httpserver.url_for("/derpmap/default")
    monkeypatch.setenv("DERPTOOL_DEFAULT_MAP_URL", url)
    httpserver.expect_request("/derpmap/default").respond_with_data("down", status=503)
    if isinstance(meta, dict):
        meta = {"url": url, "etag": None, "fetched": "2026-01-01T00:00:00+00:00", **meta}
    (_isolated_cache / "derpmap-default.meta.json").write_text(json.dumps(meta))
    (_isolated_cache / "derpmap-default.json").write_bytes(body or b'{"Regions": {}}')
    result = runner.invoke(app, ["map", "--format", "json"])
    assert result.exit_code == 0, result.stderr
    lines = result.stderr.splitlines()
    assert [line.split(":", 2)[1].strip()[:8] for line in lines] == ["ignoring", "cannot f"], lines
    assert all(not line.startswith("derptool: error") for line in lines)
