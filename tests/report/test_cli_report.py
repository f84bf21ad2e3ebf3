"""``--format html|png`` and ``--html FILE`` on map, latency and impact, through Typer's runner: the page, the
file, and every bad target as one line with exit 2."""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from derptool.cli import app
from tests.report.pngcheck import decode, distinct_colours
from tests.support.stun_responder import StunResponder

runner = CliRunner()
IMPACT_REPORTS = Path(__file__).resolve().parents[1] / "data" / "impact"
MARKER = re.compile(r'<g class="region [^"]*" data-region-id="(\d+)" data-state="([a-z-]+)"')


def _markers(html: str) -> dict[int, str]:
    return {int(rid): state for rid, state in MARKER.findall(html)}


def test_map_html_on_stdout() -> None:
    result = runner.invoke(app, ["map", "--map", "snapshot", "--format", "html"])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("<!DOCTYPE html>")
    assert _markers(result.stdout) == {rid: "kept" for rid in range(1, 29)}


def test_map_of_a_policy_strikes_out_what_its_derpmap_removes(tmp_path: Path) -> None:
    policy = tmp_path / "policy.hujson"
    policy.write_text(
        '{"derpMap": {"Regions": {"4": null, // no Frankfurt\n'
        '"900": {"RegionID": 900, "RegionCode": "lab", "RegionName": "Lab", "Latitude": 47.4, "Longitude": 8.5,'
        ' "Nodes": [{"Name": "900a", "RegionID": 900, "HostName": "derp.example.com"}]}}}}'
    )
    result = runner.invoke(app, ["map", "--map", str(policy), "--format", "html"])
    assert result.exit_code == 0, result.output
    states = _markers(result.stdout)
    assert states[4] == "omitted" and states[900] == "self-hosted" and states[1] == "kept"
    assert len(states) == 29


def test_html_file_beside_the_table(tmp_path: Path) -> None:
    out = tmp_path / "map.html"
    result = runner.invoke(app, ["map", "--map", "snapshot", "--region", "eu", "--html", str(out)])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0].split()[:3] == ["ID", "CODE", "NAME"]
    assert set(_markers(out.read_text())) == {4, 14, 18, 19, 22, 26, 28}


def test_map_png_on_stdout() -> None:
    result = runner.invoke(app, ["map", "--map", "snapshot", "--format", "png"])
    assert result.exit_code == 0, result.output
    width, _, _, _ = decode(result.stdout_bytes)
    assert width == 1500
    assert distinct_colours(result.stdout_bytes, step=4) > 50


@pytest.fixture
def fifo(tmp_path: Path) -> Path:
    path = tmp_path / "fifo"
    os.mkfifo(path)
    return path


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("{tmp}", "is a directory; give a file name such as"),
        ("{tmp}/fifo", "is not a regular file (a FIFO, device or socket)"),
        ("{tmp}/missing/page.html", "the directory {tmp}/missing does not exist; nothing was written"),
        ("{tmp}/read-only.html", "the file is read-only; nothing was written"),
        ("/dev/null", "is not a regular file"),
        ("", "--html needs a file name"),
        ("-", "--html needs a file name"),
    ],
)
@pytest.mark.parametrize("command", [["map", "--map", "snapshot"], ["impact", "--map", "snapshot", "-r", "us"]])
def test_bad_html_target_is_one_line_before_any_work(
    tmp_path: Path, fifo: Path, target: str, message: str, command: list[str]
) -> None:
    ro = tmp_path / "read-only.html"
    ro.write_text("keep me")
    ro.chmod(0o444)
    args = [*command, "--html", target.format(tmp=tmp_path)]
    if command[0] == "impact":
        args.append(str(IMPACT_REPORTS))
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("derptool: error: ")
    assert message.format(tmp=tmp_path) in lines[0]
    assert result.stdout == ""
    assert ro.read_text() == "keep me"


