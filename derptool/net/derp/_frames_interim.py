"""INTERIM (phase 1 of issue 15): the subset of DERP framing the client needs, until ``frames.py`` lands.

Branch ``arch-net`` moves the DERP wire format to :mod:`derptool.net.derp.frames`; once it is merged this
module is deleted and every import of it points at ``frames`` instead (same names, same behaviour). Do not
grow it and do not import it from anywhere but :mod:`derptool.net.derp`.
"""

from __future__ import annotations

import struct
from enum import IntEnum
from typing import BinaryIO

PROTOCOL_VERSION = 2
MAGIC = b"DERP\xf0\x9f\x94\x91"
KEY_LEN = 32
NONCE_LEN = 24
HEADER_LEN = 5
MAX_PACKET_SIZE = 64 << 10
MAX_FRAME_SIZE = 1 << 20
MAX_SERVER_KEY_FRAME = 1 << 16

_HEADER = struct.Struct("!BI")


class DerpFrameError(ValueError):
    """Bytes are not a valid DERP frame of the expected kind (interim; see the module docstring)."""


class FrameType(IntEnum):
    """DERP v2 frame types."""

    SERVER_KEY = 0x01
    CLIENT_INFO = 0x02
    SERVER_INFO = 0x03
    SEND_PACKET = 0x04
    RECV_PACKET = 0x05
    KEEP_ALIVE = 0x06
    NOTE_PREFERRED = 0x07
    PEER_GONE = 0x08
    PEER_PRESENT = 0x09
    FORWARD_PACKET = 0x0A
    WATCH_CONNS = 0x10
    CLOSE_PEER = 0x11
    PING = 0x12
    PONG = 0x13
    HEALTH = 0x14
    RESTARTING = 0x15


def encode_frame(frame_type: int, payload: bytes = b"") -> bytes:
    """Header and payload of one frame."""
    return _HEADER.pack(frame_type, len(payload)) + payload


def parse_header(header: bytes) -> tuple[int, int]:
    """(type, length) from five header bytes."""
    if len(header) != HEADER_LEN:
        raise DerpFrameError(f"a frame header is {HEADER_LEN} bytes, got {len(header)}")
    frame_type, length = _HEADER.unpack(header)
    return int(frame_type), int(length)


def read_exactly(reader: BinaryIO, n: int) -> bytes:
    """*n* bytes, or :class:`DerpFrameError` when the stream ends first."""
    data = reader.read(n)
    if len(data) != n:
        raise DerpFrameError(f"connection closed after {len(data)} of {n} bytes")
    return data


def read_frame(reader: BinaryIO, *, max_size: int = MAX_FRAME_SIZE) -> tuple[int, bytes]:
    """The next frame as (type, payload)."""
    frame_type, length = parse_header(read_exactly(reader, HEADER_LEN))
    if length > max_size:
        raise DerpFrameError(f"frame of type {frame_type:#04x} has length {length}, more than {max_size}")
    return frame_type, read_exactly(reader, length)


def read_server_key(reader: BinaryIO) -> bytes:
    """The 32-byte key from the server-key frame that opens a connection."""
    frame_type, length = parse_header(read_exactly(reader, HEADER_LEN))
    if frame_type != FrameType.SERVER_KEY:
        raise DerpFrameError(f"first frame has type {frame_type:#04x}, not server key (0x01)")
    if not len(MAGIC) + KEY_LEN <= length <= MAX_SERVER_KEY_FRAME:
        raise DerpFrameError(f"server-key frame has length {length}, want at least {len(MAGIC) + KEY_LEN}")
    body = read_exactly(reader, length)
    if body[:len(MAGIC)] != MAGIC:
        raise DerpFrameError("server-key frame lacks the DERP magic")
    return body[len(MAGIC):len(MAGIC) + KEY_LEN]
