"""``derptool impact`` through Typer's runner: the table, the JSON contract, the CI gate and every error path.

Reports are the real samples in tests/data/impact (see tests/fleet/test_fleet.py); the map is the bundled snapshot.
Prometheus errors are checked against real loopback servers (a closed port, an HTTP server that is not
Prometheus); a real Prometheus is in tests/fleet/test_prometheus.py.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from typer.testing import CliRunner

from derptool.cli import app
from tests.support import repo
from tests.support.ports import free_port

runner = CliRunner()
DATA = repo.DATA / "impact"
EXPECTED_US = [1, 2, 9, 10, 12, 13, 16, 17, 24, 27]


def _run(*args: str, stdin: str | None = None) -> Any:
    return runner.invoke(app, ["impact", "--map", "snapshot", *args], input=stdin)


def test_json_is_exactly_the_contract() -> None:
    result = _run("--region", "us", str(DATA), "-f", "json")
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    data = json.loads(result.stdout)
    assert list(data) == ["omitted", "sites", "worst_increase_ms"]
    assert data["omitted"] == EXPECTED_US
    assert [s["site"] for s in data["sites"]] == ["denver", "virginia", "frankfurt"]
    for site in data["sites"]:
        assert list(site) == ["site", "before", "after", "increase_ms"]
        assert list(site["before"]) == list(site["after"]) == ["region", "latency_ms"]
    assert data["sites"][1] == {
        "site": "virginia",
        "before": {"region": 27, "latency_ms": 5.075},
        "after": {"region": 21, "latency_ms": 30.723},
        "increase_ms": 25.648,
    }
    assert data["sites"][2]["increase_ms"] == 0.0
    assert data["worst_increase_ms"] == 28.695


def test_table_is_sorted_by_increase_with_bars() -> None:
    result = _run("--region", "us", str(DATA))
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == (
        "Removing 10 of 28 regions (nyc, sfo, dfw, sea, ord, den, mia, lax, hnl, iad); "
        "map: bundled snapshot of 2026-09-01"
    )
    assert lines[1] == "3 sites, 2 change home region; worst increase +28.7 ms (denver)"
    rows = [line for line in lines if re.match(r"^(denver|virginia|frankfurt) ", line)]
    assert [r.split()[0] for r in rows] == ["denver", "virginia", "frankfurt"]
    assert rows[0].split()[1:10] == ["den", "(13)", "19.4", "ms", "tor", "(21)", "48.1", "ms", "+28.7"]
    bars = [len(re.findall("[█▏▎▍▌▋▊▉]", r)) for r in rows]
    assert bars[0] > bars[1] > bars[2] == 0
    assert "unchanged" in rows[2]


def test_keep_eu_sends_the_americas_to_europe() -> None:
    result = _run("--keep", "eu", str(DATA / "denver.json"), str(DATA / "virginia.json"), "-f", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert {(s["site"], s["after"]["region"]) for s in data["sites"]} == {("denver", 4), ("virginia", 4)}


@pytest.mark.parametrize(
    "selection",
    [
        ["--region", "us"],
        ["--keep", "eu"],
        ["--region", "nyc,fra"],
        ["--region", "europe", "--region", "ca"],
        ["--keep", "north-america"],
    ],
)
def test_impact_removes_exactly_what_omit_removes(selection: list[str]) -> None:
    omit = runner.invoke(app, ["omit", "--map", "snapshot", *selection, "-f", "json"])
    impact = _run(*selection, str(DATA), "-f", "json")
    assert omit.exit_code == impact.exit_code == 0, impact.output
    fragment = json.loads(omit.stdout)["derpMap"]["Regions"]
    assert json.loads(impact.stdout)["omitted"] == sorted(int(k) for k in fragment)


def test_max_increase_is_a_ci_gate() -> None:
    ok = _run("--region", "us", str(DATA), "--max-increase", "30")
    assert ok.exit_code == 0, ok.output
    over = _run("--region", "us", str(DATA), "--max-increase", "26", "-f", "json")
    assert over.exit_code == 1
    assert json.loads(over.stdout)["worst_increase_ms"] == 28.695  # the report is still printed
    assert over.stderr == "derptool: 1 site(s) over --max-increase 26 ms: denver (+28.7 ms)\n"


def test_a_site_left_without_any_region_fails_the_gate(tmp_path: Path) -> None:
    (tmp_path / "island.json").write_text(json.dumps({"RegionLatency": {"24": 4_000_000}, "PreferredDERP": 24}))
    result = _run(
        "--region", "us", str(tmp_path / "island.json"), str(DATA / "frankfurt.json"), "--max-increase", "1000"
    )
    assert result.exit_code == 1
    assert "1 left with no measured region" in result.stdout
    assert re.search(r"^island +hnl \(24\) +4\.0 ms +none +- +no region left +!+$", result.stdout, re.M)
    assert "island (no region left)" in result.stderr
    data = json.loads(_run("--region", "us", str(tmp_path / "island.json"), "-f", "json").stdout)
    assert data["sites"] == [
        {"site": "island", "before": {"region": 24, "latency_ms": 4.0}, "after": None, "increase_ms": None}
    ]
    assert data["worst_increase_ms"] is None


def test_bad_files_cost_one_line_each_and_are_skipped(tmp_path: Path) -> None:
    (tmp_path / "empty.json").write_text("")
    (tmp_path / "policy.hujson").write_text('{"acls": []}')
    (tmp_path / "broken.json").write_text('{"RegionLatency": {"1": 5}')
    result = _run("--region", "us", str(tmp_path), str(DATA / "frankfurt.json"), "-f", "json")
    assert result.exit_code == 0, result.output
    assert [s["site"] for s in json.loads(result.stdout)["sites"]] == ["frankfurt"]
    assert result.stderr.splitlines() == [
        f"derptool: error: {tmp_path / 'broken.json'}:1:27: not valid JSON (Expecting ',' delimiter); "
        "expected the JSON of 'derptool latency --format json' or 'tailscale netcheck --format json'",
        f"derptool: error: {tmp_path / 'empty.json'}: empty file; expected the JSON of "
        "'derptool latency --format json' or 'tailscale netcheck --format json'",
        f"derptool: error: {tmp_path / 'policy.hujson'}: not a latency report (an object with keys acls); "
        "expected the JSON of 'derptool latency --format json' or 'tailscale netcheck --format json'",
        "derptool: skipped 3 report file(s); using 1",
    ]


def test_no_usable_report_exits_2(tmp_path: Path) -> None:
    (tmp_path / "empty.json").write_text("")
    result = _run("--region", "us", str(tmp_path / "empty.json"), str(tmp_path / "missing.json"))
    assert result.exit_code == 2
    assert result.stderr.splitlines()[1:] == [
        f"derptool: error: {tmp_path / 'missing.json'}: no such file",
        "derptool: error: no usable report among 2 argument(s): nothing to assess",
    ]
    assert result.stdout == ""


def test_a_report_on_stdin() -> None:
    result = _run("--region", "iad", "-", "-f", "json", stdin=(DATA / "virginia.json").read_text())
    assert result.exit_code == 0, result.output
    site = json.loads(result.stdout)["sites"][0]
    assert (site["site"], site["before"]["region"], site["after"]["region"]) == ("stdin", 27, 1)


def test_reports_of_another_map_are_left_out_with_a_note(tmp_path: Path) -> None:
    (tmp_path / "lab.json").write_text(json.dumps({"RegionLatency": {"901": 1_000_000}}))
    result = _run("--region", "us", str(tmp_path / "lab.json"))
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        f"derptool: site lab ({tmp_path / 'lab.json'}) left out: measured only regions this map does not have "
        "(901); pass the map it measured with --map",
        "derptool: error: no site has a home region in this map; nothing to assess",
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([str(DATA)], "nothing to omit: give --region SEL (regions to remove) or --keep SEL (regions to keep)"),
        (["--region", "us"], "nothing to assess: give report files or directories, or --prometheus URL"),
        (["--region", "us", str(DATA), "--window", "7d"], "--window, --quantile and --site-label need --prometheus"),
        (
            ["--region", "us", "--prometheus", "http://127.0.0.1:9", "--quantile", "0.5"],
            "--quantile needs --window (the latest value has no quantile)",
        ),
        (
            ["--region", "us", "--prometheus", "http://127.0.0.1:9", "--window", "7days"],
            "--window: '7days' is not a Prometheus duration (examples: 30m, 24h, 7d, 1w)",
        ),
        (
            ["--region", "us", "--prometheus", "http://127.0.0.1:9", "--window", "1d", "--quantile", "90"],
            "--quantile: 90.0 is not between 0 and 1 (0.9 is the 90th percentile)",
        ),
        (
            ["--region", "us", "--prometheus", "http://127.0.0.1:9", "--site-label", "site-name"],
            "--site-label: 'site-name' is not a label name",
        ),
        (["--region", "us", "--prometheus", "127.0.0.1:9090"], "--prometheus: '127.0.0.1:9090' is not an http(s) URL"),
        (["--region", "us", str(DATA), "--max-increase", "-5"], "--max-increase: -5 is negative"),
        (["--region", "atlantis", str(DATA)], "region selector 'atlantis' is not a region ID"),
    ],
)
def test_usage_errors_exit_2_in_one_line(args: list[str], message: str) -> None:
    result = _run(*args)
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith(f"derptool: error: {message}")
    assert result.stderr.count("\n") == 1 and result.stdout == ""


def test_unreachable_prometheus_exits_3() -> None:
    port = free_port()
    result = _run("--region", "us", "--prometheus", f"http://127.0.0.1:{port}/")
    assert result.exit_code == 3
    assert result.stderr.startswith(f"derptool: error: cannot reach Prometheus at http://127.0.0.1:{port}: ")
    assert result.stderr.count("\n") == 1


def test_a_server_that_is_not_prometheus(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/api/v1/query").respond_with_data("<html>login</html>", content_type="text/html")
    result = _run("--region", "us", "--prometheus", httpserver.url_for("/"))
    assert result.exit_code == 2
    assert result.stderr == (
        f"derptool: error: {httpserver.url_for('/').rstrip('/')} does not answer like "
        "Prometheus' HTTP API (HTTP 200, not JSON)\n"
    )


def test_a_failing_prometheus_exits_3(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/api/v1/query").respond_with_json(
        {"status": "error", "errorType": "unavailable", "error": "storage not ready"}, status=503
    )
    result = _run("--region", "us", "--prometheus", httpserver.url_for(""))
    assert result.exit_code == 3
    assert result.stderr.endswith("failed: HTTP 503: storage not ready\n")


def test_the_query_sent_to_prometheus(httpserver: HTTPServer) -> None:
    answer = {
        "status": "success",
        "data": {
            "resultType": "vector",
            "result": [
                {"metric": {"dc": "lab", "region_id": "4"}, "value": [0, "0.004"]},
                {"metric": {"dc": "lab", "region_id": "1"}, "value": [0, "0.090"]},
            ],
        },
    }
    httpserver.expect_request(
        "/prom/api/v1/query",
        query_string={
            "query": "min by (dc, region_id) (quantile_over_time(0.5, derptool_region_latency_seconds[2h]))",
        },
    ).respond_with_json(answer)
    result = _run(
        "--region",
        "de",
        "--prometheus",
        httpserver.url_for("/prom"),
        "--window",
        "2h",
        "--quantile",
        "0.5",
        "--site-label",
        "dc",
        "-f",
        "json",
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["sites"] == [
        {
            "site": "lab",
            "before": {"region": 4, "latency_ms": 4.0},
            "after": {"region": 1, "latency_ms": 90.0},
            "increase_ms": 86.0,
        }
    ]


def test_reports_and_prometheus_together(httpserver: HTTPServer) -> None:
    answer = {
        "status": "success",
        "data": {
            "resultType": "vector",
            "result": [
                {"metric": {"instance": "denver", "region_id": "4"}, "value": [0, "0.004"]},
                {"metric": {"instance": "tokyo", "region_id": "7"}, "value": [0, "0.002"]},
            ],
        },
    }
    httpserver.expect_request("/api/v1/query").respond_with_json(answer)
    result = _run("--region", "us", str(DATA / "denver.json"), "--prometheus", httpserver.url_for("/"), "-f", "json")
    assert result.exit_code == 0, result.output
    assert sorted(s["site"] for s in json.loads(result.stdout)["sites"]) == ["denver", "tokyo"]
    assert "site 'denver' comes from a report file and from Prometheus; using the file" in result.stderr
