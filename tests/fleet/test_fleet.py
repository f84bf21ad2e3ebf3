"""The fleet library: reading site reports, netcheck's home rule over them, and the impact of a geofence.

The sample reports in tests/data/impact are real output: ``denver.json`` and ``frankfurt.json`` from
``derptool latency --format json``, ``virginia.json`` from Tailscale's own netcheck (``netcheck.Report`` of
tailscale.com v1.102.5, marshalled as ``tailscale netcheck --format json`` does), all measured against the
project's STUN responder on loopback with delays chosen per region.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from derptool.derpmap import DERPMap, parse_derpmap
from derptool.derpmap.sources import load_snapshot
from derptool.errors import InputError, UsageError
from derptool.fleet import SiteReport, assess, home_region, parse_report, site_name
from derptool.fleet.files import load_reports
from derptool.fleet.prometheus import PromQuery, build_query, check_window, reports_from_response
from tests.support import repo

DATA = repo.DATA / "impact"


def _map(regions: dict[int, dict[str, Any]], **extra: Any) -> DERPMap:
    data = {
        "Regions": {
            str(rid): {"RegionID": rid, "RegionCode": f"r{rid}", "RegionName": f"R{rid}", "Nodes": [], **kw}
            for rid, kw in regions.items()
        },
        **extra,
    }
    return parse_derpmap(data)


# -- reading reports ------------------------------------------------------------------------------------


def test_derptool_latency_report() -> None:
    report = parse_report((DATA / "denver.json").read_bytes(), file="denver.json")
    assert (report.site, report.kind, report.preferred) == ("denver", "derptool", 13)
    assert report.latencies_ms[13] == 19.366 and report.latencies_ms[4] == 120.594
    assert 8 not in report.latencies_ms  # lhr did not answer (latency_ms null)
    assert len(report.latencies_ms) == 6


def test_tailscale_netcheck_report_is_in_nanoseconds() -> None:
    raw = json.loads((DATA / "virginia.json").read_text())
    report = parse_report((DATA / "virginia.json").read_bytes(), file="x/virginia.json")
    assert (report.site, report.kind, report.preferred) == ("virginia", "tailscale", 27)
    assert report.latencies_ms == {int(k): v / 1e6 for k, v in raw["RegionLatency"].items()}
    assert report.latencies_ms[27] == pytest.approx(5.07535)


def test_tailscale_warning_line_captured_with_stderr_is_skipped() -> None:
    text = "# Warning: this JSON format is not yet considered a stable interface\n"
    text += json.dumps({"PreferredDERP": 0, "RegionLatency": {"4": 12_500_000}})
    report = parse_report(text.encode(), file="w.txt")
    assert report.latencies_ms == {4: 12.5} and report.preferred is None


def test_several_reports_in_one_file_stand_for_the_last() -> None:
    first = {"map_source": "m", "preferred_region": 1, "regions": [{"id": 1, "latency_ms": 10.0}]}
    last = {"map_source": "m", "preferred_region": 2, "regions": [{"id": 2, "latency_ms": 7.0}]}
    report = parse_report((json.dumps(first, indent=2) + "\n" + json.dumps(last)).encode(), file="every.json")
    assert report.latencies_ms == {2: 7.0} and report.preferred == 2
    assert report.notes == ["every.json: holds 2 reports; using the last one"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (
            b"",
            "site.json: empty file; expected the JSON of 'derptool latency --format json' or "
            "'tailscale netcheck --format json'",
        ),
        (b"  \n\n", "site.json: empty file;"),
        (b'{\n  "regions": [\n    {"id": 1,, }\n', "site.json:3:14: not valid JSON (Expecting property name"),
        (b'{"Regions": {"1": null}}', "site.json: not a latency report (an object with keys Regions);"),
        (b"[1, 2]", "site.json: not a latency report (a JSON array);"),
        (b"\xff\xfe{}", "site.json: not UTF-8 text (byte 0);"),
        (
            b'{"map_source": "m", "preferred_region": null, "regions": [{"id": 1, "latency_ms": null}]}',
            "site.json: no region answered in this report, so it cannot tell where the site's home is",
        ),
        (
            b'{"map_source": "m", "preferred_region": 1, "regions": [{"id": 1, "latency_ms": "12"}]}',
            "site.json: regions[0].latency_ms is '12', expected milliseconds (a number >= 0) or null",
        ),
        (
            b'{"map_source": "m", "preferred_region": 1, "regions": [{"id": true, "latency_ms": 1}]}',
            "site.json: regions[0].id is True, expected a positive region ID",
        ),
        (b'{"RegionLatency": {"nyc": 1000}}', "site.json: RegionLatency key 'nyc' is not a region ID"),
        (b'{"RegionLatency": {"1": -5}}', "site.json: RegionLatency['1'] is -5, expected nanoseconds"),
        (b'{"RegionLatency": {}, "PreferredDERP": 0}', "site.json: no region answered"),
    ],
)
def test_bad_reports_say_what_is_wrong_in_one_line(content: bytes, message: str) -> None:
    with pytest.raises(InputError) as err:
        parse_report(content, file="site.json")
    assert str(err.value).startswith(message)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    ("path", "site"),
    [("reports/denver.json", "denver"), ("gw-1.virginia.txt", "gw-1.virginia"), ("plain", "plain"), ("-", "stdin")],
)
def test_site_is_the_file_name_without_extension(path: str, site: str) -> None:
    assert site_name(path) == site


def test_a_directory_stands_for_its_files_and_bad_ones_are_skipped(tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    reports.mkdir()
    for name in ("denver.json", "virginia.json"):
        (reports / name).write_bytes((DATA / name).read_bytes())
    (reports / "empty.json").write_text("")
    (reports / "notes.txt").write_text("call the ISP on Monday\n")
    (reports / ".hidden.json").write_text("{")
    other = tmp_path / "other"
    other.mkdir()
    (other / "denver.json").write_bytes((DATA / "frankfurt.json").read_bytes())
    loaded = load_reports([str(reports), str(other / "denver.json"), str(tmp_path / "missing.json")])
    assert [r.site for r in loaded.reports] == ["denver", "virginia"]
    assert loaded.reports[0].latencies_ms[13] == 19.366  # the first denver wins
    assert len(loaded.problems) == 4
    assert loaded.problems[0].startswith(f"{reports / 'empty.json'}: empty file")
    assert loaded.problems[1].startswith(f"{reports / 'notes.txt'}:1:1: not valid JSON (Expecting value)")
    assert loaded.problems[2] == (
        f"{other / 'denver.json'}: site 'denver' already comes from "
        f"{reports / 'denver.json'}; skipped (the site is the file name: rename one of them)"
    )
    assert loaded.problems[3] == f"{tmp_path / 'missing.json'}: no such file"


def test_an_empty_directory_is_a_problem(tmp_path: Path) -> None:
    loaded = load_reports([str(tmp_path)])
    assert loaded.reports == [] and loaded.problems == [f"{tmp_path}: directory holds no report files"]


# -- netcheck's home rule ---------------------------------------------------------------------------------


def test_home_is_the_lowest_latency() -> None:
    dmap = _map({1: {}, 2: {}, 3: {}})
    home = home_region({1: 30.0, 2: 12.0, 3: 50.0}, dmap)
    assert home is not None and (home.region, home.code, home.latency_ms) == (2, "r2", 12.0)


def test_region_score_multiplies_the_latency_but_the_home_keeps_its_real_latency() -> None:
    dmap = _map({1: {}, 2: {}}, HomeParams={"RegionScore": {"1": 0.5}})
    home = home_region({1: 30.0, 2: 20.0}, dmap)  # 30 x 0.5 = 15 < 20
    assert home is not None and (home.region, home.latency_ms) == (1, 30.0)
    penalised = _map({1: {}, 2: {}}, HomeParams={"RegionScore": {"2": 2.0}})
    assert home_region({1: 30.0, 2: 20.0}, penalised).region == 1  # type: ignore[union-attr]


def test_avoid_and_no_measure_no_home_are_never_home() -> None:
    dmap = _map({1: {"Avoid": True}, 2: {"NoMeasureNoHome": True}, 3: {}})
    assert home_region({1: 1.0, 2: 2.0, 3: 90.0}, dmap).region == 3  # type: ignore[union-attr]
    assert home_region({1: 1.0, 2: 2.0}, dmap) is None


def test_regions_missing_from_the_map_are_ignored() -> None:
    dmap = _map({1: {}})
    assert home_region({1: 40.0, 900: 1.0}, dmap).region == 1  # type: ignore[union-attr]


def test_the_current_home_is_kept_unless_the_best_is_much_better() -> None:
    dmap = _map({1: {}, 2: {}})
    assert home_region({1: 30.0, 2: 21.0}, dmap, previous=1).region == 1  # type: ignore[union-attr]
    assert home_region({1: 30.0, 2: 19.0}, dmap, previous=1).region == 2  # type: ignore[union-attr]
    assert home_region({1: 14.0, 2: 5.0}, dmap, previous=1).region == 1  # type: ignore[union-attr]


# -- the impact --------------------------------------------------------------------------------------------


def test_impact_of_removing_the_us_over_the_sample_reports() -> None:
    snapshot = load_snapshot().derp_map
    loaded = load_reports([str(DATA)])
    us = [
        r.region_id
        for r in snapshot.region_list()
        if r.region_code in {"nyc", "sfo", "dfw", "sea", "ord", "den", "mia", "lax", "hnl", "iad"}
    ]
    impact = assess(loaded.reports, snapshot, us)
    by_site = {s.site: s for s in impact.sites}
    denver, virginia, frankfurt = by_site["denver"], by_site["virginia"], by_site["frankfurt"]
    assert (denver.before.region, denver.after.region) == (13, 21)  # type: ignore[union-attr]
    assert denver.increase_ms == pytest.approx(48.061 - 19.366)
    assert (virginia.before.region, virginia.after.region) == (27, 21)  # type: ignore[union-attr]
    assert virginia.increase_ms == pytest.approx(30.722968 - 5.07535)
    assert frankfurt.increase_ms == 0 and not frankfurt.moved
    assert [s.site for s in impact.sites] == ["denver", "virginia", "frankfurt"]
    assert impact.worst is denver and impact.stranded == []
    data = impact.to_data()
    assert list(data) == ["omitted", "sites", "worst_increase_ms"]
    assert data["omitted"] == sorted(us)
    assert data["sites"][0] == {
        "site": "denver",
        "before": {"region": 13, "latency_ms": 19.366},
        "after": {"region": 21, "latency_ms": 48.061},
        "increase_ms": 28.695,
    }
    assert data["worst_increase_ms"] == 28.695


def test_sites_left_with_no_measured_region_come_first_and_fail_any_budget() -> None:
    dmap = _map({1: {}, 2: {}, 3: {}})
    reports = [
        SiteReport("a", {1: 10.0, 2: 25.0}),
        SiteReport("b", {1: 5.0}),
        SiteReport("c", {3: 7.0}),
        SiteReport("d", {1: 9.0, 3: 12.0}),
    ]
    impact = assess(reports, dmap, [1])
    assert [s.site for s in impact.sites] == ["b", "a", "d", "c"]
    assert impact.stranded == [impact.sites[0]] and impact.sites[0].to_data()["after"] is None
    assert impact.sites[0].to_data()["increase_ms"] is None
    assert impact.worst_increase_ms == 15.0
    assert [s.site for s in impact.over_budget(10)] == ["b", "a"]
    assert [s.site for s in impact.over_budget(15)] == ["b"]


def test_a_home_chosen_by_score_can_be_replaced_by_a_faster_region() -> None:
    dmap = _map({1: {}, 2: {}, 3: {}}, HomeParams={"RegionScore": {"1": 0.25}})
    impact = assess([SiteReport("s", {1: 40.0, 2: 30.0, 3: 35.0})], dmap, [1])
    assert impact.sites[0].increase_ms == -10.0
    assert impact.worst_increase_ms == -10.0


def test_the_reported_home_stays_when_netcheck_would_keep_it() -> None:
    dmap = _map({1: {}, 2: {}, 3: {}})
    impact = assess([SiteReport("s", {1: 30.0, 2: 25.0, 3: 60.0}, preferred=1)], dmap, [3])
    assert impact.sites[0].before.region == 1 and impact.sites[0].increase_ms == 0
    moved = assess([SiteReport("s", {1: 30.0, 2: 25.0, 3: 60.0}, preferred=1)], dmap, [1])
    assert moved.sites[0].after.region == 2 and moved.sites[0].increase_ms == -5.0  # type: ignore[union-attr]


def test_a_site_without_any_home_in_the_map_is_left_out_with_a_note() -> None:
    dmap = _map({1: {}, 2: {"Avoid": True}})
    impact = assess(
        [
            SiteReport("x", {900: 3.0, 901: 4.0}, source="x.json"),
            SiteReport("y", {2: 3.0}, source="y"),
            SiteReport("z", {1: 3.0}),
        ],
        dmap,
        [],
    )
    assert [s.site for s in impact.sites] == ["z"]
    assert impact.notes == [
        "site x (x.json) left out: measured only regions this map does not have (900, 901); "
        "pass the map it measured with --map",
        "site y (y) left out: none of the regions it measured may be home (Avoid or NoMeasureNoHome)",
    ]


# -- Prometheus, without a server ----------------------------------------------------------------------------


def test_promql_for_latest_and_for_a_window() -> None:
    assert PromQuery().promql() == "min by (instance, region_id) (derptool_region_latency_seconds)"
    assert build_query("site", "7d", 0.9).promql() == (
        "min by (site, region_id) (quantile_over_time(0.9, derptool_region_latency_seconds[7d]))"
    )


@pytest.mark.parametrize("window", ["7", "7days", "0d", "", "-1h", "1h 30m", "d"])
def test_bad_windows_are_usage_errors(window: str) -> None:
    with pytest.raises(UsageError, match="is not a Prometheus duration"):
        check_window(window)


@pytest.mark.parametrize("window", ["7d", "1h30m", "90s", "1w", "500ms"])
def test_good_windows(window: str) -> None:
    assert check_window(window) == window


@pytest.mark.parametrize(("label", "quantile"), [("in-stance", 0.9), ("__name__", 0.9), ("site", 1.5)])
def test_bad_label_or_quantile(label: str, quantile: float) -> None:
    with pytest.raises(UsageError):
        build_query(label, "1d", quantile)


def test_reports_from_a_vector() -> None:
    body = {
        "status": "success",
        "data": {
            "resultType": "vector",
            "result": [
                {"metric": {"instance": "b", "region_id": "4"}, "value": [1.0, "0.0125"]},
                {"metric": {"instance": "a", "region_id": "1"}, "value": [1.0, "0.030"]},
                {"metric": {"instance": "a", "region_id": "4"}, "value": [1.0, "NaN"]},
                {"metric": {"region_id": "2"}, "value": [1.0, "0.001"]},
            ],
        },
    }
    result = reports_from_response(body, PromQuery(), "http://p")
    assert [(r.site, r.latencies_ms, r.kind) for r in result.reports] == [
        ("a", {1: 30.0}, "prometheus"),
        ("b", {4: 12.5}, "prometheus"),
    ]
    assert result.notes == [
        "1 series of derptool_region_latency_seconds have no 'instance' label; left out "
        "(choose the label that names a site with --site-label)",
        "1 series of derptool_region_latency_seconds have no usable region_id (ASCII digits, 1..2147483647) "
        "or value (a finite number of seconds, not NaN or Inf); left out",
    ]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"hello": 1}, "http://p does not answer like Prometheus' HTTP API"),
        (
            {"status": "error", "errorType": "bad_data", "error": "parse error"},
            "Prometheus at http://p refused the query: parse error",
        ),
        (
            {"status": "success", "data": {"resultType": "matrix", "result": []}},
            "Prometheus at http://p answered with an unexpected shape",
        ),
        (
            {"status": "success", "data": {"resultType": "vector", "result": []}},
            "Prometheus at http://p has no derptool_region_latency_seconds series with a 'instance' label",
        ),
    ],
)
def test_unusable_answers(body: Any, message: str) -> None:
    with pytest.raises(InputError, match="^" + message.replace("(", r"\(")):
        reports_from_response(body, PromQuery(), "http://p")
