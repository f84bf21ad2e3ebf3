"""Shared test setup: no test may reach the internet; fixtures used across the feature folders.

The live DERP map URL is pointed at a closed loopback port and the cache at a temporary directory, for
the whole session and for every subprocess the tests start (they inherit the environment). A test marked
with :func:`tests.support.prereq.needs` skips when a prerequisite is missing, or fails under ``CI=true``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme

from tests.support import prereq
from tests.support.derper import DerperBed, derper_bed
from tests.support.prereq import missing_go_peer, need
from tests.support.repo import SNAPSHOT
from tests.support.stun_responder import StunResponder

# Port 9 (discard) on loopback: nothing listens here, so a fetch fails at once with "connection refused".
os.environ["DERPTOOL_DEFAULT_MAP_URL"] = "http://127.0.0.1:9/derpmap/default"
os.environ.pop("DERPTOOL_MAP", None)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", f"{prereq.MARK}(missing): a prerequisite .ci/run installs (skip without it; fail under CI=true)"
    )


def pytest_runtest_setup(item: pytest.Item) -> None:
    for mark in item.iter_markers(prereq.MARK):
        need(*mark.args)


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    cache = tmp_path_factory.mktemp("cache")
    monkeypatch.setenv("DERPTOOL_CACHE_DIR", str(cache))
    yield cache


@pytest.fixture
def snapshot_path() -> Path:
    """The bundled DERP map snapshot."""
    return SNAPSHOT


@pytest.fixture
def responder() -> Iterator[StunResponder]:
    """The project's STUN responder on loopback; add endpoints with their delays."""
    with StunResponder() as r:
        yield r


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    """A test certificate authority for one module's TLS servers."""
    return trustme.CA()


@pytest.fixture(scope="module")
def bed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DerperBed]:
    """Real derper servers for one test module (needs the Go peers)."""
    need(missing_go_peer("derper"))
    with derper_bed(tmp_path_factory.mktemp("derper")) as b:
        yield b
