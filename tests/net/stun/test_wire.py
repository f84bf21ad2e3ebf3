"""STUN wire format: Tailscale's request bytes, strict response parsing, interop with coturn, fuzzing."""

from __future__ import annotations

import contextlib
import ipaddress
import json
import shutil
import socket
import struct
import subprocess
import sys
import time
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from derptool.errors import DerptoolError
from derptool.net import stun
from derptool.net.stun import BindingResponse, StunError
from tests.support import stun_responder
from tests.support.ports import free_udp_port
from tests.support.prereq import missing_command, need
from tests.support.repo import REPO

TXID = bytes(range(1, 13))


def _msg(msg_type: int, attrs: bytes, txid: bytes = TXID, fingerprint: bool = False) -> bytes:
    head = struct.pack("!HHI", msg_type, len(attrs) + (8 if fingerprint else 0), stun.MAGIC_COOKIE) + txid
    body = head + attrs
    if fingerprint:
        body += struct.pack("!HHI", 0x8028, 4, (zlib.crc32(body) ^ 0x5354554E) & 0xFFFFFFFF)
    return body


def _attr(atype: int, value: bytes) -> bytes:
    return struct.pack("!HH", atype, len(value)) + value + b"\0" * (-len(value) % 4)


def _mapped(ip: str, port: int) -> bytes:
    packed = socket.inet_pton(socket.AF_INET6 if ":" in ip else socket.AF_INET, ip)
    return struct.pack("!BBH", 0, 2 if ":" in ip else 1, port) + packed


def _xor_mapped(ip: str, port: int, txid: bytes = TXID) -> bytes:
    plain = _mapped(ip, port)
    key = struct.pack("!I", stun.MAGIC_COOKIE) + txid
    port_x = port ^ 0x2112
    return plain[:2] + struct.pack("!H", port_x) + bytes(a ^ k for a, k in zip(plain[4:], key, strict=False))


# -- the request -------------------------------------------------------------------------------


def test_request_is_byte_for_byte_what_tailscale_sends() -> None:
    req = stun.binding_request(TXID)
    body = b"\x00\x01\x00\x14\x21\x12\xa4\x42" + TXID + b"\x80\x22\x00\x08tailnode"
    fp = (zlib.crc32(body) ^ 0x5354554E) & 0xFFFFFFFF
    assert req == body + b"\x80\x28\x00\x04" + struct.pack("!I", fp)
    assert len(req) == 40


def test_transaction_ids_are_random_12_bytes() -> None:
    ids = {stun.new_transaction_id() for _ in range(100)}
    assert len(ids) == 100
    assert all(len(t) == 12 for t in ids)


def test_request_rejects_bad_txid_length() -> None:
    with pytest.raises(ValueError):
        stun.binding_request(b"short")


def test_parse_request_round_trip_and_independent_check() -> None:
    txid = stun.new_transaction_id()
    req = stun.binding_request(txid)
    assert stun.parse_request(req) == txid
    # the stdlib-only responder agrees: it is an independent implementation
    assert stun_responder.tailscale_txid(req) == txid


@pytest.mark.parametrize(
    ("packet", "reason"),
    [
        (_msg(0x0001, _attr(0x8022, b"tailnode")), "FINGERPRINT"),
        (_msg(0x0001, _attr(0x8022, b"othernod"), fingerprint=True), "tailnode"),
        (_msg(0x0001, b"", fingerprint=True), "tailnode"),
        (_msg(0x0101, _attr(0x8022, b"tailnode"), fingerprint=True), "not a binding request"),
        (_msg(0x0001, _attr(0x8022, b"tailnode"), fingerprint=True)[:-1] + b"\0", "FINGERPRINT"),
        (_msg(0x0001, _attr(0x8022, b"tailnode"), fingerprint=True) + _attr(0x8022, b"tailnode"), "length"),
    ],
)
def test_parse_request_rejects_non_tailscale_requests(packet: bytes, reason: str) -> None:
    with pytest.raises(StunError, match=reason):
        stun.parse_request(packet)


def test_fingerprint_must_be_last_in_request() -> None:
    good = stun.binding_request(TXID)
    extra = _attr(0x8023, b"abcd")
    # rebuild with an attribute after the fingerprint and a length field that counts it
    body = bytearray(good + extra)
    struct.pack_into("!H", body, 2, len(body) - 20)
    with pytest.raises(StunError, match="last"):
        stun.parse_request(bytes(body))


