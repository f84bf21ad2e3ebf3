"""The page builders as a library: markers and their states, escaping, colours, the impact chart, policy diffs."""

from __future__ import annotations

import re
import sys
from html.parser import HTMLParser

import pytest

from derptool.derpmap import DERPMap
from derptool.errors import UsageError
from derptool.report.impact_page import PICTURE_ROWS, impact_page
from derptool.report.latency_page import latency_page
from derptool.report.map_page import map_page
from derptool.report.page import CSP, render_png
from derptool.report.policy_diff_page import group_rows, policy_diff_page
from derptool.report.svg import MAP_WIDTH, latency_colour, ring_path
from derptool.report.worldmap import shipped_countries
from tests.report.pngcheck import decode, distinct_colours
from tests.report.samples import HOSTILE, TINY_COUNTRIES, impact, latency_report, mixed_map, policy_diff, snapshot


class Elements(HTMLParser):
    """Every start tag with its attributes, and the text inside <title> elements."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.titles: list[str] = []
        self._in_title = False
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self._in_title = tag == "title"

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_endtag(self, tag: str) -> None:
        self._in_title = False

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.titles.append(data)

    def markers(self) -> dict[int, dict[str, str | None]]:
        """The map markers by region ID (the table rows carry data-region-id too, without data-state)."""
        return {int(a["data-region-id"] or 0): a for t, a in self.tags if t == "g" and "data-state" in a}


def test_map_page_has_a_marker_per_region_with_its_state() -> None:
    dmap, states = mixed_map()
    fra, ams = (dmap.regions[4], dmap.regions[14])
    assert fra is not None and ams is not None
    narrowed = DERPMap(regions={k: v for k, v in dmap.regions.items() if k not in (4, 14)})
    html = map_page(narrowed, source="test", omitted=[fra, ams], countries=TINY_COUNTRIES).html()
    marks = Elements(html).markers()
    expected = {**states, 4: "omitted", 14: "omitted"}
    assert {rid: a["data-state"] for rid, a in marks.items()} == expected
    assert marks[900]["class"] == "region self-hosted"
    markers_part = html.split('class="legend"')[0]
    assert markers_part.count('class="strike"') == 4  # two strokes strike out each omitted marker
    assert "Regions without coordinates:" in html  # region 901 has none, and still has its marker
    assert html.count('data-country="') == len(TINY_COUNTRIES)


def test_hover_text_names_code_city_country_nodes() -> None:
    dmap, _ = mixed_map()
    report = latency_report(dmap)
    html = latency_page(report, dmap, countries=TINY_COUNTRIES).html()
    titles = Elements(html).titles
    assert "nyc: New York City — United States (US)\nregion 1, 4 nodes\nlatency 4.0 ms\nkept, home" in titles
    assert any(
        t.startswith("home: Home lab — Switzerland (CH)\nregion 900, 2 nodes\nlatency not measured") for t in titles
    )


def test_hostile_names_are_text_and_the_page_loads_nothing() -> None:
    dmap, _ = mixed_map()
    html = map_page(dmap, source=HOSTILE, countries=TINY_COUNTRIES).html()
    assert "<script" not in html
    assert HOSTILE not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;&quot; onload=&quot;" in html
    parsed = Elements(html)
    assert not [a for _, a in parsed.tags if any(k.startswith("on") for k in a)]
    assert ("meta", {"http-equiv": "Content-Security-Policy", "content": CSP}) in parsed.tags
    urls = set(re.findall(r"""(?:https?:)?//[^\s"'<>)&]+""", html))
    assert urls <= {"http://www.w3.org/2000/svg", "http://leak.test/x"}
    assert all(not (a.get("src") or a.get("href")) for _, a in parsed.tags)


@pytest.mark.parametrize(
    ("lat", "lon"), [(float("nan"), 8.0), (47.0, float("inf")), (91.0, 8.0), (47.0, -180.5), (1e308, 1e308)]
)
def test_coordinates_not_on_earth_put_the_marker_under_the_map(lat: float, lon: float) -> None:
    from tests.report.samples import region

    dmap = DERPMap(regions={900: region(900, "odd", "Odd place", lat, lon)})
    html = map_page(dmap, source="test", countries=TINY_COUNTRIES).html()
    parsed = Elements(html)
    assert parsed.markers()[900]["data-state"] == "self-hosted"
    assert "Regions without coordinates:" in html
    assert any("is not on Earth" in t or "are not on Earth" in t for t in parsed.titles)
    values = [str(v).lower() for _, a in parsed.tags for v in a.values()]
    assert not [v for v in values if "nan" in v or "inf" in v]  # no NaN or infinity reached a drawing


def test_latency_colour_runs_green_to_red_and_grey_without_a_value() -> None:
    colours = [latency_colour(ms) for ms in (1, 5, 20, 60, 120, 250, 1000)]
    green_over_red = [int(c[3:5], 16) - int(c[1:3], 16) for c in colours]
    assert green_over_red == sorted(green_over_red, reverse=True)
    assert green_over_red[0] > 100 and green_over_red[-1] < -100
    assert latency_colour(None) == latency_colour(float("nan")) == latency_colour(float("inf")) == "#9e9e9e"


def test_latency_page_colours_by_latency_and_marks_unknown_regions() -> None:
    dmap, _ = mixed_map()
    report = latency_report(dmap)
    marks = Elements(latency_page(report, dmap, countries=TINY_COUNTRIES).html()).markers()
    assert marks[777]["data-state"] == "unknown"  # measured, but not in the map
    assert marks[1]["data-latency-ms"] == "4.0" and marks[5]["data-latency-ms"] == "290.0"
    assert "data-latency-ms" not in marks[900]
    assert set(marks) == {r.region_id for r in dmap.region_list()} | {777}


