"""Hostile input on the LocalAPI status surface: wrong JSON types, NaN and huge byte counts, missing fields,
and a socket that drip-feeds, never ends, never answers or does not speak HTTP. Every one is a clean
``ProtocolError``/``NetworkError`` in the library and one line with its exit code from the CLI."""

from __future__ import annotations

import json
import socket
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from derptool.cli import app
from derptool.errors import NetworkError, ProtocolError
from derptool.watch import Target, parse_status, scrape
from derptool.watch.localapi import localapi_get
from tests.watch.fake_localapi import Script, peer, serve, status

runner = CliRunner()


def bad_peer(**fields: Any) -> dict[str, Any]:
    return status({**peer("laptop"), **fields})


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([], r"^status: expected a JSON object, got an array$"),
        ("Running", r"expected a JSON object, got the string 'Running'"),
        ({"Peer": []}, r"^status: Peer: expected an object of peers, got an array$"),
        ({"Peer": {"k": 7}}, r"^status: Peer\[k\]: expected an object, got the number 7$"),
        ({"Self": "me"}, r"^status: Self: expected an object"),
        ({"BackendState": 3}, r"^status\.BackendState: expected a string, got the number 3$"),
        (bad_peer(RxBytes="12"), r"\]\.RxBytes: expected a byte count, got the string '12'$"),
        (bad_peer(RxBytes=True), r"\]\.RxBytes: expected a byte count, got a boolean$"),
        (bad_peer(TxBytes=float("nan")), r"\]\.TxBytes: expected a whole byte count, got nan$"),
        (bad_peer(TxBytes=float("inf")), r"\]\.TxBytes: expected a whole byte count, got inf$"),
        (bad_peer(RxBytes=1.5), r"expected a whole byte count, got 1\.5$"),
        (bad_peer(RxBytes=-1), r"byte count -1 is outside 0 to 2\^63-1$"),
        (bad_peer(RxBytes=2**63), r"byte count 9\.22337e\+18 is outside 0 to 2\^63-1$"),
        (bad_peer(Active="yes"), r"\]\.Active: expected true or false, got the string 'yes'$"),
        (bad_peer(HostName=["x"]), r"\]\.HostName: expected a string, got an array$"),
        (bad_peer(TailscaleIPs="100.64.0.1"), r"\]\.TailscaleIPs: expected a list of addresses"),
        (bad_peer(TailscaleIPs=[1]), r"\]\.TailscaleIPs: expected a list of addresses"),
        (bad_peer(LastHandshake="yesterday"), r"\]\.LastHandshake: 'yesterday' is not an RFC 3339 time$"),
        (bad_peer(LastHandshake="2026-05-01T10:00:00"), r"has no time zone$"),
        (bad_peer(CurAddr="example.com:41641"), r"\]\.CurAddr: 'example\.com:41641' is not an ip:port$"),
        (bad_peer(CurAddr="192.0.2.1:99999"), r"is not an ip:port$"),
        (bad_peer(PeerRelay="192.0.2.1"), r"\]\.PeerRelay: '192\.0\.2\.1' is not an ip:port$"),
    ],
)
def test_wrong_shapes_are_protocol_errors_naming_the_field(data: Any, message: str) -> None:
    with pytest.raises(ProtocolError, match=message):
        parse_status(data, taken=0.0, wall=0.0)


def test_1e999_in_the_json_text_is_infinite_and_refused() -> None:
    text = json.dumps(status(peer("laptop"))).replace('"RxBytes": 0', '"RxBytes": 1e999')
    with pytest.raises(ProtocolError, match=r"RxBytes: expected a whole byte count, got inf"):
        parse_status(json.loads(text), taken=0.0, wall=0.0)


def test_missing_fields_count_as_empty() -> None:
    got = parse_status({"Peer": {"nodekey:0123456789abcdef": {}}, "Self": None}, taken=0.0, wall=0.0)
    (state,) = got.peers.values()
    assert state.name == "01234567"  # no names at all: the short key
    assert (state.rx_bytes, state.active, state.last_handshake, state.relay) == (0, False, None, "")
    assert parse_status({}, taken=0.0, wall=0.0).peers == {}
    assert parse_status({"Peer": None}, taken=0.0, wall=0.0).peers == {}


# -- the socket ---------------------------------------------------------------------------------------------


def test_a_drip_fed_answer_is_abandoned_at_the_total_deadline(tmp_path: Path) -> None:
    sock = tmp_path / "ts.sock"
    with serve(sock, Script([status(peer("laptop"))], mode="drip")):
        begin = time.monotonic()
        with pytest.raises(NetworkError, match=r"no complete answer to /localapi/v0/status within 0\.5 s$"):
            localapi_get(str(sock), "/localapi/v0/status", timeout=0.5, max_bytes=1 << 20)
        # the drip would take a minute; the deadline ends it (each byte arrives well within 0.5 s)
        assert time.monotonic() - begin < 10


def test_an_endless_answer_stops_at_the_size_cap(tmp_path: Path) -> None:
    sock = tmp_path / "ts.sock"
    with (
        serve(sock, Script([status()], mode="endless")),
        pytest.raises(NetworkError, match=r"answer to /localapi/v0/status larger than 1 MiB$"),
    ):
        localapi_get(str(sock), "/localapi/v0/status", timeout=20, max_bytes=1 << 20)


