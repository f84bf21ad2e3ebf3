"""``derptool watch`` and ``derptool.watch``: parsing, rates, a Tailscale client's traffic, the geofence verdict.

The metrics in ``tests/data/watch`` were captured from a live tailnet (tailscale v1.102.5 and derper v1.102.5,
the one ``tests/support/tailnet.py`` builds): ``tailscaled-1.prom`` and ``-2.prom`` are two scrapes of a
client's LocalAPI ``/localapi/v0/usermetrics`` with 300 kB echoed through DERP in between; ``derper-*.prom``
the derper's ``/debug/varz`` at the same moments. They are served by a real HTTP server (and a real unix
socket speaking HTTP, for ``--socket``), in order.
"""

from __future__ import annotations

import json
import re
import socketserver
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer
from typer.testing import CliRunner
from werkzeug import Request, Response

from derptool.cli import app
from derptool.derpmap.sources import load_snapshot
from derptool.errors import MapError, ProtocolError, SelectorError
from derptool.watch import (
    Target,
    build_report,
    changes,
    client_traffic,
    default_target,
    geofence_from_file,
    geofence_from_selectors,
    parse_snapshot,
)
from tests.support import repo

DATA = repo.DATA / "watch"
runner = CliRunner()


def text(name: str) -> str:
    return (DATA / name).read_text()


def snaps(prefix: str, dt: float = 2.0) -> tuple[object, object]:
    return (
        parse_snapshot(text(f"{prefix}-1.prom"), taken=100.0),
        parse_snapshot(text(f"{prefix}-2.prom"), taken=100.0 + dt),
    )


# -- the library -------------------------------------------------------------------------------------


def test_parse_reads_every_series_with_its_type() -> None:
    snap = parse_snapshot(text("tailscaled-2.prom"), taken=0.0)
    assert snap.value("tailscaled_outbound_bytes_total", path="derp") == 1081236
    assert snap.value("tailscaled_inbound_packets_total", path="direct_ipv4") == 0
    assert snap.value("tailscaled_home_derp_region_id") == 1
    assert snap.series[("tailscaled_outbound_bytes_total", (("path", "derp"),))].kind == "counter"
    assert snap.series[("tailscaled_home_derp_region_id", ())].kind == "gauge"
    assert snap.value("tailscaled_outbound_bytes_total", path="nowhere") is None


def test_not_prometheus_is_a_protocol_error_naming_the_source() -> None:
    with pytest.raises(ProtocolError, match=r"^http://x/metrics: not Prometheus text"):
        parse_snapshot("<html><body>login</body></html>\n", taken=0.0, source="http://x/metrics")


def test_changes_are_exactly_the_series_that_moved_with_their_rates() -> None:
    before, after = snaps("tailscaled", dt=2.0)
    moved = {c.selector: c for c in changes(before, after)}  # type: ignore[arg-type]
    assert set(moved) == {
        'tailscaled_inbound_bytes_total{path="derp"}',
        'tailscaled_inbound_packets_total{path="derp"}',
        'tailscaled_outbound_bytes_total{path="derp"}',
        'tailscaled_outbound_packets_total{path="derp"}',
    }
    out = moved['tailscaled_outbound_bytes_total{path="derp"}']
    assert out.delta == 1081236 - 745716
    assert out.per_s == pytest.approx((1081236 - 745716) / 2.0)
    assert not out.reset


def test_match_filters_on_name_and_labels() -> None:
    before, after = snaps("tailscaled")
    got = changes(before, after, match=re.compile(r'outbound.*path="derp"'))  # type: ignore[arg-type]
    assert [c.name for c in got] == ["tailscaled_outbound_bytes_total", "tailscaled_outbound_packets_total"]


