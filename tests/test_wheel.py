"""The wheel ``pip install .`` builds: every module and data file inside, the metadata users see, and it runs alone.

The wheel is built the way pip builds it for ``pip install .`` (an isolated PEP 517 build) from a copy of the
files the build reads, so the working tree is left as it was.
"""

from __future__ import annotations

import email.parser
import json
import os
import shutil
import subprocess
import sys
import tomllib
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))


def _source_files() -> set[str]:
    """The package's files as the wheel must hold them: every module and every data file."""
    out = set()
    for path in (REPO / "derptool").rglob("*"):
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
            out.add(path.relative_to(REPO).as_posix())
    return out


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[zipfile.ZipFile]:
    """The wheel pip builds from a copy of pyproject.toml, README.md, LICENSE and derptool/."""
    src = tmp_path_factory.mktemp("src")
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy2(REPO / name, src / name)
    shutil.copytree(REPO / "derptool", src / "derptool", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    out = tmp_path_factory.mktemp("dist")
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(src)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    (built,) = out.glob("derptool-*.whl")
    with zipfile.ZipFile(built) as zf:
        yield zf


def _dist_info(wheel: zipfile.ZipFile, name: str) -> str:
    (path,) = [n for n in wheel.namelist() if n.endswith(f".dist-info/{name}")]
    return wheel.read(path).decode("utf-8")


def test_wheel_holds_every_module_and_data_file(wheel: zipfile.ZipFile) -> None:
    names = {n for n in wheel.namelist() if ".dist-info/" not in n}
    source = _source_files()
    assert source - names == set(), "missing from the wheel: add them to [tool.setuptools.package-data]"
    assert names - source == set(), "the wheel holds files the source tree does not"
    for data in (
        "derptool/data/countries.geojson",
        "derptool/data/derpmap-snapshot.json",
        "derptool/data/snapshot-meta.json",
        "derptool/data/geography.json",
        "derptool/data/policy-shape.json",
        "derptool/py.typed",
    ):
        assert data in names
    json.loads(wheel.read("derptool/data/derpmap-snapshot.json"))  # whole, not a Git LFS pointer


def test_wheel_metadata(wheel: zipfile.ZipFile) -> None:
    meta = email.parser.Parser().parsestr(_dist_info(wheel, "METADATA"))
    assert meta["Name"] == "derptool" and meta["Version"] == PYPROJECT["project"]["version"]
    assert meta["License-Expression"] == "BSD-3-Clause"
    urls = dict(u.split(", ", 1) for u in meta.get_all("Project-URL") or [])
    assert urls == PYPROJECT["project"]["urls"]
    assert {"Homepage", "Source", "Issues", "Changelog"} <= set(urls)
    for url in urls.values():
        assert url.startswith("https://") and "example" not in url and "<" not in url
    # Linters are no runtime dependency and no part of the test extra: they have their own pinned extra.
    requires = meta.get_all("Requires-Dist") or []
    assert not [r for r in requires if r.startswith(("ruff", "mypy")) and "extra ==" not in r]
    assert not [r for r in requires if r.startswith(("ruff", "mypy")) and 'extra == "test"' in r]
    dev = {r.split("==")[0]: r for r in requires if r.endswith('extra == "dev"')}
    assert {"ruff", "mypy"} <= set(dev), "the dev extra pins the linters"
    assert all("==" in r for r in dev.values()), "every tool of the dev extra pinned to one version"
    assert "derptool = derptool.cli:main" in _dist_info(wheel, "entry_points.txt")
    assert "BSD 3-Clause License" in _dist_info(wheel, "licenses/LICENSE")


def test_unpacked_wheel_runs_on_its_own(wheel: zipfile.ZipFile, tmp_path: Path) -> None:
    """The wheel's own files serve the bundled map, geography and country shapes (not the source tree)."""
    site = tmp_path / "site"
    wheel.extractall(site)
    work = tmp_path / "work"
    work.mkdir()
    env = {**os.environ, "PYTHONPATH": str(site), "DERPTOOL_CACHE_DIR": str(tmp_path / "cache")}
    env.pop("DERPTOOL_MAP", None)
    probe = (
        "import derptool, sys; print(derptool.__file__); "
        "from derptool.cli import main; sys.argv = ['derptool', *sys.argv[1:]]; main()"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe, "omit", "--region", "us", "--map", "snapshot"],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    first, _, fragment = done.stdout.partition("\n")
    assert Path(first).resolve().is_relative_to(site.resolve())
    assert '"derpMap"' in fragment and "New York City, United States" in fragment
    # A region placed by the shipped country shapes: the map command reads countries.geojson from the wheel.
    region = {
        "Regions": {
            "901": {
                "RegionID": 901,
                "RegionCode": "own",
                "RegionName": "Own",
                "Latitude": 52.52,
                "Longitude": 13.405,
                "Nodes": [{"Name": "901a", "RegionID": 901, "HostName": "derp.own.test"}],
            }
        }
    }
    (work / "own.json").write_text(json.dumps(region), encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-c", probe, "map", "--map", "own.json", "--region", "de", "--format", "json"],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "901" in done.stdout