def test_impact_chart_sorts_worst_first_with_the_budget_line() -> None:
    html = impact_page(impact(), snapshot(), max_increase_ms=20.0, countries=TINY_COUNTRIES).html()
    parsed = Elements(html)
    bars = [a for t, a in parsed.tags if t == "g" and a.get("class") == "bar"]
    assert [(b["data-site"], b.get("data-increase-ms"), b["data-over"]) for b in bars] == [
        ("island", None, "true"),
        ("amsterdam", "39.0", "true"),
        ("frankfurt", "6.5", "false"),
        ("tokyo", "0.0", "false"),
    ]
    assert [a["data-max-increase-ms"] for t, a in parsed.tags if a.get("class") == "budget"] == ["20"]
    marks = parsed.markers()
    assert marks[4]["data-state"] == marks[14]["data-state"] == "omitted"
    assert (
        "fra: Frankfurt — Germany (DE)\nregion 4, 5 nodes\nomitted, home of 2 site(s) before, 0 after" in parsed.titles
    )


def test_impact_page_for_many_sites_stays_small_and_its_picture_is_cut() -> None:
    page = impact_page(impact(1000), snapshot(), max_increase_ms=30.0)
    html = page.html()
    assert len(html.encode()) < 2_000_000
    assert html.count('class="bar"') == 1000
    picture = page.picture_svg()
    assert picture.count('class="bar"') == PICTURE_ROWS
    assert f"and {1000 - PICTURE_ROWS} more sites" in picture


def test_group_rows_collapses_sources() -> None:
    diff = policy_diff()
    headers, rows = group_rows(diff["access"]["gained"])
    assert headers == ["SRC", "COUNT", "DST", "PROTO", "PORTS"]
    assert rows[0][1:] == ["12", "db-1", "tcp", "5432"]
    assert rows[0][0].endswith("and 4 more") and rows[0][0].startswith("laptop-0, laptop-1")
    assert rows[1] == ["ci", "1", "10.0.0.0/8", "udp", "53"]
    assert group_rows(["a", 3]) == (["VALUE"], [["a"], ["3"]])


def test_policy_diff_page_tables_and_the_derp_change_on_the_map() -> None:
    diff = policy_diff()
    page = policy_diff_page(diff, maps=[snapshot()], old="main", new="pr", countries=TINY_COUNTRIES)
    html = page.html()
    parsed = Elements(html)
    marks = parsed.markers()
    assert marks[4]["data-state"] == marks[14]["data-state"] == "omitted"
    assert marks[900]["data-state"] == "self-hosted"  # added, not in the map: drawn without coordinates
    assert marks[8]["data-state"] == "kept"
    assert "lhr: London — United Kingdom (GB)\nregion 8, 3 nodes\nkept, changed" in parsed.titles
    assert [a["data-site"] for t, a in parsed.tags if t == "g" and a.get("class") == "bar"] == ["rotterdam", "berlin"]
    for heading in ("access: gained (13)", "access: lost (1)", "ssh: lost (1)", "egress: gained (1)"):
        assert f"<h2>{heading}</h2>" in html
    assert "<h2>tests: newly failing (1)</h2>" in html
    assert "capabilities: gained" not in html


@pytest.mark.parametrize(
    "diff",
    [
        {},
        {"access": None, "derp": "x"},
        {
            "access": {"gained": "not a list"},
            "derp": {"removed": [1, None, {"id": True}], "sites": [None, {"site": 1}]},
        },
        {"derp": {"sites": [{"site": "s", "before": {"region": 1, "latency_ms": "nan?"}}]}},
    ],
)
def test_policy_diff_page_of_malformed_input_is_a_page(diff: dict[str, object]) -> None:
    html = policy_diff_page(diff, countries=TINY_COUNTRIES).html()
    assert html.startswith("<!DOCTYPE html>")


def test_empty_policy_diff_says_no_change() -> None:
    page = policy_diff_page({}, countries=TINY_COUNTRIES)
    assert "no change in access" in page.summary
    assert "The DERP map is the same in both policies." in page.html()


def test_rings_across_the_antimeridian_draw_no_line_over_the_map() -> None:
    d = ring_path([[(179.0, -16.0), (-179.5, -16.2), (-179.5, -17.0), (179.0, -17.0)]])
    segments = [s for s in d.split("M") if s]
    assert len(segments) >= 2
    for seg in segments:
        xs = [float(p.split()[0]) for p in seg.rstrip("Z ").split("L")]
        assert max(xs) - min(xs) < MAP_WIDTH / 2


def test_shipped_countries_draw_every_country() -> None:
    html = map_page(snapshot(), source="snapshot").html()
    drawn = Elements(html).tags
    codes = {a["data-country"] for t, a in drawn if t == "path" and "data-country" in a}
    assert {"US", "DE", "JP", "BR", "AU", "ZA"} <= codes
    assert len(codes) > 150


def test_png_of_a_page_is_a_picture() -> None:
    png = map_page(snapshot(), source="snapshot").png()
    width, height, _, _ = decode(png)
    assert (width, height) >= (1400, 600)
    assert distinct_colours(png, step=3) > 50


def test_png_without_its_renderer_is_a_usage_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "resvg_py", None)
    with pytest.raises(UsageError, match=r"resvg-py package: pip install 'derptool\[png\]'"):
        render_png("<svg xmlns='http://www.w3.org/2000/svg'/>")


def test_shipped_countries_are_the_geofence_dataset() -> None:
    from derptool.derpmap.countries import load_countries

    assert shipped_countries() == load_countries()
