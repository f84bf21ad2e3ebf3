"""Fast failure of the default map: a short deadline for the first answer when a fallback exists, and a failed
fetch remembered in the cache so that the next runs go straight to the cached or bundled map."""

from __future__ import annotations

import datetime as dt
import http.server
import json
import os
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from derptool.cli import app
from derptool.derpmap import sources
from derptool.derpmap.sources import FAILURE_MEMORY, load_map, recent_failure
from derptool.errors import NetworkError

runner = CliRunner()
RECORD = "derpmap-default.failed.json"


class _Live(http.server.BaseHTTPRequestHandler):
    """The live map's server: counts requests; answers 503 until ``body`` is set."""

    hits = 0
    body: bytes | None = None

    def do_GET(self) -> None:
        cls = type(self)
        cls.hits += 1
        if cls.body is None:
            self.send_response(503)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(cls.body)))
        self.end_headers()
        self.wfile.write(cls.body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def live(monkeypatch: pytest.MonkeyPatch) -> Iterator[type[_Live]]:
    handler = type("Live", (_Live,), {"hits": 0, "body": None})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("DERPTOOL_DEFAULT_MAP_URL", f"http://127.0.0.1:{server.server_address[1]}/derpmap/default")
    yield handler
    server.shutdown()
    server.server_close()


@pytest.fixture
def dropping(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A loopback port that silently drops new connections: its listening socket never accepts and its accept
    queue is full, so the kernel ignores further SYNs (as a firewall that drops packets)."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(0)
    addr = srv.getsockname()
    fillers = []
    for _ in range(4):
        c = socket.socket()
        c.setblocking(False)
        c.connect_ex(addr)
        fillers.append(c)
    probe = socket.socket()
    probe.settimeout(0.5)
    try:
        with pytest.raises(TimeoutError):  # the port really drops: a connect gets no answer
            probe.connect(addr)
    finally:
        probe.close()
    url = f"http://127.0.0.1:{addr[1]}/derpmap/default"
    monkeypatch.setenv("DERPTOOL_DEFAULT_MAP_URL", url)
    yield url
    for c in fillers:
        c.close()
    srv.close()


def _map_json() -> bytes:
    return json.dumps(
        {"Regions": {"901": {"RegionID": 901, "RegionCode": "own", "RegionName": "Own", "Nodes": []}}}
    ).encode()


def test_a_dropping_network_costs_the_short_deadline_then_nothing(
    dropping: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sources, "FALLBACK_ANSWER_DEADLINE", 0.8)
    first = runner.invoke(app, ["map", "--format", "json"])
    assert first.exit_code == 0, first.output
    assert f"cannot fetch the live DERP map ({dropping}: no answer within 0.8 s); using the bundled snapshot" in (
        first.stderr
    )
    again = runner.invoke(app, ["map", "--format", "json"])
    assert again.exit_code == 0 and again.stdout == first.stdout
    assert "the live DERP map could not be fetched" in again.stderr and "not trying again for" in again.stderr
    assert "--refresh" in again.stderr


def test_a_failure_is_remembered_and_refresh_retries(live: type[_Live], tmp_path: Path) -> None:
    assert runner.invoke(app, ["map"]).exit_code == 0
    assert live.hits == 1
    second = runner.invoke(
        app, ["latency", "--map", "default", "--region", "nyc", "--format", "json", "--timeout", "200ms"]
    )
    assert live.hits == 1  # straight to the bundled map
    assert "HTTP 503" in second.stderr and "not trying again" in second.stderr
    assert runner.invoke(app, ["omit", "--region", "us"]).exit_code == 0 and live.hits == 1
    assert runner.invoke(app, ["map", "--refresh"]).exit_code == 0 and live.hits == 2
    assert runner.invoke(app, ["map"], env={"DERPTOOL_REFRESH": "1"}).exit_code == 0 and live.hits == 3
    live.body = _map_json()
    done = runner.invoke(app, ["map", "--refresh"])
    assert live.hits == 4 and "own" in done.stdout and done.stderr == ""
    assert not (Path(os.environ["DERPTOOL_CACHE_DIR"]) / RECORD).exists()  # a success forgets the failure
    runner.invoke(app, ["map"])
    assert live.hits == 5


def test_diff_with_default_always_asks_the_live_map(live: type[_Live], tmp_path: Path) -> None:
    runner.invoke(app, ["map"])
    result = runner.invoke(app, ["diff", "snapshot", "default"])
    assert result.exit_code == 3 and live.hits == 2 and "HTTP 503" in result.stderr


def test_a_map_that_does_not_parse_is_not_remembered(live: type[_Live]) -> None:
    live.body = b"{not json"
    runner.invoke(app, ["map"])
    runner.invoke(app, ["map"])
    assert live.hits == 2


@pytest.mark.parametrize(
    "record",
    [
        "old",
        "future",
        "other-url",
        "not-json",
        "wrong-types",
    ],
)
def test_a_stale_or_unusable_record_is_ignored(live: type[_Live], record: str) -> None:
    url = os.environ["DERPTOOL_DEFAULT_MAP_URL"]
    now = dt.datetime.now(dt.UTC)
    texts = {
        "old": json.dumps(
            {"url": url, "failed": (now - dt.timedelta(seconds=FAILURE_MEMORY + 1)).isoformat(), "reason": "x"}
        ),
        "future": json.dumps({"url": url, "failed": (now + dt.timedelta(hours=1)).isoformat(), "reason": "x"}),
        "other-url": json.dumps({"url": url + "x", "failed": now.isoformat(), "reason": "x"}),
        "not-json": "{",
        "wrong-types": json.dumps({"url": url, "failed": 12, "reason": ["x"]}),
    }
    cache = Path(os.environ["DERPTOOL_CACHE_DIR"])
    cache.mkdir(parents=True, exist_ok=True)
    (cache / RECORD).write_text(texts[record])
    assert recent_failure(url) is None
    runner.invoke(app, ["map"])
    assert live.hits == 1


def test_a_fifo_in_place_of_the_record_does_not_block(live: type[_Live]) -> None:
    cache = Path(os.environ["DERPTOOL_CACHE_DIR"])
    cache.mkdir(parents=True, exist_ok=True)
    os.mkfifo(cache / RECORD)
    assert recent_failure(os.environ["DERPTOOL_DEFAULT_MAP_URL"]) is None
    result = runner.invoke(app, ["map"])
    assert result.exit_code == 0 and live.hits == 1


def test_library_refresh_and_require_live(live: type[_Live]) -> None:
    notes: list[str] = []
    assert load_map("default", notice=notes.append).kind == "snapshot"
    assert load_map("default", notice=notes.append).kind == "snapshot" and live.hits == 1
    assert "not trying again" in notes[1]
    load_map("default", refresh=True)
    assert live.hits == 2
    with pytest.raises(NetworkError, match="HTTP 503"):
        load_map("default", require_live=True)
    assert live.hits == 3