# -- responses ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("ip", "port"), [("192.0.2.7", 41641), ("2001:db8::1", 3478), ("::ffff:1.2.3.4", 1)])
def test_response_round_trip(ip: str, port: int) -> None:
    txid = stun.new_transaction_id()
    got = stun.parse_response(stun.binding_response(txid, ip, port), txid)
    addr = ipaddress.ip_address(ip)
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped:
        addr = addr.ipv4_mapped  # an IPv4-mapped address comes back as IPv4, as in Go
    assert got == BindingResponse(txid=txid, ip=str(addr), port=port)
    # the independent responder encoder gives the same bytes
    assert stun_responder.success_response(txid, ip, port) == stun.binding_response(txid, ip, port)


def test_ipv6_is_normalised() -> None:
    pkt = stun.binding_response(TXID, "2001:0db8:0000:0000:0000:0000:0000:0001", 9)
    assert stun.parse_response(pkt).ip == "2001:db8::1"


@pytest.mark.parametrize("atype", [0x0020, 0x8020])
def test_xor_mapped_address_both_types(atype: int) -> None:
    pkt = _msg(0x0101, _attr(atype, _xor_mapped("203.0.113.5", 5000)))
    assert stun.parse_response(pkt, TXID) == BindingResponse(TXID, "203.0.113.5", 5000)


def test_mapped_address_fallback_v4_and_v6() -> None:
    pkt = _msg(0x0101, _attr(0x0001, _mapped("198.51.100.1", 1234)))
    assert stun.parse_response(pkt) == BindingResponse(TXID, "198.51.100.1", 1234)
    pkt = _msg(0x0101, _attr(0x0001, _mapped("2001:db8::2", 80)))
    assert stun.parse_response(pkt).ip == "2001:db8::2"


def test_xor_mapped_wins_over_mapped_in_any_order() -> None:
    attrs = (
        _attr(0x0001, _mapped("198.51.100.1", 1))
        + _attr(0x8020, _xor_mapped("198.51.100.2", 2))
        + _attr(0x0020, _xor_mapped("198.51.100.3", 3))
    )
    assert stun.parse_response(_msg(0x0101, attrs)).ip == "198.51.100.3"
    attrs = _attr(0x0001, _mapped("198.51.100.1", 1)) + _attr(0x8020, _xor_mapped("198.51.100.2", 2))
    assert stun.parse_response(_msg(0x0101, attrs)).ip == "198.51.100.2"


def test_unknown_attributes_are_skipped_and_fingerprint_checked() -> None:
    attrs = _attr(0x8022, b"coturn-x") + _attr(0x802B, b"\0" * 8) + _attr(0x0020, _xor_mapped("192.0.2.1", 7))
    pkt = _msg(0x0101, attrs, fingerprint=True)
    assert stun.parse_response(pkt, TXID).port == 7
    bad = pkt[:-1] + bytes([pkt[-1] ^ 1])
    with pytest.raises(StunError, match="FINGERPRINT"):
        stun.parse_response(bad, TXID)


GOOD = stun.binding_response(TXID, "192.0.2.1", 7)


@pytest.mark.parametrize(
    ("packet", "reason"),
    [
        (b"", "truncated"),
        (GOOD[:19], "truncated"),
        (GOOD[:-4], "truncated"),
        (GOOD + b"\0" * 5000, "oversized"),
        (GOOD[:3] + b"\x0d" + GOOD[4:], "wrong length field"),
        (GOOD[:4] + b"\x21\x12\xa4\x43" + GOOD[8:], "cookie"),
        (b"\x80" + GOOD[1:], "not a STUN message"),
        (_msg(0x0111, _attr(0x0020, _xor_mapped("192.0.2.1", 7))), "not a success binding response"),
        (_msg(0x0001, _attr(0x0020, _xor_mapped("192.0.2.1", 7))), "not a success binding response"),
        (_msg(0x0101, _attr(0x8022, b"x")), "no address"),
        (_msg(0x0101, b""), "no address"),
        (_msg(0x0101, struct.pack("!HH", 0x0020, 40) + b"\0" * 8), "malformed"),
        (_msg(0x0101, _attr(0x0020, b"\0\x01\0")), "malformed"),
        (_msg(0x0101, _attr(0x0020, b"\0\x03\0\0" + b"\0" * 4)), "family"),
        (_msg(0x0101, _attr(0x0020, b"\0\x01\0\0" + b"\0" * 16)), "IPv4 needs 4"),
        (_msg(0x0101, _attr(0x0001, b"\0\x02\0\0" + b"\0" * 4)), "IPv6 needs 16"),
        (_msg(0x0101, b"\0\x20\0\x05\0\x01\0\0"), "malformed"),
    ],
)
def test_parse_response_rejects_with_reason(packet: bytes, reason: str) -> None:
    with pytest.raises(StunError, match=reason):
        stun.parse_response(packet, TXID)


