"""``derptool latency`` through Typer's runner and as a process, against loopback responders."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import trustme
from typer.testing import CliRunner

from derptool.cli import app
from tests.support.http_servers import TLSServer, server_context
from tests.support.maps import derp_map, region, stun_node
from tests.support.ports import free_port, free_udp_port
from tests.support.repo import REPO
from tests.support.stun_responder import StunResponder

runner = CliRunner()
CONTRACT_KEYS = [
    "map_source",
    "preferred_region",
    "udp",
    "ipv4",
    "ipv6",
    "global_v4",
    "global_v6",
    "mapping_varies_by_dest_ip",
    "regions",
]
REGION_KEYS = [
    "id",
    "code",
    "name",
    "country",
    "continent",
    "latency_ms",
    "v4_latency_ms",
    "v6_latency_ms",
    "method",
    "node",
    "error",
]
ADDED_KEYS = ["time", "plan", "port_mapping", "captive_portal"]
"""Keys added to the contract's: when, which plan, PortMapping and CaptivePortal."""


def _write(tmp_path: Path, data: dict[str, Any], name: str = "map.json") -> str:
    path = tmp_path / name
    path.write_text(json.dumps(data))
    return str(path)


@pytest.fixture
def lab(responder: StunResponder, tmp_path: Path) -> tuple[str, StunResponder]:
    """A map of three reachable regions (one with real geography: 4 = fra) and an unreachable one."""
    fra = responder.add("127.0.40.1", delay_ms=30)
    nyc = responder.add("127.0.40.2", delay_ms=5)
    far = responder.add("127.0.40.3", delay_ms=60)
    dead = {
        "Name": "dead",
        "RegionID": 903,
        "HostName": "127.0.40.4",
        "IPv6": "none",
        "STUNPort": free_udp_port("127.0.40.4"),
        "DERPPort": 9,
    }
    data = derp_map(
        {"RegionID": 4, "RegionCode": "fra", "RegionName": "Frankfurt", "Nodes": [stun_node("4a", 4, fra)]},
        region(901, [stun_node("901a", 901, nyc)]),
        region(902, [stun_node("902a", 902, far)]),
        region(903, [dead]),
    )
    return _write(tmp_path, data), responder


