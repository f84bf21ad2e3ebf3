"""DERP's wire format: framing, frame types, the server-key frame and the protocol version.

After ``GET /derp`` with ``Upgrade: DERP`` switches protocols, both sides exchange frames: one byte of
frame type, a four-byte big-endian payload length, then the payload. The server speaks first, with the
server-key frame: the eight-byte magic ``DERP🔑`` followed by its 32-byte public key (later bytes are
reserved and ignored). Plain functions over bytes and binary streams; nothing here opens a connection.
"""

from __future__ import annotations

import struct
from enum import IntEnum
from typing import BinaryIO

from derptool.errors import DerpFrameError

PROTOCOL_VERSION = 2
"""The DERP protocol version a client announces in its client-info frame."""
MAGIC = b"DERP\xf0\x9f\x94\x91"
"""``DERP🔑`` in UTF-8: the start of the server-key frame."""
KEY_LEN = 32
"""Bytes of a Curve25519 public key (server keys, node keys)."""
NONCE_LEN = 24
"""Bytes of the NaCl box nonce that precedes a sealed client-info or server-info payload."""
HEADER_LEN = 5
"""Frame type (1 byte) and payload length (4 bytes, big-endian)."""
MAX_PACKET_SIZE = 64 << 10
"""Largest packet a client may send or receive through a DERP server."""
MAX_FRAME_SIZE = 1 << 20
"""Largest frame payload read before the stream is judged broken."""
MAX_SERVER_KEY_FRAME = 1 << 16
"""Largest server-key frame accepted (the key plus reserved bytes)."""

_HEADER = struct.Struct("!BI")


class FrameType(IntEnum):
    """The frame types of DERP protocol version 2 (S: sent by the server, C: by the client)."""

    SERVER_KEY = 0x01
    """S: magic and the server's public key; the first frame of every connection."""
    CLIENT_INFO = 0x02
    """C: the client's public key, a nonce and its sealed JSON info."""
    SERVER_INFO = 0x03
    """S: a nonce and the server's sealed JSON info, the answer to client info."""
    SEND_PACKET = 0x04
    """C: destination public key, then the packet."""
    RECV_PACKET = 0x05
    """S: source public key, then the packet."""
    KEEP_ALIVE = 0x06
    """S: no payload; the connection is alive."""
    NOTE_PREFERRED = 0x07
    """C: one byte, 1 when this server is the client's home."""
    PEER_GONE = 0x08
    """S: a peer's public key (and a reason byte): that peer left."""
    PEER_PRESENT = 0x09
    """S: a peer's public key (optionally its address and flags): that peer is connected."""
    FORWARD_PACKET = 0x0A
    """Mesh: source key, destination key, then the packet."""
    WATCH_CONNS = 0x10
    """C (privileged): subscribe to peer presence."""
    CLOSE_PEER = 0x11
    """C (privileged): close a peer's connection."""
    PING = 0x12
    """Either side: eight bytes to echo back in a pong."""
    PONG = 0x13
    """Either side: the eight bytes of the ping answered."""
    HEALTH = 0x14
    """S: a health problem as text; empty clears it."""
    RESTARTING = 0x15
    """S: the server restarts; reconnect in (ms) and try for (ms), four bytes each."""


def encode_frame(frame_type: int, payload: bytes = b"") -> bytes:
    """One frame on the wire: header, then *payload*."""
    return _HEADER.pack(frame_type, len(payload)) + payload


def parse_header(header: bytes) -> tuple[int, int]:
    """(frame type, payload length) from the five header bytes."""
    if len(header) != HEADER_LEN:
        raise DerpFrameError(f"a frame header is {HEADER_LEN} bytes, got {len(header)}")
    frame_type, length = _HEADER.unpack(header)
    return int(frame_type), int(length)


def read_exactly(reader: BinaryIO, n: int) -> bytes:
    """*n* bytes from *reader*; raises :class:`DerpFrameError` when the stream ends first."""
    data = reader.read(n)
    if len(data) != n:
        raise DerpFrameError(f"connection closed after {len(data)} of {n} bytes")
    return data


def read_frame(reader: BinaryIO, *, max_size: int = MAX_FRAME_SIZE) -> tuple[int, bytes]:
    """The next frame from *reader* as (type, payload); a payload over *max_size* bytes is an error."""
    frame_type, length = parse_header(read_exactly(reader, HEADER_LEN))
    if length > max_size:
        raise DerpFrameError(f"frame of type {frame_type:#04x} has length {length}, more than {max_size}")
    return frame_type, read_exactly(reader, length)


def read_server_key(reader: BinaryIO) -> bytes:
    """Read the server-key frame that opens a DERP connection and return the server's 32-byte key.

    Raises :class:`~derptool.errors.DerpFrameError` (a ``ValueError``) for another frame type, a wrong
    length, a missing magic or a stream that ends early.
    """
    frame_type, length = parse_header(read_exactly(reader, HEADER_LEN))
    if frame_type != FrameType.SERVER_KEY:
        raise DerpFrameError(f"first frame has type {frame_type:#04x}, not server key (0x01)")
    if not len(MAGIC) + KEY_LEN <= length <= MAX_SERVER_KEY_FRAME:
        raise DerpFrameError(f"server-key frame has length {length}, want at least {len(MAGIC) + KEY_LEN}")
    body = read_exactly(reader, length)
    if body[: len(MAGIC)] != MAGIC:
        raise DerpFrameError("server-key frame lacks the DERP magic")
    return body[len(MAGIC) : len(MAGIC) + KEY_LEN]
