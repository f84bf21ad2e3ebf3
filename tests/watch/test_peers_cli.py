"""``derptool watch`` per peer against a LocalAPI on a real unix socket: the JSON contract, the peer table
sorted relayed first, ``--peer`` following one peer, the live view's sparklines, and ``--match``/``--exclude``."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from typer.testing import CliRunner
from werkzeug import Response

from derptool.cli import app
from tests.watch.fake_localapi import DATA, Script, peer, serve, status

runner = CliRunner()
KEYS = {"name", "path", "region", "endpoint", "rx_bytes_per_s", "tx_bytes_per_s", "since_s"}


def tailnet_statuses() -> list[dict[str, Any]]:
    """Four peers; between the two statuses ``laptop`` moves from DERP to direct and moves bytes."""
    return [
        status(
            peer("laptop", relay="fra", rx=1_000, tx=2_000),
            peer("phone", relay="nyc", rx=50_000, tx=50_000, ip="100.64.0.10"),
            peer("nas", cur_addr="192.0.2.7:41641", rx=10, tx=10, ip="100.64.0.11"),
            peer("printer", active=False, ip="100.64.0.12"),
        ),
        status(
            peer("laptop", cur_addr="192.0.2.8:41641", rx=301_000, tx=2_000, handshake="2026-05-01T10:00:00Z"),
            peer("phone", relay="nyc", rx=150_000, tx=150_000, ip="100.64.0.10"),
            peer("nas", cur_addr="192.0.2.7:41641", rx=10, tx=10, ip="100.64.0.11"),
            peer("printer", active=False, ip="100.64.0.12"),
        ),
    ]


def watch(sock: Path, *args: str) -> Any:
    return runner.invoke(app, ["watch", "--socket", str(sock), "-i", "0.2", "--map", "snapshot", *args])


def test_once_json_carries_every_peer_with_exactly_the_contract(tmp_path: Path) -> None:
    sock = tmp_path / "ts.sock"
    with serve(sock, Script(tailnet_statuses())) as script:
        result = watch(sock, "--once", "--format", "json")
    assert result.exit_code == 0, result.stderr
    assert script.status_reads == 2
    data = json.loads(result.stdout)
    assert data["tailscale"]["derp_share"] == 1.0  # the totals are still there
    peers = data["peers"]
    assert all(set(p) == KEYS for p in peers)
    assert [(p["name"], p["path"], p["region"], p["endpoint"]) for p in peers] == [
        ("phone", "derp", "nyc", None),  # relayed first
        ("laptop", "direct", None, "192.0.2.8:41641"),  # the busier direct peer first
        ("nas", "direct", None, "192.0.2.7:41641"),
        ("printer", "idle", None, None),
    ]
    by = {p["name"]: p for p in peers}
    # 300 kB and 100 kB in over the same interval, measured against the time between the two statuses
    assert by["laptop"]["rx_bytes_per_s"] == pytest.approx(3 * by["phone"]["rx_bytes_per_s"])
    assert 100_000 / 10 < by["phone"]["rx_bytes_per_s"] <= 100_000 / 0.2
    assert by["laptop"]["tx_bytes_per_s"] == 0.0
    assert isinstance(by["laptop"]["since_s"], float) and 0 <= by["laptop"]["since_s"] < 5
    assert by["phone"]["since_s"] is None  # on DERP since before the watch began


def test_a_url_target_has_no_peers_key(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/metrics").respond_with_data((DATA / "tailscaled-2.prom").read_text())
    result = runner.invoke(app, ["watch", httpserver.url_for("/metrics"), "--once", "-f", "json", "-i", "0.05"])
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["kind"] == "tailscale" and "peers" not in data  # metrics over HTTP: no LocalAPI status


def test_table_lists_peers_relayed_first_with_path_via_and_rates(tmp_path: Path) -> None:
    sock = tmp_path / "ts.sock"
    with serve(sock, Script(tailnet_statuses())):
        result = watch(sock, "--once")
    assert result.exit_code == 0, result.stderr
    out = result.stdout
    assert "4 peers, 1 relayed" in out
    rows = [[cell.strip() for cell in line.split("│")] for line in out.splitlines() if line.count("│") == 6]
    peer_rows = [r for r in rows if r[0] in {"phone", "laptop", "nas", "printer"}]
    assert [r[:3] for r in peer_rows] == [
        ["phone", "derp", "nyc"],
        ["laptop", "direct", "192.0.2.8:41641"],
        ["nas", "direct", "192.0.2.7:41641"],
        ["printer", "idle", ""],
    ]
    phone, laptop = peer_rows[0], peer_rows[1]
    assert re.fullmatch(r"\d+\.\d kB/s", phone[3]) and phone[3] == phone[4]
    assert phone[5] == "never" and re.fullmatch(r">= 0\.\ds", phone[6])  # on DERP since before the watch
    assert re.fullmatch(r"\d+d\d\dh ago", laptop[5]) and re.fullmatch(r"0\.\ds", laptop[6])


def test_peer_follows_one_peer(tmp_path: Path) -> None:
    sock = tmp_path / "ts.sock"
    with serve(sock, Script(tailnet_statuses())):
        as_json = watch(sock, "--once", "--format", "json", "--peer", "100.64.0.10")
    with serve(sock, Script(tailnet_statuses())):
        as_table = watch(sock, "--once", "--peer", "LAPTOP.tailnet.test.")
    assert as_json.exit_code == 0, as_json.stderr
    assert [p["name"] for p in json.loads(as_json.stdout)["peers"]] == ["phone"]
    assert as_table.exit_code == 0, as_table.stderr
    out = as_table.stdout
    assert "peer laptop (laptop.tailnet.test., 100.64.0.9, fd7a:115c:a1e0::9)" in out
    assert "path: direct to 192.0.2.8:41641 for 0.0s; home DERP region nyc" in out
    assert "phone" not in out


def test_live_view_draws_the_session_as_sparklines_and_the_path_change(tmp_path: Path) -> None:
    statuses = tailnet_statuses()
    statuses.insert(1, statuses[0])  # laptop stays on DERP for one interval, then goes direct
    sock = tmp_path / "ts.sock"
    with serve(sock, Script(statuses)):
        result = watch(sock, "--count", "3", "--peer", "laptop")
    assert result.exit_code == 0, result.stderr
    last = result.stdout[result.stdout.rindex("(every") :]
    assert re.search(r"session \d\.\ds:  DERP share █   n/a \(nothing moved\)   in █▁▁ ", last)
    assert re.search(r"in  [▁-█ ]{3}\nout [▁-█ ]{3}", last)  # three intervals of this peer
    assert re.search(r"path changes \(session time\): 0\.\ds derp fra -> 0\.\ds direct 192\.0\.2\.8:41641", last)


def test_live_view_of_every_peer_has_a_history_column(tmp_path: Path) -> None:
    sock = tmp_path / "ts.sock"
    with serve(sock, Script(tailnet_statuses())):
        result = watch(sock, "--count", "2")
    assert result.exit_code == 0, result.stderr
    last = result.stdout[result.stdout.rindex("(every") :]
    assert "IN+OUT HISTORY" in last
    assert re.search(r"phone\s*│\s*derp\s*│\s*nyc\s*│.*│ █▁ ", last)  # busy, then quiet


def test_exclude_drops_series_after_match_keeps_them(tmp_path: Path) -> None:
    sock = tmp_path / "ts.sock"
    with serve(sock, Script(tailnet_statuses())):
        result = watch(sock, "--once", "-f", "json", "--match", "bytes", "--exclude", "^tailscaled_inbound")
    assert result.exit_code == 0, result.stderr
    assert [c["series"] for c in json.loads(result.stdout)["changes"]] == [
        'tailscaled_outbound_bytes_total{path="derp"}'
    ]


def test_names_from_the_status_cannot_inject_markup_or_escapes(tmp_path: Path) -> None:
    hostile = peer("x", relay="nyc", rx=5)
    hostile["DNSName"] = "[bold red]evil\x1b[2J.tailnet.test."
    sock = tmp_path / "ts.sock"
    with serve(sock, Script([status(hostile)])):
        result = watch(sock, "--once")
    assert result.exit_code == 0, result.stderr
    assert "[bold red]evil?[2J" in result.stdout
    assert "\x1b" not in result.stdout


def test_nan_and_infinite_metric_values_render(httpserver: HTTPServer) -> None:
    served = iter(["# TYPE g gauge\ng 1\n# TYPE q gauge\nq 2\n", "# TYPE g gauge\ng NaN\n# TYPE q gauge\nq +Inf\n"])
    httpserver.expect_request("/metrics").respond_with_handler(lambda _: Response(next(served, "g NaN\nq 1e999\n")))
    result = runner.invoke(app, ["watch", httpserver.url_for("/metrics"), "--once", "-i", "0.05"])
    assert result.exit_code == 0, result.output
    assert re.search(r"^g\s*│\s*nan\s*│\s*\+?nan", result.stdout, re.MULTILINE)
    assert re.search(r"^q\s*│\s*inf\s*│\s*\+inf", result.stdout, re.MULTILINE)
