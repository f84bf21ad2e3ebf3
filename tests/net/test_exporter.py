"""The exporter of ``latency --listen`` and ``check --listen``: HTTP behaviour, constant labels, both commands live.

The server is driven with real sockets on loopback (``http.client`` and raw sockets for clients that misbehave);
exposition text is read back with prometheus_client's parser, the one Prometheus' own client library ships.
"""

from __future__ import annotations

import gzip
import http.client
import json
import os
import re
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme
from prometheus_client.parser import text_string_to_metric_families
from typer.testing import CliRunner

from derptool.cli import app
from derptool.errors import UsageError
from derptool.net.exporter import CONTENT_TYPE, Exporter, constant_labels, parse_listen, with_labels
from tests.support.derp_server import DerpServer
from tests.support.maps import derp_map, region, stun_node
from tests.support.ports import free_port
from tests.support.repo import REPO
from tests.support.stun_responder import StunResponder

runner = CliRunner()
ROOT = REPO
TEXT = (
    "# HELP demo_seconds A demo gauge.\n"
    "# TYPE demo_seconds gauge\n"
    'demo_seconds{region_id="4",region_code="fra"} 0.012\n'
    "demo_seconds{} 1\n"
    "# TYPE demo_up gauge\n"
    "demo_up 1\n"
)


def _http(
    port: int, method: str, path: str, headers: dict[str, str] | None = None, host: str = "127.0.0.1"
) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection(host, port, timeout=5)
    try:
        conn.request(method, path, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


@pytest.fixture
def exporter() -> Iterator[Exporter]:
    with Exporter("127.0.0.1", 0, every=60) as exp:
        yield exp


# -- HTTP ------------------------------------------------------------------------------------------------


def test_before_the_first_round_everything_is_503(exporter: Exporter) -> None:
    port = exporter.address[1]
    for path in ("/metrics", "/", "/healthz"):
        status, headers, body = _http(port, "GET", path)
        assert status == 503
        assert body.endswith(b"\n") and body.count(b"\n") == 1
        assert headers["content-length"] == str(len(body))
    assert _http(port, "GET", "/healthz")[2] == b"starting: no round has finished yet\n"
    status, headers, body = _http(port, "HEAD", "/healthz")
    assert (status, body) == (503, b"") and int(headers["content-length"]) > 0


def test_get_and_head_after_a_round(exporter: Exporter) -> None:
    port = exporter.address[1]
    exporter.publish(TEXT)
    status, headers, body = _http(port, "GET", "/metrics")
    assert status == 200 and body == TEXT.encode()
    assert headers["content-type"] == CONTENT_TYPE
    assert headers["content-type"].startswith("text/plain; version=0.0.4")
    assert _http(port, "GET", "/")[2] == body
    assert _http(port, "GET", "/metrics?name[]=demo_up")[2] == body  # Prometheus' params are ignored
    head_status, head_headers, head_body = _http(port, "HEAD", "/metrics")
    assert (head_status, head_body) == (200, b"")
    assert head_headers["content-length"] == str(len(body)) and head_headers["content-type"] == CONTENT_TYPE
    status, _, health = _http(port, "GET", "/healthz")
    assert status == 200 and health.startswith(b"ok: 1 round(s), the last finished 0 s ago")
    assert health.count(b"\n") == 1
    assert _http(port, "HEAD", "/healthz")[:1] == (200,)
    exporter.publish(b"demo_up 0\n")
    assert _http(port, "GET", "/metrics")[2] == b"demo_up 0\n"
    assert _http(port, "GET", "/healthz")[2].startswith(b"ok: 2 round(s)")


def test_other_paths_and_methods(exporter: Exporter) -> None:
    port = exporter.address[1]
    exporter.publish(TEXT)
    for method in ("GET", "HEAD"):
        status, _, body = _http(port, method, "/favicon.ico")
        assert status == 404 and body == (
            b"not found; metrics are on /metrics, health on /healthz\n" if method == "GET" else b""
        )
    assert _http(port, "POST", "/metrics")[::2] == (501, b"501 Unsupported method ('POST')\n")


def test_gzip_when_the_scraper_asks(exporter: Exporter) -> None:
    port = exporter.address[1]
    text = TEXT * 200  # a size like 30 regions' worth of series
    exporter.publish(text)
    status, headers, body = _http(port, "GET", "/metrics", {"Accept-Encoding": "gzip"})
    assert status == 200 and headers["content-encoding"] == "gzip" and headers["vary"] == "Accept-Encoding"
    assert gzip.decompress(body) == text.encode() and len(body) < len(text) / 10
    assert "content-encoding" not in _http(port, "GET", "/metrics")[1]


def test_stale_rounds_make_healthz_fail(exporter: Exporter) -> None:
    assert exporter.stale_after == 3 * 60 + 300
    exporter.publish(TEXT)
    exporter.stale_after = 0.05
    time.sleep(0.1)
    status, _, body = _http(exporter.address[1], "GET", "/healthz")
    assert status == 503 and body.startswith(b"stale: the last round finished 0 s ago (limit 0 s)")
    assert _http(exporter.address[1], "GET", "/metrics")[0] == 200  # the last values are still served


def _reset(sock: socket.socket) -> None:
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # close sends RST
    sock.close()


def test_clients_that_go_away_leave_no_traceback(exporter: Exporter, capfd: pytest.CaptureFixture[str]) -> None:
    port = exporter.address[1]
    exporter.publish("demo_up 1\n" * 400_000)  # 4 MB: the server is still writing when the client resets
    for _ in range(5):
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            sock.recv(100)
            _reset(sock)
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        _reset(sock)  # connects, says nothing, resets
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"GET /metr")  # half a request line, then gone
        _reset(sock)
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03" + bytes(40) + b"\r\n\r\n")  # a TLS hello
        answer = b"".join(iter(lambda: sock.recv(1000), b""))
        assert answer.startswith(b"400 Bad request syntax") and answer.count(b"\n") == 1  # no status line: 0.9
    time.sleep(0.3)  # let the server threads hit the broken connections
    assert _http(port, "GET", "/healthz")[0] == 200  # still serving
    err = capfd.readouterr().err
    assert "Traceback" not in err and err == ""