def test_a_socket_that_never_answers_times_out(tmp_path: Path) -> None:
    sock = tmp_path / "ts.sock"
    with (
        serve(sock, Script([status()], mode="silent")),
        pytest.raises(NetworkError, match=r"no complete answer to /localapi/v0/status within 0\.3 s$"),
    ):
        localapi_get(str(sock), "/localapi/v0/status", timeout=0.3, max_bytes=1 << 20)


def test_an_answer_that_is_not_http_is_a_protocol_error(tmp_path: Path) -> None:
    sock = tmp_path / "ts.sock"
    with (
        serve(sock, Script([status()], mode="garbage")),
        pytest.raises(ProtocolError, match=r"the answer to /localapi/v0/status is not HTTP \('SSH-2\.0"),
    ):
        localapi_get(str(sock), "/localapi/v0/status", timeout=5, max_bytes=1 << 20)


def test_a_path_that_is_not_a_socket(tmp_path: Path) -> None:
    plain = tmp_path / "file"
    plain.write_text("x")
    with pytest.raises(NetworkError, match=r"cannot scrape: Connection refused$"):
        localapi_get(str(plain), "/localapi/v0/status", timeout=1, max_bytes=1 << 20)


# -- through the command --------------------------------------------------------------------------------------


def watch(sock: Path, *args: str) -> Any:
    return runner.invoke(app, ["watch", "--socket", str(sock), "--once", "-i", "0.05", "--map", "snapshot", *args])


def one_line(result: Any, code: int, message: str) -> None:
    assert result.exit_code == code, result.output
    assert result.stderr.startswith("derptool: error: ")
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("served", "message"),
    [
        (b"{not json", "status is not JSON"),
        (b'{"Peer": {"nodekey:ab": {"RxBytes": NaN}}}', "RxBytes: expected a whole byte count, got nan"),
        (b'{"Peer": {"nodekey:ab": {"TxBytes": 1e999}}}', "TxBytes: expected a whole byte count, got inf"),
        (b'{"Peer": "none"}', "Peer: expected an object of peers"),
        (b"[" * 100_000, "status is not JSON"),
    ],
)
def test_a_bad_status_exits_2_on_one_line(tmp_path: Path, served: bytes, message: str) -> None:
    sock = tmp_path / "ts.sock"
    with serve(sock, Script([served])):
        one_line(watch(sock, "--format", "json"), 2, message)


def test_a_bad_status_later_in_the_session_also_exits_2(tmp_path: Path) -> None:
    sock = tmp_path / "ts.sock"
    with serve(sock, Script([status(peer("laptop")), b'{"Peer": {"k": {"Active": 1}}}'])):
        one_line(watch(sock, "--format", "json"), 2, "Peer[k].Active: expected true or false, got the number 1")


def test_a_drip_fed_status_exits_3_on_one_line(tmp_path: Path) -> None:
    sock = tmp_path / "ts.sock"
    with serve(sock, Script([status(peer("laptop"))], mode="drip")):
        one_line(watch(sock), 3, "no complete answer to /localapi/v0/status within 5 s")


def test_unknown_peer_exits_2_naming_the_peers(tmp_path: Path) -> None:
    sock = tmp_path / "ts.sock"
    with serve(sock, Script([status(peer("laptop"), peer("phone", ip="100.64.0.10"))])):
        one_line(watch(sock, "--peer", "desktop"), 2, "--peer 'desktop': no such peer; the peers are: laptop, phone")


def test_peer_on_a_url_target_exits_2() -> None:
    result = runner.invoke(app, ["watch", "http://127.0.0.1:9/metrics", "--once", "--peer", "laptop"])
    one_line(result, 2, "--peer needs a tailscaled LocalAPI target (--socket PATH)")


@pytest.mark.parametrize("option", ["--match", "--exclude"])
@pytest.mark.parametrize("regex", ["(unclosed", "a{2,1}", "*x", "(?P<n>a)(?P<n>b)"])
def test_a_bad_regex_exits_2_naming_the_option(option: str, regex: str) -> None:
    result = runner.invoke(app, ["watch", "http://127.0.0.1:9/metrics", "--once", option, regex])
    one_line(result, 2, f"{option}: {regex!r} is not a valid regular expression")


def test_a_drip_fed_metrics_url_is_abandoned_at_the_total_deadline() -> None:
    """The same deadline for an HTTP target (httpx's own timeouts are per read, which a drip never trips)."""
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def drip() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.recv(65536)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n")
            while not stop.is_set():
                try:
                    conn.sendall(b"#")
                except OSError:
                    return
                time.sleep(0.05)

    threading.Thread(target=drip, daemon=True).start()
    port = listener.getsockname()[1]
    try:
        begin = time.monotonic()
        with pytest.raises(NetworkError, match=r"no complete answer within 0\.5 s$"):
            scrape(Target(url=f"http://127.0.0.1:{port}/metrics"), timeout=0.5)
        assert time.monotonic() - begin < 10  # the whole body would take over an hour
    finally:
        stop.set()
        listener.close()
