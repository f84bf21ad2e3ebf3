"""Shared test setup: no test may reach the internet.

The live DERP map URL is pointed at a closed loopback port and the cache at a temporary directory, for
the whole session and for every subprocess the tests start (they inherit the environment).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.derper import SKIP_REASON, DerperBed, derper_bed, find_derper

# Port 9 (discard) on loopback: nothing listens here, so a fetch fails at once with "connection refused".
os.environ["DERPTOOL_DEFAULT_MAP_URL"] = "http://127.0.0.1:9/derpmap/default"
os.environ.pop("DERPTOOL_MAP", None)


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    cache = tmp_path_factory.mktemp("cache")
    monkeypatch.setenv("DERPTOOL_CACHE_DIR", str(cache))
    yield cache


@pytest.fixture
def snapshot_path() -> Path:
    """The bundled DERP map snapshot."""
    return Path(__file__).resolve().parent.parent / "derptool" / "data" / "derpmap-snapshot.json"


@pytest.fixture(scope="module")
def bed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DerperBed]:
    """Real derper servers for one test module (skips without the Go peers)."""
    if find_derper() is None:
        pytest.skip(SKIP_REASON)
    with derper_bed(tmp_path_factory.mktemp("derper")) as b:
        yield b