def test_json_follows_the_contract(lab: tuple[str, StunResponder]) -> None:
    path, _ = lab
    result = runner.invoke(app, ["latency", "--map", path, "--format", "json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert list(data) == CONTRACT_KEYS + ADDED_KEYS
    assert data["plan"] == "full" and data["port_mapping"] is None  # port mapping only with --port-mapping
    assert data["captive_portal"] is None  # no node has CanPort80
    assert data["map_source"] == path
    assert data["preferred_region"] == 901
    assert data["udp"] is True and data["ipv4"] is True and data["ipv6"] is False
    assert re.fullmatch(r"127\.0\.0\.1:\d+", data["global_v4"]) and data["global_v6"] is None
    assert data["mapping_varies_by_dest_ip"] is False
    assert [r["id"] for r in data["regions"]] == [901, 4, 902, 903]
    for r in data["regions"]:
        assert list(r) == [*REGION_KEYS, "probed"] and r["probed"] is True
    fra = data["regions"][1]
    assert (fra["code"], fra["name"], fra["country"], fra["continent"]) == ("fra", "Frankfurt", "DE", "EU")
    assert fra["method"] == "stun" and fra["node"] == "4a" and fra["error"] is None
    assert 30 <= fra["latency_ms"] == fra["v4_latency_ms"] and fra["v6_latency_ms"] is None
    dead = data["regions"][3]
    assert dead["latency_ms"] is None and dead["method"] is None and "connection refused" in dead["error"]
    assert result.stderr == ""  # no progress: stderr is not a terminal


def test_table_is_sorted_with_bars_and_the_preferred_marked(lab: tuple[str, StunResponder]) -> None:
    path, _ = lab
    result = runner.invoke(app, ["latency", "--map", path])
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert out.startswith("Nearest DERP: Region 901 (r901, region 901)")
    rows = [line for line in out.splitlines() if re.match(r"^\*?\s+\d+\s", line)]
    assert [int(line.split()[1 if line.startswith("*") else 0]) for line in rows] == [901, 4, 902, 903]
    assert rows[0].startswith("*") and not any(r.startswith("*") for r in rows[1:])
    bars = [len(re.findall("[█▏▎▍▌▋▊▉]", r)) for r in rows[:3]]
    assert bars[0] < bars[1] < bars[2]
    assert "connection refused" in rows[3]


def test_prometheus_exposition(lab: tuple[str, StunResponder]) -> None:
    path, _ = lab
    result = runner.invoke(app, ["latency", "--map", path, "-f", "prometheus"])
    assert result.exit_code == 0, result.output
    text = result.stdout
    samples = {}
    for line in text.splitlines():
        if line.startswith("#"):
            assert re.fullmatch(r"# (HELP \w+ .+|TYPE \w+ (gauge|counter))", line)
            continue
        name_labels, value = line.rsplit(" ", 1)
        samples[name_labels] = float(value)
    lat = samples['derptool_region_latency_seconds{region_id="4",region_code="fra",country="DE",method="stun"}']
    assert 0.030 <= lat < 0.2
    assert samples['derptool_region_up{region_id="903",region_code="r903",country=""}'] == 0
    assert samples['derptool_region_probe_errors{region_id="903",region_code="r903",country=""}'] >= 1
    assert samples['derptool_preferred_region{region_id="901",region_code="r901",country=""}'] == 901
    assert samples["derptool_udp"] == 1
    for name in ("derptool_region_latency_seconds", "derptool_region_up", "derptool_preferred_region"):
        assert f"# HELP {name} " in text and f"# TYPE {name} gauge" in text


def test_region_selector_measures_a_subset(lab: tuple[str, StunResponder]) -> None:
    path, responder = lab
    result = runner.invoke(app, ["latency", "--map", path, "--region", "DE", "-f", "json"])
    assert result.exit_code == 0, result.output
    assert [r["id"] for r in json.loads(result.stdout)["regions"]] == [4]
    assert [ep.requests for ep in responder.endpoints] == [1, 0, 0]


def test_no_region_answers_exit_1(tmp_path: Path) -> None:
    dead = {
        "Name": "dead",
        "RegionID": 1,
        "HostName": "127.0.41.1",
        "IPv6": "none",
        "STUNPort": free_udp_port("127.0.41.1"),
        "DERPPort": 9,
    }
    result = runner.invoke(
        app, ["latency", "--map", _write(tmp_path, derp_map(region(1, [dead]))), "--timeout", "1s", "-f", "json"]
    )
    assert result.exit_code == 1
    data = json.loads(result.stdout)
    assert data["preferred_region"] is None and data["udp"] is False


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--timeout", "soon"], "--timeout: 'soon' is not a positive duration"),
        (["--timeout", "0s"], "not a positive duration"),
        (["--every", "-1s"], "--every"),
        (["--listen", "nowhere"], "--listen: 'nowhere' is not ADDR:PORT"),
        (["--region", "atlantis"], "atlantis"),
        (["--no-ipv4", "--no-ipv6"], "nothing to probe"),
    ],
)
def test_bad_input_exit_2(lab: tuple[str, StunResponder], args: list[str], message: str) -> None:
    path, responder = lab
    result = runner.invoke(app, ["latency", "--map", path, *args])
    assert result.exit_code == 2
    assert message in result.stderr
    assert "Traceback" not in result.output
    assert all(ep.requests == 0 for ep in responder.endpoints)


def test_unreadable_or_invalid_map_exit_2(tmp_path: Path) -> None:
    result = runner.invoke(app, ["latency", "--map", str(tmp_path / "missing.json")])
    assert result.exit_code == 2 and "derptool: error:" in result.stderr
    bad = tmp_path / "bad.json"
    bad.write_text('{"Regions": {"1": {"RegionID": 2}}}')
    result = runner.invoke(app, ["latency", "--map", str(bad)])
    assert result.exit_code == 2 and "derptool: error:" in result.stderr


def test_map_that_cannot_be_had_exit_3() -> None:
    result = runner.invoke(app, ["latency", "--map", "http://127.0.0.1:9/derpmap.json"])
    assert result.exit_code == 3
    assert "derptool: error:" in result.stderr


