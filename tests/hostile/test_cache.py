"""Hostile caches: what sits in the cache directory (``DERPTOOL_CACHE_DIR``) where the live map's copy should be.

Only regular files are read, at most 4 MiB each; anything else is ignored with one notice, and ``map`` goes on
to the bundled snapshot (exit 0) without blocking. The live map's URL is a closed port, so every run is
offline and fast.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.hostile.harness import run

META = {"url": "http://127.0.0.1:9/derpmap/default", "etag": '"x"', "fetched": "2026-01-01T00:00:00+00:00"}
BODY, META_FILE = "derpmap-default.json", "derpmap-default.meta.json"


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