def test_close_releases_the_port() -> None:
    exp = Exporter("127.0.0.1", 0)
    port = exp.address[1]
    threads = threading.active_count()
    exp.close()
    exp.close()  # idempotent
    assert threading.active_count() == threads - 1
    with pytest.raises(ConnectionRefusedError):
        _http(port, "GET", "/metrics")
    Exporter("127.0.0.1", port).close()  # the address can be had again at once


def test_ipv6_loopback() -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6 on this machine")
    try:
        exp = Exporter("::1", 0)
    except UsageError as err:
        pytest.skip(f"::1 cannot be bound here: {err}")
    with exp:
        exp.publish(TEXT)
        assert _http(exp.address[1], "GET", "/metrics", host="::1")[0] == 200


def test_a_busy_address_is_one_usage_error() -> None:
    with Exporter("127.0.0.1", 0) as exp:
        port = exp.address[1]
        with pytest.raises(UsageError) as err:
            Exporter("127.0.0.1", port)
    assert str(err.value) == f"--listen 127.0.0.1:{port}: Address already in use"


# -- option values ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "address"),
    [
        ("127.0.0.1:9469", ("127.0.0.1", 9469)),
        ("[::1]:9469", ("::1", 9469)),
        ("[::]:0", ("::", 0)),
        (":9469", ("0.0.0.0", 9469)),
        ("localhost:80", ("localhost", 80)),
    ],
)
def test_parse_listen(text: str, address: tuple[str, int]) -> None:
    assert parse_listen(text) == address


@pytest.mark.parametrize(
    "text", ["nowhere", "127.0.0.1", "127.0.0.1:http", "1.2.3.4:70000", "[::1]", "::1:80", "[::1]x80", ""]
)
def test_parse_listen_rejects(text: str) -> None:
    with pytest.raises(UsageError) as err:
        parse_listen(text)
    assert str(err.value) == f"--listen: {text!r} is not ADDR:PORT (examples: 127.0.0.1:9469, [::]:9469)"


def test_constant_labels() -> None:
    assert constant_labels(["team=net", "env = prod"], site="office-x") == {
        "team": "net",
        "env": " prod",
        "site": "office-x",
    }
    assert constant_labels([]) == {}
    assert constant_labels(["expr=a=b"]) == {"expr": "a=b"}