def test_txid_mismatch() -> None:
    with pytest.raises(StunError, match="transaction ID mismatch"):
        stun.parse_response(GOOD, bytes(12))
    assert stun.parse_response(GOOD).txid == TXID  # no expectation: accepted


def test_stun_error_is_a_value_error_and_a_derptool_error() -> None:
    err = StunError("bad cookie")
    assert isinstance(err, ValueError)
    assert isinstance(err, DerptoolError)
    assert str(err) == err.reason == "bad cookie"


def test_response_bytes_after_the_stated_length_are_dropped_requests_stay_strict() -> None:
    got = stun.parse_response(GOOD + b"\x01\x01\x00\x24" + b"\0" * 4, TXID)
    assert (got.ip, got.port) == ("192.0.2.1", 7)
    with pytest.raises(StunError, match="wrong length field"):
        stun.parse_request(stun.binding_request(TXID) + b"\0" * 4)


def test_ipv4_mapped_addresses_are_unmapped() -> None:
    for atype, value in (
        (0x0020, _xor_mapped("::ffff:198.51.100.9", 4242)),
        (0x0001, _mapped("::ffff:198.51.100.9", 4242)),
    ):
        got = stun.parse_response(_msg(0x0101, _attr(atype, value)), TXID)
        assert (got.ip, got.port) == ("198.51.100.9", 4242)
    assert (
        stun.parse_response(_msg(0x0101, _attr(0x0020, _xor_mapped("::198.51.100.9", 1))), TXID).ip == "::c633:6409"
    )  # IPv4-compatible (not mapped) stays IPv6


# -- Go's parse vectors (tailscale.com/net/stun stun_test.go, v1.102.5), as our own table -------------
# Each: name, the packet (hex), the transaction ID (hex), the address and port the server saw.

GO_RESPONSES = [
    (
        "google-1",
        "0101000c2112a4422360b11e3ec68ffa93e08007002000080001c7866957856f",
        "2360b11e3ec68ffa93e08007",
        "72.69.33.45",
        59028,
    ),
    (
        "google-2",
        "0101000c2112a442f9f121cbde7d7c75923ce271002000080001c7876957856f",
        "f9f121cbde7d7c75923ce271",
        "72.69.33.45",
        59029,
    ),
    (
        "stun-sipgate-net-10000",
        "010100442112a442482eb64715e8b28eaead6444000100080001e4ab4845212d0004000800012710d90a4498"
        "0005000800012711d9747a8a802000080001c5b96957856f80220010566f766964612e6f726720302e393600",
        "482eb64715e8b28eaead6444",
        "72.69.33.45",
        58539,
    ),
    (
        "stun-powervoip-com-3478",
        "010100242112a4427e57966829f444609d1deaa6000100080001e9d34845212d00040008000"
        "10d964d48a9d4000500080001 0d974d48a9d5".replace(" ", ""),
        "7e57966829f444609d1deaa6",
        "72.69.33.45",
        59859,
    ),
    (
        "in-process-pion-server",  # 8 bytes after the stated length
        "010100242112a442ebc2d36ef471217c4f3e308e8022000a656e64706f696e7465720000002000080001ce665e12a443"
        "80280004b699bb02010100242112a442",
        "ebc2d36ef471217c4f3e308e",
        "127.0.0.1",
        61300,
    ),
    (
        "stuntman-server-ipv6",
        "010100482112a44206f56685d28af3e69ce341e2000100140002 90ce260200d1b4cfc10038b231fffeef96f6"
        "802b001400020d962604a880000200d10000000000c57001002000140002b1dc0710a493b23aa785ea38c219620cd714".replace(
            " ", ""
        ),
        "06f56685d28af3e69ce341e2",
        "2602:d1:b4cf:c100:38b2:31ff:feef:96f6",
        37070,
    ),
    (
        "software-a",
        "010100142112a442ebc2d36ef471217c4f3e308e80220001610000000020000800 01ce665e12a443".replace(" ", ""),
        "ebc2d36ef471217c4f3e308e",
        "127.0.0.1",
        61300,
    ),
    (
        "software-abc",
        "010100142112a442ebc2d36ef471217c4f3e308e8022000361626300002000080001ce665e12a443",
        "ebc2d36ef471217c4f3e308e",
        "127.0.0.1",
        61300,
    ),
    (
        "no-4in6",  # an IPv4-mapped IPv6 address, reported as IPv4
        "010100182112a4424fd5d202dcb37d31fc773306002000140002cd3d2112a4424fd5d202dcb382ce2dc3fcc7",
        "4fd5d202dcb37d31fc773306",
        "209.180.207.193",
        60463,
    ),
]


