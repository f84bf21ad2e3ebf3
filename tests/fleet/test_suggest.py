"""``impact --suggest``: the fewest allowed regions that keep every site within a latency budget."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from derptool.cli import app
from derptool.derpmap.sources import load_snapshot
from derptool.fleet import SiteReport, suggest
from tests.support import repo

DATA = repo.DATA / "impact"
EU = [4, 14, 18, 19, 22, 26, 28]  # fra ams par mad waw nue hel (London is not in the EU)
runner = CliRunner()


@pytest.fixture(scope="module")
def dmap():  # type: ignore[no-untyped-def]
    return load_snapshot().derp_map


def test_one_region_serving_two_sites_beats_two_regions(dmap) -> None:  # type: ignore[no-untyped-def]
    sites = [
        SiteReport("berlin", {26: 5.0, 4: 8.0, 22: 20.0, 14: 15.0}, preferred=26),
        SiteReport("warsaw", {22: 4.0, 4: 12.0, 26: 30.0}, preferred=22),
        SiteReport("madrid", {19: 3.0, 18: 20.0, 4: 40.0}, preferred=19),
    ]
    result = suggest(sites, dmap, EU, max_increase_ms=10)
    # fra (4) serves berlin (+3) and warsaw (+8); madrid needs mad (19) or par (18, +17 > 10): mad.
    assert result.keep == [4, 19]
    assert result.unmet == []
    assert result.impact.over_budget(10) == []
    assert {s.site: s.after.region for s in result.impact.sites if s.after} == {"berlin": 4, "warsaw": 4, "madrid": 19}


def test_a_site_no_allowed_region_serves_is_unmet(dmap) -> None:  # type: ignore[no-untyped-def]
    sites = [
        SiteReport("denver", {13: 19.0, 9: 30.0, 4: 120.0}, preferred=13),
        SiteReport("paris", {18: 2.0, 4: 9.0}, preferred=18),
    ]
    result = suggest(sites, dmap, EU, max_increase_ms=30)
    assert result.unmet == ["denver"]
    assert result.keep == [18]
    denver = next(s for s in result.impact.sites if s.site == "denver")
    assert denver.after is None  # only par is kept, and denver never measured it


def test_a_larger_budget_needs_fewer_regions(dmap) -> None:  # type: ignore[no-untyped-def]
    sites = [
        SiteReport(f"s{i}", {rid: 5.0 + 10 * abs(i - j) for j, rid in enumerate(EU)}, preferred=EU[i])
        for i in range(len(EU))
    ]
    sizes = [len(suggest(sites, dmap, EU, max_increase_ms=b).keep) for b in (0, 10, 20, 40, 80)]
    assert sizes[0] == len(EU)
    assert sizes == sorted(sizes, reverse=True) and sizes[-1] == 1


def test_cli_suggest_json_and_exit_code(tmp_path: Path) -> None:
    ok = runner.invoke(
        app,
        [
            "impact",
            "--keep",
            "eu",
            "--suggest",
            "--max-increase",
            "20",
            "--map",
            "snapshot",
            "--format",
            "json",
            str(DATA / "frankfurt.json"),
        ],
    )
    assert ok.exit_code == 0, ok.output
    data = json.loads(ok.stdout)
    assert data["keep"] == [4] and data["unmet"] == []
    assert data["sites"][0]["after"]["region"] == 4
    bad = runner.invoke(
        app, ["impact", "--keep", "eu", "--suggest", "--max-increase", "20", "--map", "snapshot", str(DATA)]
    )
    assert bad.exit_code == 1
    assert "No allowed region serves 2 site(s) within 20 ms: denver, virginia" in bad.stdout
    assert "derptool omit --keep id:4" in bad.stdout


def test_cli_suggest_needs_a_budget() -> None:
    result = runner.invoke(app, ["impact", "--keep", "eu", "--suggest", "--map", "snapshot", str(DATA)])
    assert result.exit_code == 2
    assert "--suggest needs --max-increase" in result.stderr