@pytest.mark.parametrize(
    ("pairs", "site", "message"),
    [
        (["site"], None, "--site-label: 'site' is not NAME=VALUE (example: --site-label site=office-denver)"),
        (["9site=x"], None, "--site-label: '9site' is not a label name (letters, digits, _; example: site)"),
        (["__name__=x"], None, "--site-label: '__name__' is not a label name"),
        (["site-name=x"], None, "--site-label: 'site-name' is not a label name"),
        (["instance=x"], None, "--site-label: Prometheus sets the 'instance' label itself; name the site with --site"),
        (["job=x"], None, "--site-label: Prometheus sets the 'job' label itself"),
        (["region_id=1"], None, "--site-label: the series already carry a 'region_id' label; choose another name"),
        (["team="], None, "--site-label: team= needs a value"),
        (["team=a", "team=b"], None, "--site-label: the label 'team' is given twice"),
        (["site=a"], "b", "--site: the label 'site' is given twice"),
        ([], "", "--site: site= needs a value"),
    ],
)
def test_constant_labels_reject(pairs: list[str], site: str | None, message: str) -> None:
    with pytest.raises(UsageError) as err:
        constant_labels(pairs, site=site, taken=("region_id",))
    assert str(err.value).startswith(message)


def test_with_labels_adds_to_every_sample() -> None:
    labels = {"site": 'office "x"\\1\nb', "team": "net"}
    text = with_labels(TEXT, labels)
    assert text.count("# ") == TEXT.count("# ")  # comments untouched
    samples = _samples(text)
    assert samples == {
        ("demo_seconds", tuple(sorted({**labels, "region_id": "4", "region_code": "fra"}.items()))): 0.012,
        ("demo_seconds", tuple(sorted(labels.items()))): 1.0,
        ("demo_up", tuple(sorted(labels.items()))): 1.0,
    }
    assert with_labels(TEXT, {}) == TEXT


# -- both commands ---------------------------------------------------------------------------------------


@pytest.fixture
def latency_map(tmp_path: Path) -> Iterator[str]:
    with StunResponder() as responder:
        near = responder.add("127.0.43.1", delay_ms=5)
        far = responder.add("127.0.43.2", delay_ms=40)
        data = derp_map(
            {"RegionID": 4, "RegionCode": "fra", "RegionName": "Frankfurt", "Nodes": [stun_node("4a", 4, near)]},
            region(901, [stun_node("901a", 901, far)]),
        )
        path = tmp_path / "map.json"
        path.write_text(json.dumps(data))
        yield str(path)


def _all_labelled(text: str, labels: dict[str, str]) -> int:
    families = list(text_string_to_metric_families(text))
    samples = [s for f in families for s in f.samples]
    assert samples
    for s in samples:
        assert {k: s.labels.get(k) for k in labels} == labels, s
    return len(samples)


def test_latency_format_prometheus_carries_the_site_labels(latency_map: str) -> None:
    result = runner.invoke(
        app,
        [
            "latency",
            "--map",
            latency_map,
            "-f",
            "prometheus",
            "--site",
            "office-x",
            "--site-label",
            'team=net "core"',
            "--timeout",
            "2s",
        ],
    )
    assert result.exit_code == 0, result.output
    labels = {"site": "office-x", "team": 'net "core"'}
    assert _all_labelled(result.stdout, labels) >= 10
    samples = _samples(result.stdout)
    key = tuple(sorted({**labels, "region_id": "4", "region_code": "fra", "country": "DE"}.items()))
    assert samples[("derptool_region_up", key)] == 1
    assert samples[("derptool_preferred_region", key)] == 4


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--site-label", "site-name=x"], "derptool: error: --site-label: 'site-name' is not a label name"),
        (["--site-label", "country=DE"], "derptool: error: --site-label: the series already carry a 'country' label"),
        (["--site-label", "instance=x"], "derptool: error: --site-label: Prometheus sets the 'instance' label itself"),
        (["--site", "a", "--site-label", "site=b"], "derptool: error: --site: the label 'site' is given twice"),
        (["--listen", "[::1]"], "derptool: error: --listen: '[::1]' is not ADDR:PORT"),
    ],
)
def test_latency_bad_labels_exit_2(latency_map: str, args: list[str], message: str) -> None:
    result = runner.invoke(app, ["latency", "--map", latency_map, *args])
    assert result.exit_code == 2
    assert result.stderr.startswith(message) and result.stderr.count("\n") == 1
    assert result.stdout == ""