def test_a_counter_that_goes_down_was_reset_and_counts_from_zero() -> None:
    before = parse_snapshot("# TYPE x_total counter\nx_total 1000\n# TYPE g gauge\ng 10\n", taken=0.0)
    after = parse_snapshot("# TYPE x_total counter\nx_total 30\n# TYPE g gauge\ng 4\n", taken=3.0)
    by_name = {c.name: c for c in changes(before, after)}
    assert by_name["x_total"].reset and by_name["x_total"].per_s == pytest.approx(10.0)
    assert not by_name["g"].reset and by_name["g"].per_s == pytest.approx(-2.0)


def test_client_traffic_reads_paths_share_drops_health_and_home_region() -> None:
    before, after = snaps("tailscaled", dt=2.0)
    traffic = client_traffic(before, after, load_snapshot().derp_map)  # type: ignore[arg-type]
    paths = {p.path: p for p in traffic.paths}
    assert list(paths) == ["derp", "direct_ipv4", "direct_ipv6", "peer_relay_ipv4", "peer_relay_ipv6"]
    derp = paths["derp"]
    assert derp.in_bytes_per_s == pytest.approx((575852 - 237116) / 2.0)
    assert derp.out_packets_per_s == pytest.approx((1016 - 646) / 2.0)
    assert derp.in_bytes == 575852 and derp.out_packets == 1016
    assert all(p.bytes_per_s == 0 and p.bytes_total == 0 for p in traffic.paths[1:])
    assert traffic.derp_share == 1.0 and traffic.derp_share_total == 1.0
    assert [(d.direction, d.reason, d.total) for d in traffic.drops] == [("outbound", "error", 0.0)]
    assert traffic.health == {"warning": 0.0}
    assert traffic.home is not None
    assert traffic.home.label == "nyc (region 1): New York City, United States"


def test_share_mixes_direct_and_derp_bytes() -> None:
    def scrape(derp: int, direct: int, t: float) -> object:
        return parse_snapshot(
            "# TYPE tailscaled_outbound_bytes_total counter\n"
            f'tailscaled_outbound_bytes_total{{path="derp"}} {derp}\n'
            f'tailscaled_outbound_bytes_total{{path="direct_ipv4"}} {direct}\n'
            "# TYPE tailscaled_home_derp_region_id gauge\ntailscaled_home_derp_region_id 0\n",
            taken=t,
        )

    traffic = client_traffic(scrape(100, 0, 0.0), scrape(400, 900, 1.0))  # type: ignore[arg-type]
    assert traffic.derp_share == pytest.approx(300 / 1200)
    assert traffic.derp_share_total == pytest.approx(400 / 1300)
    assert traffic.home is None  # region 0: no home


def test_a_region_the_map_lacks_is_named_by_id() -> None:
    before, after = snaps("tailscaled")
    traffic = client_traffic(before, after, None)  # type: ignore[arg-type]
    assert traffic.home is not None and traffic.home.code is None
    assert traffic.home.label == "region 1 (not in the DERP map)"


def test_geofence_from_selectors_sees_regions_the_client_map_no_longer_has() -> None:
    snapshot = load_snapshot().derp_map
    client_map = snapshot.subset([4])  # after the geofence: only fra is left
    fence = geofence_from_selectors(["us"], [client_map, snapshot])
    assert fence.removes(1) and not fence.removes(4)
    assert geofence_from_selectors(["900"], [client_map]).removes(900)
    with pytest.raises(SelectorError):
        geofence_from_selectors(["nosuchplace"], [client_map])