@pytest.mark.parametrize(("name", "packet", "txid", "ip", "port"), GO_RESPONSES, ids=[c[0] for c in GO_RESPONSES])
def test_go_parse_response_vectors(name: str, packet: str, txid: str, ip: str, port: int) -> None:
    got = stun.parse_response(bytes.fromhex(packet))
    assert (got.txid.hex(), got.ip, got.port) == (txid, ip, port)
    assert stun.is_stun(bytes.fromhex(packet))


_COOKIE = b"\x21\x12\xa4\x42"
GO_IS = [  # Go's TestIs: a STUN header needs 20 bytes, the two top bits zero and the magic cookie
    (b"", False),
    (b"\0" * 20, False),
    (b"\0" * 4 + _COOKIE + b"\0" * 11, False),
    (b"\0" * 4 + _COOKIE + b"\0" * 12, True),
    (b"\0" * 4 + _COOKIE + b"\0" * 12 + b"foo", True),
    (b"\xf0\0\0\0" + _COOKIE + b"\0" * 12, False),
    (b"\x40\0\0\0" + _COOKIE + b"\0" * 12, False),
    (b"\x20\0\0\0" + _COOKIE + b"\0" * 12, True),
]


@pytest.mark.parametrize(("packet", "want"), GO_IS)
def test_go_is_vectors(packet: bytes, want: bool) -> None:
    assert stun.is_stun(packet) is want


@pytest.mark.parametrize(
    ("n", "ip", "port"), [(1, "1.2.3.4", 254), (2, "1.2.3.4", 257), (3, "1::4", 254), (4, "1::4", 257)]
)
def test_go_response_round_trip_vectors(n: int, ip: str, port: int) -> None:
    txid = bytes([n]) * 12
    pkt = stun.binding_response(txid, ip, port)
    got = stun.parse_response(pkt)
    assert (got.txid, got.ip, got.port) == (txid, ip, port)
    # the same bytes as Go's stun.Response, plus our FINGERPRINT (8 bytes, counted in the length)
    attr_len = 8 + (4 if "." in ip else 16)
    assert struct.unpack_from("!HH", pkt) == (0x0101, attr_len + 8)
    assert pkt[20:24] == struct.pack("!HH", 0x0020, attr_len - 4)
    assert len(pkt) == 20 + attr_len + 8


def test_go_binding_request_round_trip_and_attribute_order() -> None:
    txid = stun.new_transaction_id()
    req = stun.binding_request(txid)
    assert stun.parse_request(req) == txid
    # what derper's XDP path relies on: SOFTWARE first, its value right after
    assert req[20:22] == b"\x80\x22" and req[24:32] == b"tailnode"


# -- fuzzing -------------------------------------------------------------------------------------


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=200), st.one_of(st.none(), st.binary(min_size=12, max_size=12)))
def test_fuzz_parse_response_only_raises_stun_error(data: bytes, txid: bytes | None) -> None:
    try:
        got = stun.parse_response(data, txid)
    except StunError:
        return
    assert isinstance(got, BindingResponse)


@settings(max_examples=400, deadline=None)
@given(st.integers(0, 40), st.integers(0, 255), st.integers(0, 255))
def test_fuzz_mutated_valid_response(pos: int, xor: int, cut: int) -> None:
    pkt = bytearray(stun.binding_response(TXID, "2001:db8::5", 443))
    if pos < len(pkt):
        pkt[pos] ^= xor
    data = bytes(pkt[: len(pkt) - cut % 8])
    try:
        got = stun.parse_response(data, TXID)
    except StunError:
        return
    assert got.txid == TXID


@settings(max_examples=300, deadline=None)
@given(st.binary(min_size=20, max_size=120))
def test_fuzz_header_shaped(data: bytes) -> None:
    data = data[:4] + struct.pack("!I", stun.MAGIC_COOKIE) + data[8:]
    for fn in (stun.parse_response, stun.parse_request):
        with contextlib.suppress(StunError):
            fn(data)


