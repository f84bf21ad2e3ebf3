"""Hostile DERP and STUN peers, at the parsers that read their bytes: DERP frames, the server-key frame, the
sealed server info, the HTTP upgrade answer, a server's certificate, STUN responses and requests. Fuzzed with
hypothesis: nothing but the documented error (``DerpFrameError``, ``DerpError``, ``StunError``, ``ValueError``
for a certificate) ever comes out."""

from __future__ import annotations

import contextlib
import io
import json
import socket

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from derptool.errors import DerpError, DerpFrameError, StunError
from derptool.net.check.x509 import cert_info
from derptool.net.deadline import Deadline
from derptool.net.derp import frames
from derptool.net.derp.conn import DeadlineStream
from derptool.net.derp.handshake import MAX_INFO_LEN, parse_server_info, read_upgrade
from derptool.net.derp.keys import NodePrivate
from derptool.net.stun import binding_response, parse_request, parse_response

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
CLIENT, SERVER = NodePrivate.generate(), NodePrivate.generate()


@FUZZ
@given(st.binary(max_size=64), st.integers(0, 1 << 20))
def test_fuzz_frames(data: bytes, max_size: int) -> None:
    for read in (lambda r: frames.read_frame(r, max_size=max_size), frames.read_server_key):
        with contextlib.suppress(DerpFrameError):
            read(io.BytesIO(data))


@FUZZ
@given(st.integers(0, 255), st.integers(0, 2**32 - 1), st.binary(max_size=64))
def test_fuzz_frame_headers_with_any_length(frame_type: int, length: int, rest: bytes) -> None:
    data = bytes([frame_type]) + length.to_bytes(4, "big") + rest
    try:
        frames.read_frame(io.BytesIO(data))
    except DerpFrameError as err:
        assert "\n" not in str(err)


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=6),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=12,
)
_info = (
    _json.map(lambda v: json.dumps(v).encode())
    | st.binary(max_size=64)
    | st.sampled_from([b"[" * 100_000, b'{"version": 1e999}', b'{"version": NaN}', b"\xff\xfe{}"])
)


@FUZZ
@given(_info, st.booleans())
def test_fuzz_sealed_server_info(message: bytes, sealed_right: bool) -> None:
    """A server that seals deep JSON, NaN, or a box for another key: one DerpError."""
    sealer = SERVER if sealed_right else NodePrivate.generate()
    payload = sealer.seal_to(CLIENT.public, message)
    try:
        info = parse_server_info(CLIENT, SERVER.public, payload)
    except DerpError as err:
        assert "\n" not in str(err)
        return
    assert isinstance(info.version, int)


def test_server_info_past_the_size_limit() -> None:
    try:
        parse_server_info(CLIENT, SERVER.public, b"\x00" * (MAX_INFO_LEN + 100))
    except DerpError as err:
        assert "sealed message" in str(err)


@FUZZ
@given(st.binary(max_size=300) | st.text(max_size=120).map(lambda t: ("HTTP/1.1 " + t).encode()))
def test_fuzz_upgrade_answers(answer: bytes) -> None:
    a, b = socket.socketpair()
    with a, b:
        b.sendall(answer)
        b.shutdown(socket.SHUT_WR)
        try:
            read_upgrade(DeadlineStream(a, Deadline(2.0)))
        except DerpError as err:
            assert "\n" not in str(err)


@FUZZ
@given(st.binary(max_size=400))
def test_fuzz_certificates(der: bytes) -> None:
    try:
        cert_info(der)
    except ValueError as err:
        assert "malformed certificate" in str(err)


TXID = bytes(range(12))
GOOD = binding_response(TXID, "192.0.2.1", 3478)


@FUZZ
@given(st.lists(st.tuples(st.integers(0, len(GOOD) - 1), st.integers(0, 255)), max_size=6), st.binary(max_size=16))
def test_fuzz_stun_responses_mutated_from_a_valid_one(flips: list[tuple[int, int]], tail: bytes) -> None:
    packet = bytearray(GOOD)
    for where, value in flips:
        packet[where] = value
    for parse in (lambda p: parse_response(p, TXID), parse_request):
        try:
            parse(bytes(packet) + tail)
        except StunError as err:
            assert "\n" not in str(err)
