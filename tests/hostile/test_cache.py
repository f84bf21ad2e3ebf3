"""The live-map cache as hostile input: bad metadata, ETags, timestamps and bodies cost one notice, never a crash.

A bad cache is ignored with one notice: the live map is fetched when it answers, the bundled snapshot is used
when it does not, and the next good fetch replaces the bad cache.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from derptool.cli import app
from derptool.derpmap import sources
from derptool.derpmap.sources import load_map
from tests.hostile.harness import run
from tests.support.hostile import runner

META = {"url": "http://127.0.0.1:9/derpmap/default", "etag": '"x"', "fetched": "2026-01-01T00:00:00+00:00"}
BODY, META_FILE = "derpmap-default.json", "derpmap-default.meta.json"


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


# -- FIFOs, devices, sockets, links, oversize and unreadable directories -------------------------------------------


def _meta(d: Path, meta: object = None) -> None:
    (d / META_FILE).write_text(json.dumps(META if meta is None else meta))


def fifo_body(d: Path) -> None:
    _meta(d)
    os.mkfifo(d / BODY)


def fifo_meta(d: Path) -> None:
    os.mkfifo(d / META_FILE)
    (d / BODY).write_text("{}")


def both_fifos(d: Path) -> None:
    os.mkfifo(d / META_FILE)
    os.mkfifo(d / BODY)


def body_links_to_dev_zero(d: Path) -> None:
    _meta(d)
    (d / BODY).symlink_to("/dev/zero")


def meta_links_to_dev_zero(d: Path) -> None:
    (d / META_FILE).symlink_to("/dev/zero")


def body_too_large(d: Path) -> None:
    _meta(d)
    (d / BODY).write_bytes(b" " * (4 * 1024 * 1024 + 1))


def meta_too_large(d: Path) -> None:
    (d / META_FILE).write_bytes(b" " * (64 * 1024 + 1))


def body_is_a_directory(d: Path) -> None:
    _meta(d)
    (d / BODY).mkdir()


def meta_is_a_directory(d: Path) -> None:
    (d / META_FILE).mkdir()


def body_is_a_socket(d: Path) -> None:
    import socket

    _meta(d)
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(d / BODY))


def dangling_symlink(d: Path) -> None:
    _meta(d)
    (d / BODY).symlink_to(d / "gone")


def symlink_loop(d: Path) -> None:
    _meta(d)
    (d / BODY).symlink_to(d / BODY)


def meta_not_json(d: Path) -> None:
    (d / META_FILE).write_bytes(b"\xff\xfe garbage")


def meta_nested(d: Path) -> None:
    (d / META_FILE).write_bytes(b"[" * 30_000 + b"]" * 30_000)


def meta_wrong_types(d: Path) -> None:
    _meta(d, {"url": META["url"], "etag": ["x"], "fetched": 5})


def meta_fetch_time_overflows(d: Path) -> None:
    _meta(d, {**META, "fetched": "99999-01-01T00:00:00+00:00"})


def etag_with_newline(d: Path) -> None:
    _meta(d, {**META, "etag": '"a"\r\nX-Evil: 1'})


def body_not_a_map(d: Path) -> None:
    _meta(d)
    (d / BODY).write_bytes(b'{"Regions": {"1": {"RegionID": 1e999}}}')


def body_nan(d: Path) -> None:
    _meta(d)
    (d / BODY).write_bytes(b'{"Regions": NaN}')


def body_too_many_members(d: Path) -> None:
    _meta(d)
    (d / BODY).write_bytes(b'{"Regions": {' + b",".join(b'"%d": null' % i for i in range(1, 120_000)) + b"}}")


CASES: dict[str, Callable[[Path], None]] = {
    f.__name__: f
    for f in (
        fifo_body,
        fifo_meta,
        both_fifos,
        body_links_to_dev_zero,
        meta_links_to_dev_zero,
        body_too_large,
        meta_too_large,
        body_is_a_directory,
        meta_is_a_directory,
        body_is_a_socket,
        dangling_symlink,
        symlink_loop,
        meta_not_json,
        meta_nested,
        meta_wrong_types,
        meta_fetch_time_overflows,
        etag_with_newline,
        body_not_a_map,
        body_nan,
        body_too_many_members,
    )
}


@pytest.mark.parametrize("make", list(CASES.values()), ids=list(CASES))
def test_a_hostile_cache_is_ignored_with_one_notice(tmp_path: Path, make: Callable[[Path], None]) -> None:
    cache = tmp_path / "cache"
    cache.mkdir()
    make(cache)
    out = run(["map", "-r", "nyc"], env={"DERPTOOL_CACHE_DIR": str(cache), "DERPTOOL_DEFAULT_MAP_URL": META["url"]})
    assert out.code == 0, out.stderr
    assert out.seconds < 15
    assert "Traceback" not in out.stderr
    assert "bundled snapshot" in out.stderr
    notices = [line for line in out.stderr.splitlines() if "cached DERP map" in line]
    assert len(notices) <= 1 and all(len(n) < 400 for n in notices), out.stderr
    assert "nyc" in out.stdout


def test_a_fifo_is_never_waited_on(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    cache.mkdir()
    fifo_body(cache)
    out = run(["map", "-r", "nyc"], env={"DERPTOOL_CACHE_DIR": str(cache), "DERPTOOL_DEFAULT_MAP_URL": META["url"]})
    assert "not a regular file" in out.stderr and out.seconds < 10


def test_a_cache_directory_that_is_a_file_is_ignored(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    out = run(["map", "-r", "nyc"], env={"DERPTOOL_CACHE_DIR": str(blocker / "sub")})
    assert out.code == 0 and "Traceback" not in out.stderr
    assert "ignoring the cached DERP map" in out.stderr


def test_an_unreadable_cache_directory_is_ignored_with_one_notice(tmp_path: Path) -> None:
    """As root, run in a new user namespace (``unshare -U``), where root no longer overrides permissions."""
    cache = tmp_path / "cache"
    cache.mkdir()
    _meta(cache)
    (cache / BODY).write_text("{}")
    cache.chmod(0o000)
    env = {**os.environ, "DERPTOOL_CACHE_DIR": str(cache), "DERPTOOL_DEFAULT_MAP_URL": META["url"]}
    cmd = [sys.executable, "-c", "import sys; from derptool.cli import main; sys.argv[0] = 'derptool'; main()"]
    if os.geteuid() == 0:
        if shutil.which("unshare") is None:
            pytest.skip("running as root without unshare (util-linux): root reads any directory")
        cmd = ["unshare", "-U", *cmd]
    try:
        done = subprocess.run([*cmd, "map", "-r", "nyc"], env=env, capture_output=True, text=True, timeout=60)
    finally:
        cache.chmod(0o755)
    if "unshare failed" in done.stderr:
        pytest.skip(f"no user namespaces here: {done.stderr.strip()}")
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    notices = [line for line in done.stderr.splitlines() if "ignoring the cached DERP map" in line]
    assert len(notices) == 1 and "ermission denied" in notices[0], done.stderr