def test_every_repeats_count_times(lab: tuple[str, StunResponder]) -> None:
    path, responder = lab
    result = runner.invoke(
        app, ["latency", "--map", path, "-f", "json", "--every", "100ms", "--count", "2", "--timeout", "1s"]
    )
    assert result.exit_code == 0, result.output
    decoder = json.JSONDecoder()
    text, reports = result.stdout.strip(), []
    while text:
        obj, end = decoder.raw_decode(text)
        reports.append(obj)
        text = text[end:].strip()
    assert len(reports) == 2
    assert all(r["preferred_region"] == 901 for r in reports)
    assert responder.endpoints[0].requests == 2


def test_ca_file_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ca = trustme.CA()
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    with TLSServer(server_context(ca, "derp.example.test")) as srv:
        node = {
            "Name": "h",
            "RegionID": 1,
            "HostName": "127.0.0.1",
            "IPv4": "127.0.0.1",
            "IPv6": "none",
            "STUNPort": -1,
            "DERPPort": srv.port,
            "CertName": "derp.example.test",
        }
        path = _write(tmp_path, derp_map(region(1, [node])))
        without = runner.invoke(app, ["latency", "--map", path, "-f", "json"])
        monkeypatch.setenv("DERPTOOL_CA_FILE", str(ca_file))
        with_ca = runner.invoke(app, ["latency", "--map", path, "-f", "json"])
    assert without.exit_code == 1 and "TLS verification failed" in without.stdout
    assert with_ca.exit_code == 0, with_ca.output
    assert json.loads(with_ca.stdout)["regions"][0]["method"] == "https"


def test_listen_serves_metrics_while_repeating(lab: tuple[str, StunResponder]) -> None:
    path, _ = lab
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "derptool",
            "latency",
            "--map",
            path,
            "-f",
            "prometheus",
            "--every",
            "300ms",
            "--count",
            "4",
            "--timeout",
            "1s",
            "--listen",
            f"127.0.0.1:{port}",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    try:
        body = None
        deadline = time.monotonic() + 20
        while body is None and time.monotonic() < deadline and proc.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as resp:
                    body = resp.read().decode()
                    ctype = resp.headers["Content-Type"]
            except urllib.error.HTTPError as err:
                assert err.code == 503  # before the first round
                time.sleep(0.05)
            except OSError:
                time.sleep(0.05)
        assert body is not None, "no /metrics answer while repeating"
        assert ctype.startswith("text/plain; version=0.0.4")
        assert 'derptool_preferred_region{region_id="901"' in body
        with pytest.raises(urllib.error.HTTPError) as missing:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/other", timeout=2)
        assert missing.value.code == 404
        out, errs = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, errs
    assert out.decode().count("# TYPE derptool_region_up gauge") == 4


def test_progress_and_redraw_only_on_a_terminal(lab: tuple[str, StunResponder]) -> None:
    import pty

    path, _ = lab
    env = {**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "200"}
    primary, secondary = pty.openpty()
    try:
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "derptool",
                "latency",
                "--map",
                path,
                "--every",
                "100ms",
                "--count",
                "2",
                "--timeout",
                "1s",
            ],
            stdin=subprocess.DEVNULL,
            stdout=secondary,
            stderr=secondary,
            env=env,
            timeout=60,
        )
        os.close(secondary)
        secondary = -1
        chunks = []
        while True:
            try:
                chunk = os.read(primary, 65536)
            except OSError:
                break
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(primary)
        if secondary != -1:
            os.close(secondary)
    text = b"".join(chunks).decode()
    assert proc.returncode == 0, text
    assert "measured 4 regions" in text  # progress on the terminal
    assert text.count("\x1b[H\x1b[2J") == 2  # one redraw per round
    assert text.count("Nearest DERP: Region 901") == 2


def test_table_notes_avoid(responder: StunResponder, tmp_path: Path) -> None:
    ep = responder.add("127.0.42.1", delay_ms=1)
    path = _write(tmp_path, derp_map(region(1, [stun_node("a", 1, ep)], Avoid=True)))
    result = runner.invoke(app, ["latency", "--map", path])
    assert result.exit_code == 0
    assert "Avoid: never preferred" in result.stdout
    assert result.stdout.startswith("Nearest DERP: none")