def test_geofence_from_files(tmp_path: Path) -> None:
    policy = tmp_path / "policy.hujson"
    policy.write_text('{\n  // no US relays\n  "derpMap": {"Regions": {"1": null, "2": null,},},\n}\n')
    fence = geofence_from_file(str(policy))
    assert fence.omitted == {1, 2} and fence.allowed is None
    omit_yaml = tmp_path / "omit.yaml"
    result = runner.invoke(app, ["omit", "--region", "nyc", "--map", "snapshot", "--format", "headscale-yaml"])
    assert result.exit_code == 0, result.stderr
    omit_yaml.write_text(result.stdout)
    assert geofence_from_file(str(omit_yaml)).omitted == {1}
    full = tmp_path / "map.json"
    full.write_text(json.dumps(load_snapshot().derp_map.subset([4, 14]).to_data()))
    only = geofence_from_file(str(full))
    assert only.removes(1) and not only.removes(14)
    no_derp = tmp_path / "plain.hujson"
    no_derp.write_text('{"acls": []}')
    assert not geofence_from_file(str(no_derp)).removes(1)
    junk = tmp_path / "junk.json"
    junk.write_text('{"hello": 1}')
    with pytest.raises(MapError):
        geofence_from_file(str(junk))


def test_default_target_prefers_the_localapi_socket(tmp_path: Path) -> None:
    assert default_target(str(tmp_path / "absent.sock")) == Target(url="http://100.100.100.100/metrics")
    sock = tmp_path / "tailscaled.sock"
    sock.touch()
    assert default_target(str(sock)) == Target(socket=str(sock))


def test_build_report_for_any_endpoint() -> None:
    before, after = snaps("derper")
    report = build_report(Target(url="http://x"), before, after)  # type: ignore[arg-type]
    assert report.client is None and report.home_omitted is None
    data = report.to_data()
    assert data["kind"] == "prometheus"
    sent = next(c for c in data["changes"] if c["series"] == "derp_bytes_sent")
    assert sent["delta"] > 300_000  # the 300 kB echo went through this derper, both ways


# -- the command against served captures ------------------------------------------------------------------


def serve_in_order(httpserver: HTTPServer, prefix: str) -> list[str]:
    """Serve ``<prefix>-1.prom`` on the first request to /metrics and ``-2.prom`` on every later one."""
    seen: list[str] = []

    def handler(request: Request) -> Response:
        seen.append(request.path)
        body = text(f"{prefix}-{min(len(seen), 2)}.prom")
        return Response(body, content_type="text/plain; version=0.0.4")

    httpserver.expect_request("/metrics").respond_with_handler(handler)
    return seen


def test_once_json_on_a_tailscale_client(httpserver: HTTPServer) -> None:
    seen = serve_in_order(httpserver, "tailscaled")
    result = runner.invoke(
        app,
        [
            "watch",
            httpserver.url_for("/metrics"),
            "--once",
            "--format",
            "json",
            "--interval",
            "0.2",
            "--map",
            "snapshot",
        ],
    )
    assert result.exit_code == 0, result.stderr
    assert len(seen) == 2
    data = json.loads(result.stdout)
    assert data["kind"] == "tailscale"
    ts = data["tailscale"]
    assert ts["home_region"]["code"] == "nyc" and ts["home_region"]["country"] == "US"
    assert ts["derp_share"] == 1.0
    derp = next(p for p in ts["paths"] if p["path"] == "derp")
    # the rate is the counter's delta over the measured interval
    assert derp["out_bytes_per_s"] * data["interval_s"] == pytest.approx(1081236 - 745716, rel=0.01)
    assert data["interval_s"] >= 0.2
    assert "geofence" not in data


@pytest.mark.parametrize(
    ("args", "code", "omitted"),
    [
        (["--omitted", "us"], 1, True),
        (["--omitted", "de"], 0, False),
        (["--omitted", "north-america", "--omitted", "4"], 1, True),
    ],
)
def test_omitted_exits_1_only_when_the_home_region_is_removed(
    httpserver: HTTPServer, args: list[str], code: int, omitted: bool
) -> None:
    serve_in_order(httpserver, "tailscaled")
    result = runner.invoke(
        app,
        [
            "watch",
            httpserver.url_for("/metrics"),
            "--once",
            "--format",
            "json",
            "-i",
            "0.05",
            "--map",
            "snapshot",
            *args,
        ],
    )
    assert result.exit_code == code, result.stderr
    assert json.loads(result.stdout)["geofence"]["home_omitted"] is omitted