def test_labels_without_prometheus_output_warn(latency_map: str) -> None:
    result = runner.invoke(app, ["latency", "--map", latency_map, "--site", "x", "-f", "json"])
    assert result.exit_code == 0
    assert "--site-label and --site label Prometheus series only" in result.stderr


def test_a_busy_listen_address_exits_2_for_both_commands(latency_map: str) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        for args in (["latency", "--map", latency_map], ["check", "127.0.0.1:9", "--stun-port", "9"]):
            result = runner.invoke(app, [*args, "--listen", f"127.0.0.1:{port}", "--every", "1s"])
            assert result.exit_code == 2, result.output
            assert result.stderr == f"derptool: error: --listen 127.0.0.1:{port}: Address already in use\n"


def _scrape_live(args: list[str], env: dict[str, str], want: int = 1) -> str:
    """Run ``derptool ARGS --listen`` until /healthz counts *want* rounds; then /metrics' text."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "derptool", *args, "--listen", f"127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        env={**os.environ, "PYTHONPATH": str(ROOT), **env},
    )
    try:
        text, health, deadline = "", b"", time.monotonic() + 30
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                status, _, health = _http(port, "GET", "/healthz")
            except OSError:
                time.sleep(0.05)
                continue
            rounds = re.match(rb"ok: (\d+) round", health)
            if status == 200 and rounds and int(rounds[1]) >= want:
                status, headers, body = _http(port, "GET", "/metrics")
                assert status == 200 and headers["content-type"] == CONTENT_TYPE
                text = body.decode()
                break
            assert status == 200 or health == b"starting: no round has finished yet\n"
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=20)
    assert text, f"no round served: {err.decode()}"
    assert proc.returncode == 130 and "Traceback" not in err.decode()
    return text


def test_latency_listen_serves_labelled_rounds(latency_map: str) -> None:
    text = _scrape_live(
        ["latency", "--map", latency_map, "--every", "200ms", "--timeout", "2s", "-f", "json", "--site", "office-x"],
        {},
        want=2,
    )
    assert _all_labelled(text, {"site": "office-x"}) >= 10
    samples = _samples(text)
    assert samples[("derptool_udp", (("site", "office-x"),))] == 1
    lat = samples[
        (
            "derptool_region_latency_seconds",
            (("country", "DE"), ("method", "stun"), ("region_code", "fra"), ("region_id", "4"), ("site", "office-x")),
        )
    ]
    assert 0.005 <= lat < 0.1


@pytest.fixture(scope="module")
def derp_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[DerpServer, str]]:
    ca = trustme.CA()
    work = tmp_path_factory.mktemp("derp")
    ca.cert_pem.write_to_path(str(work / "ca.pem"))
    cert = ca.issue_cert("localhost")
    (work / "chain.pem").write_bytes(b"".join(blob.bytes() for blob in cert.cert_chain_pems))
    cert.private_key_pem.write_to_path(str(work / "key.pem"))
    with DerpServer(str(work / "chain.pem"), str(work / "key.pem")) as srv:
        yield srv, str(work / "ca.pem")


def test_check_listen_serves_its_rounds(derp_server: tuple[DerpServer, str]) -> None:
    srv, ca_file = derp_server
    with StunResponder() as responder:
        stun = responder.add("127.0.0.1")
        text = _scrape_live(
            [
                "check",
                f"https://localhost:{srv.port}/",
                "--stun-port",
                str(stun.port),
                "--every",
                "200ms",
                "--timeout",
                "2",
                "-f",
                "json",
            ],
            {"DERPTOOL_CA_FILE": ca_file},
            want=2,
        )
    samples = _samples(text)
    node = {"node": "localhost", "host": "localhost", "region_id": "", "family": "4"}
    assert samples[("derptool_check_up", tuple(sorted(node.items())))] == 1
    for step in ("stun", "tls", "derp"):
        assert samples[("derptool_check_step_success", tuple(sorted({**node, "step": step}.items())))] == 1
    assert samples[("derptool_check_runs_total", ())] >= 2