def test_png_without_its_renderer_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "resvg_py", None)
    result = runner.invoke(app, ["map", "--map", "snapshot", "--format", "png"])
    assert result.exit_code == 2
    assert result.stderr == (
        "derptool: error: --format png needs the resvg-py package: pip install 'derptool[png]' (or --format html)\n"
    )
    assert result.stdout_bytes == b""


def _impact(*args: str) -> Any:
    return runner.invoke(app, ["impact", "--map", "snapshot", *args, str(IMPACT_REPORTS)])


def test_impact_html_has_the_bars_and_the_budget_and_keeps_the_gate() -> None:
    result = _impact("--region", "us", "--format", "html", "--max-increase", "26")
    assert result.exit_code == 1, result.output  # denver is over the budget: the gate still fails
    html = result.stdout
    bars = re.findall(r'<g class="bar" data-site="([^"]+)" data-increase-ms="([^"]+)" data-over="(\w+)"', html)
    assert bars == [("denver", "28.7", "true"), ("virginia", "25.6", "false"), ("frankfurt", "0.0", "false")]
    assert 'data-max-increase-ms="26"' in html
    states = _markers(html)
    assert {rid for rid, s in states.items() if s == "omitted"} == {1, 2, 9, 10, 12, 13, 16, 17, 24, 27}
    assert "over --max-increase 26 ms" in result.stderr


def test_impact_json_and_html_file_together(tmp_path: Path) -> None:
    out = tmp_path / "impact.html"
    result = _impact("--region", "us", "--format", "json", "--html", str(out))
    assert result.exit_code == 0, result.output
    assert [s["site"] for s in json.loads(result.stdout)["sites"]] == ["denver", "virginia", "frankfurt"]
    assert out.read_text().count('<g class="bar"') == 3


def test_impact_suggest_page() -> None:
    result = _impact("--keep", "eu", "--max-increase", "200", "--suggest", "--format", "html")
    assert result.exit_code == 0, result.output
    assert result.stdout.count('<g class="bar"') == 3


# -- latency, measured against the project's STUN responder on loopback ---------------------------------------


def _stun_region(rid: int, code: str, host: str, port: int, lat: float, lon: float) -> dict[str, Any]:
    node = {"Name": f"{rid}a", "RegionID": rid, "HostName": host, "IPv4": host, "IPv6": "none", "STUNPort": port}
    node["DERPPort"] = 9
    return {
        "RegionID": rid,
        "RegionCode": code,
        "RegionName": code.upper(),
        "Latitude": lat,
        "Longitude": lon,
        "Nodes": [node],
    }


@pytest.fixture
def stun_map(tmp_path: Path) -> Any:
    with StunResponder() as responder:
        near = responder.add("127.0.41.1", delay_ms=5)
        far = responder.add("127.0.41.2", delay_ms=60)
        regions = {
            "4": _stun_region(4, "fra", near.host, near.port, 50.1, 8.7),
            "901": _stun_region(901, "far", far.host, far.port, -33.9, 151.2),
        }
        path = tmp_path / "map.json"
        path.write_text(json.dumps({"Regions": regions}))
        yield str(path)


def test_latency_html_is_coloured_by_the_measurement(stun_map: str, tmp_path: Path) -> None:
    result = runner.invoke(app, ["latency", "--map", stun_map, "--format", "html", "--no-ipv6", "--timeout", "3s"])
    assert result.exit_code == 0, result.output
    html = result.stdout
    assert _markers(html) == {4: "kept", 901: "self-hosted"}
    latency = {int(a): float(b) for a, b in re.findall(r'data-region-id="(\d+)"[^>]*data-latency-ms="([\d.]+)"', html)}
    assert set(latency) == {4, 901} and latency[4] < latency[901]
    assert "fra: FRA — Frankfurt, Germany" in html


def test_latency_every_with_a_page_on_stdout_is_a_usage_error(stun_map: str) -> None:
    result = runner.invoke(app, ["latency", "--map", stun_map, "--format", "html", "--every", "1s"])
    assert result.exit_code == 2
    assert result.stderr.startswith("derptool: error: --format html prints one page: with --every, write it")