# -- interop with coturn -------------------------------------------------------------------------


def _ask(host: str, port: int, timeout: float) -> tuple[BindingResponse, tuple[str, int], bytes]:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        s.connect((host, port))
        txid = stun.new_transaction_id()
        s.send(stun.binding_request(txid))
        data = s.recv(2048)
        return stun.parse_response(data, txid), s.getsockname()[:2], data


@pytest.fixture(scope="module")
def coturn(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, bool]]:
    """A real coturn ``turnserver`` in STUN-only mode on 127.0.0.1 and ::1; yields (port, has_v6)."""
    need(missing_command("turnserver"))
    exe = shutil.which("turnserver")
    assert exe is not None
    tmp = tmp_path_factory.mktemp("coturn")
    port = free_udp_port("127.0.0.1")
    has_v6 = socket.has_ipv6
    cmd = [
        exe,
        "-n",
        "--listening-ip",
        "127.0.0.1",
        "--listening-port",
        str(port),
        "--no-tls",
        "--no-dtls",
        "--no-tcp",
        "--stun-only",
        "--no-cli",
        "--pidfile",
        str(tmp / "turn.pid"),
        "--db",
        str(tmp / "turndb"),
        "--log-file",
        str(tmp / "turn.log"),
    ]
    if has_v6:
        cmd[3:3] = ["--listening-ip", "::1"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=tmp)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                _ask("127.0.0.1", port, 0.2)
                break
            except (OSError, StunError):
                if proc.poll() is not None or time.monotonic() > deadline:
                    logs = "".join(p.read_text() for p in Path(tmp).glob("turn*.log"))
                    pytest.fail(f"turnserver did not come up: {logs[-2000:]}")
                time.sleep(0.1)
        yield port, has_v6
    finally:
        proc.terminate()
        proc.wait(10)


def test_coturn_answers_our_request_v4(coturn: tuple[int, bool]) -> None:
    port, _ = coturn
    resp, local, raw = _ask("127.0.0.1", port, 2)
    assert (resp.ip, resp.port) == local
    # coturn sends both XOR-MAPPED-ADDRESS and MAPPED-ADDRESS (and a FINGERPRINT we verify)
    types = set()
    pos = 20
    while pos < len(raw):
        atype, alen = struct.unpack_from("!HH", raw, pos)
        types.add(atype)
        pos += 4 + alen + (-alen % 4)
    assert 0x0020 in types


def test_coturn_answers_our_request_v6(coturn: tuple[int, bool]) -> None:
    port, has_v6 = coturn
    if not has_v6:
        pytest.skip("no IPv6 on this machine")
    resp, local, _ = _ask("::1", port, 2)
    assert (resp.ip, resp.port) == ("::1", local[1])


# -- the test responder ------------------------------------------------------------------------


def test_responder_answers_only_tailscale_requests_after_its_delay() -> None:
    with stun_responder.StunResponder() as responder:
        ep = responder.add("127.0.0.1", delay_ms=30)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(0.2)
            s.connect((ep.host, ep.port))
            plain = _msg(0x0001, b"")  # an RFC 5389 request without SOFTWARE/FINGERPRINT: dropped
            s.send(plain)
            with pytest.raises(TimeoutError):
                s.recv(2048)
            s.settimeout(5)
            txid = stun.new_transaction_id()
            start = time.perf_counter()
            s.send(stun.binding_request(txid))
            got = stun.parse_response(s.recv(2048), txid)
            rtt_ms = (time.perf_counter() - start) * 1000
            assert (got.ip, got.port) == s.getsockname()
        assert ep.ignored == 1 and ep.requests == 1
        (applied,) = ep.applied_ms
        assert applied >= 30
        assert rtt_ms >= applied


def test_responder_command_line() -> None:
    root = REPO
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.support.stun_responder", "--bind", "127.0.0.1:0", "--delay-ms", "20", "--log"],
        cwd=root,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        (address,) = json.loads(proc.stdout.readline())["listening"]
        host, port = address.rsplit(":", 1)
        resp, local, _ = _ask(host, int(port), 5)
        assert (resp.ip, resp.port) == local
        logged = json.loads(proc.stdout.readline())
        assert logged["bind"] == address and logged["delay_ms"] >= 20
    finally:
        proc.terminate()
        proc.wait(5)
    assert proc.returncode == 0