def test_policy_file_judges_the_home_region(httpserver: HTTPServer, tmp_path: Path) -> None:
    serve_in_order(httpserver, "tailscaled")
    policy = tmp_path / "policy.hujson"
    policy.write_text('{"derpMap": {"Regions": {"1": null}}}')
    result = runner.invoke(
        app,
        ["watch", httpserver.url_for("/metrics"), "--once", "-i", "0.05", "--map", "snapshot", "--policy", str(policy)],
    )
    assert result.exit_code == 1, result.stderr
    assert "OMITTED by the geofence" in result.stdout
    assert "nyc (region 1): New York City, United States" in result.stdout


def test_table_view_of_a_client(httpserver: HTTPServer) -> None:
    serve_in_order(httpserver, "tailscaled")
    result = runner.invoke(app, ["watch", httpserver.url_for("/metrics"), "--once", "-i", "0.05", "--map", "snapshot"])
    assert result.exit_code == 0, result.stderr
    out = result.stdout
    assert "relayed through DERP: 100.0% of bytes this interval" in out
    assert re.search(r"DERP relay\s.*[kM]B/s", out)
    assert "4 series changed" in out


def test_any_endpoint_shows_changed_series_and_match_filters(httpserver: HTTPServer) -> None:
    serve_in_order(httpserver, "derper")
    result = runner.invoke(
        app,
        [
            "watch",
            httpserver.url_for("/metrics"),
            "--once",
            "--format",
            "json",
            "-i",
            "0.05",
            "--match",
            "^derp_(bytes|packets)_(sent|received)$",
        ],
    )
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["kind"] == "prometheus" and "tailscale" not in data
    assert {c["series"] for c in data["changes"]} == {
        "derp_bytes_received",
        "derp_bytes_sent",
        "derp_packets_received",
        "derp_packets_sent",
    }
    assert all(c["per_s"] > 0 for c in data["changes"])


def test_omitted_on_something_that_is_not_a_client_is_a_usage_error(httpserver: HTTPServer) -> None:
    serve_in_order(httpserver, "derper")
    result = runner.invoke(
        app, ["watch", httpserver.url_for("/metrics"), "--once", "--omitted", "us", "--map", "snapshot"]
    )
    assert result.exit_code == 2
    assert "is not a Tailscale client" in result.stderr


def test_live_view_redraws_for_count_intervals(httpserver: HTTPServer) -> None:
    seen = serve_in_order(httpserver, "tailscaled")
    result = runner.invoke(
        app, ["watch", httpserver.url_for("/metrics"), "--count", "2", "-i", "0.05", "--map", "snapshot"]
    )
    assert result.exit_code == 0, result.stderr
    assert len(seen) == 3  # the first scrape, then one per interval
    assert "home DERP region: nyc (region 1)" in result.stdout


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["http://127.0.0.1:9/metrics", "--once"], 3, "derptool: error: http://127.0.0.1:9/metrics: cannot scrape"),
        (["--socket", "/nonexistent/tailscaled.sock", "--once"], 3, "cannot scrape"),
        (["http://127.0.0.1:9/metrics", "--match", "(unclosed"], 2, "--match: '(unclosed' is not a valid regular"),
        (["ftp://x/metrics"], 2, "is not an http(s) URL"),
        (["http://127.0.0.1:9/m", "--socket", "/x.sock"], 2, "not both"),
        (["http://127.0.0.1:9/m", "--format", "json"], 2, "--format json needs --once"),
    ],
)
def test_errors_are_one_line_with_their_exit_code(args: list[str], code: int, message: str) -> None:
    result = runner.invoke(app, ["watch", *args])
    assert result.exit_code == code
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr


def test_an_http_error_status_is_a_network_failure(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/metrics").respond_with_data("forbidden\n", status=403)
    result = runner.invoke(app, ["watch", httpserver.url_for("/metrics"), "--once"])
    assert result.exit_code == 3
    assert "HTTP 403: forbidden" in result.stderr


def test_a_page_that_is_not_metrics_is_bad_input(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/metrics").respond_with_data("<html>hi</html>\n")
    result = runner.invoke(app, ["watch", httpserver.url_for("/metrics"), "--once"])
    assert result.exit_code == 2
    assert "not Prometheus text exposition format" in result.stderr


# -- a LocalAPI unix socket ---------------------------------------------------------------------------------


class _LocalAPI(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
    requests: list[tuple[str, str]]
    scrapes: int


class _LocalAPIHandler(BaseHTTPRequestHandler):
    server: _LocalAPI

    def do_GET(self) -> None:
        self.server.requests.append((self.path, self.headers.get("Host", "")))
        if self.headers.get("Host") != "local-tailscaled.sock":
            body, status = b"wrong host\n", 403  # tailscaled refuses other Host headers
        elif self.path == "/localapi/v0/usermetrics":
            self.server.scrapes += 1
            body, status = text(f"tailscaled-{min(self.server.scrapes, 2)}.prom").encode(), 200
        elif self.path == "/localapi/v0/derpmap":
            body, status = json.dumps(load_snapshot().derp_map.subset([1, 4]).to_data()).encode(), 200
        elif self.path == "/localapi/v0/status":
            body, status = b'{"BackendState": "Running", "Peer": {}}', 200
        else:
            body, status = b"not found\n", 404
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def localapi(tmp_path: Path) -> Iterator[tuple[str, _LocalAPI]]:
    path = str(tmp_path / "tailscaled.sock")
    server = _LocalAPI(path, _LocalAPIHandler)
    server.requests, server.scrapes = [], 0
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield path, server
    server.shutdown()
    server.server_close()


def test_socket_target_scrapes_usermetrics_and_names_regions_with_the_client_map(
    localapi: tuple[str, _LocalAPI],
) -> None:
    path, server = localapi
    result = runner.invoke(
        app, ["watch", "--socket", path, "--once", "--format", "json", "-i", "0.05", "--omitted", "us"]
    )
    assert result.exit_code == 1, result.stderr
    data = json.loads(result.stdout)
    assert data["target"] == f"tailscaled LocalAPI {path}"
    assert data["tailscale"]["home_region"]["label"] == "nyc (region 1): New York City, United States"
    assert data["geofence"]["home_omitted"] is True
    paths = [p for p, _ in server.requests]
    assert paths.count("/localapi/v0/usermetrics") == 2 and "/localapi/v0/derpmap" in paths
    assert {host for _, host in server.requests} == {"local-tailscaled.sock"}


def test_https_target_trusts_the_ca_file(tmp_path: Path) -> None:
    import ssl

    import trustme

    ca = trustme.CA()
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(ctx)
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    server = HTTPServer(host="127.0.0.1", ssl_context=ctx)
    server.start()
    try:
        serve_in_order(server, "derper")
        url = server.url_for("/metrics")
        assert url.startswith("https://")
        untrusted = runner.invoke(app, ["watch", url, "--once", "-i", "0.05"])
        assert untrusted.exit_code == 3 and "CERTIFICATE_VERIFY_FAILED" in untrusted.stderr
        trusted = runner.invoke(
            app,
            [
                "watch",
                url,
                "--once",
                "-i",
                "0.05",
                "--format",
                "json",
                "--ca-file",
                str(ca_file),
                "--match",
                "^derp_bytes_sent$",
            ],
        )
        assert trusted.exit_code == 0, trusted.stderr
        assert [c["series"] for c in json.loads(trusted.stdout)["changes"]] == ["derp_bytes_sent"]
    finally:
        server.clear()
        if server.is_running():
            server.stop()
