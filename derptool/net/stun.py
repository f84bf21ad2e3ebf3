"""STUN wire format (RFC 5389) as Tailscale's DERP servers speak it.

Plain functions and dataclasses; nothing here does I/O. A client builds a request with
:func:`binding_request`, sends it, and checks what comes back with :func:`parse_response`. A server
(the test responder, or a NAT test) uses :func:`parse_request` and :func:`binding_response`.

derper ignores any request that is not exactly what Tailscale's client sends: a binding request with
the SOFTWARE attribute ``tailnode`` and a correct FINGERPRINT as the last attribute.
"""

from __future__ import annotations

import ipaddress
import os
import struct
import zlib
from dataclasses import dataclass

from derptool.errors import StunError as StunError

MAGIC_COOKIE = 0x2112A442
HEADER_LEN = 20
TXID_LEN = 12
MAX_PACKET_SIZE = 4096
"""Largest response accepted; real binding responses are about 100 bytes."""

BINDING_REQUEST = 0x0001
BINDING_SUCCESS = 0x0101

ATTR_MAPPED_ADDRESS = 0x0001
ATTR_XOR_MAPPED_ADDRESS = 0x0020
ATTR_XOR_MAPPED_ADDRESS_ALT = 0x8020
ATTR_SOFTWARE = 0x8022
ATTR_FINGERPRINT = 0x8028

SOFTWARE = b"tailnode"
FINGERPRINT_XOR = 0x5354554E

_FAMILY_IPV4 = 0x01
_FAMILY_IPV6 = 0x02
_COOKIE_BYTES = struct.pack("!I", MAGIC_COOKIE)


@dataclass(frozen=True)
class BindingResponse:
    """What a binding success response says: the transaction and the address the server saw."""

    txid: bytes
    ip: str
    port: int


def new_transaction_id() -> bytes:
    """A fresh random 12-byte transaction ID."""
    return os.urandom(TXID_LEN)


def _fingerprint(data: bytes) -> int:
    return (zlib.crc32(data) ^ FINGERPRINT_XOR) & 0xFFFFFFFF


def _check_txid(txid: bytes) -> None:
    if not isinstance(txid, bytes) or len(txid) != TXID_LEN:
        raise ValueError(f"a transaction ID is {TXID_LEN} bytes")


def _with_fingerprint(msg_type: int, txid: bytes, attrs: bytes) -> bytes:
    """Header + *attrs* + FINGERPRINT, with the length field counting the fingerprint."""
    head = struct.pack("!HHI", msg_type, len(attrs) + 8, MAGIC_COOKIE) + txid
    body = head + attrs
    return body + struct.pack("!HHI", ATTR_FINGERPRINT, 4, _fingerprint(body))


def binding_request(txid: bytes) -> bytes:
    """A binding request exactly as Tailscale's client builds it (SOFTWARE ``tailnode``, FINGERPRINT)."""
    _check_txid(txid)
    software = struct.pack("!HH", ATTR_SOFTWARE, len(SOFTWARE)) + SOFTWARE
    return _with_fingerprint(BINDING_REQUEST, txid, software)


def binding_response(txid: bytes, ip: str, port: int) -> bytes:
    """A binding success response carrying *ip*:*port* in XOR-MAPPED-ADDRESS, then FINGERPRINT."""
    _check_txid(txid)
    if not 0 <= port <= 0xFFFF:
        raise ValueError(f"port {port} is out of range")
    addr = ipaddress.ip_address(ip)
    family = _FAMILY_IPV4 if addr.version == 4 else _FAMILY_IPV6
    key = _COOKIE_BYTES if addr.version == 4 else _COOKIE_BYTES + txid
    xaddr = bytes(a ^ k for a, k in zip(addr.packed, key, strict=True))
    value = struct.pack("!BBH", 0, family, port ^ (MAGIC_COOKIE >> 16)) + xaddr
    attr = struct.pack("!HH", ATTR_XOR_MAPPED_ADDRESS, len(value)) + value
    return _with_fingerprint(BINDING_SUCCESS, txid, attr)


def is_stun(packet: bytes) -> bool:
    """True when *packet* looks like a STUN message: a full header, the two top bits zero, the magic cookie.

    A cheap first filter for a socket that may receive other traffic (Go's ``stun.Is``).
    """
    return len(packet) >= HEADER_LEN and not packet[0] & 0xC0 and packet[4:8] == _COOKIE_BYTES


def _split(packet: bytes, *, trailing_ok: bool) -> tuple[int, bytes, list[tuple[int, bytes, int]]]:
    """Check the header and length; return the message type, the txid and ``(type, value, offset)``."""
    if len(packet) < HEADER_LEN:
        raise StunError(f"truncated: {len(packet)} bytes, a STUN header is {HEADER_LEN}")
    if len(packet) > MAX_PACKET_SIZE:
        raise StunError(f"oversized: {len(packet)} bytes (at most {MAX_PACKET_SIZE} accepted)")
    msg_type, length, cookie = struct.unpack_from("!HHI", packet)
    if msg_type & 0xC000:
        raise StunError("not a STUN message: the two top bits of the type are set")
    if cookie != MAGIC_COOKIE:
        raise StunError(f"bad magic cookie 0x{cookie:08x}")
    if length % 4:
        raise StunError(f"wrong length field {length}: not a multiple of 4")
    if HEADER_LEN + length > len(packet):
        raise StunError(
            f"truncated: the length field says {length} bytes of attributes, {len(packet) - HEADER_LEN} present"
        )
    if HEADER_LEN + length < len(packet):
        if not trailing_ok:
            raise StunError(f"wrong length field {length}: {len(packet) - HEADER_LEN} bytes follow the header")
        # a response's bytes after the stated length are dropped, as Go's parser does (servers send them)
        packet = packet[: HEADER_LEN + length]
    txid = bytes(packet[8:HEADER_LEN])
    attrs: list[tuple[int, bytes, int]] = []
    pos = HEADER_LEN
    while pos < len(packet):
        if pos + 4 > len(packet):
            raise StunError(f"malformed attributes: truncated attribute header at byte {pos}")
        atype, alen = struct.unpack_from("!HH", packet, pos)
        end = pos + 4 + alen
        if end > len(packet):
            raise StunError(
                f"malformed attributes: attribute 0x{atype:04x} at byte {pos} "
                f"claims {alen} bytes, {len(packet) - pos - 4} left"
            )
        attrs.append((atype, bytes(packet[pos + 4 : end]), pos))
        pos = end + (-alen % 4)
        if pos > len(packet):
            raise StunError(f"malformed attributes: attribute 0x{atype:04x} lacks its padding")
    return msg_type, txid, attrs


def _check_fingerprint(packet: bytes, attrs: list[tuple[int, bytes, int]], *, required: bool) -> None:
    fps = [(value, offset) for atype, value, offset in attrs if atype == ATTR_FINGERPRINT]
    if not fps:
        if required:
            raise StunError("no FINGERPRINT attribute")
        return
    value, offset = fps[-1]
    if len(fps) > 1 or attrs[-1][0] != ATTR_FINGERPRINT:
        raise StunError("FINGERPRINT is not the last attribute")
    if len(value) != 4:
        raise StunError(f"malformed attributes: FINGERPRINT is {len(value)} bytes, not 4")
    (got,) = struct.unpack("!I", value)
    want = _fingerprint(packet[:offset])
    if got != want:
        raise StunError(f"wrong FINGERPRINT 0x{got:08x} (expected 0x{want:08x})")


def _address(atype: int, value: bytes, txid: bytes) -> tuple[str, int]:
    name = {ATTR_MAPPED_ADDRESS: "MAPPED-ADDRESS"}.get(atype, f"XOR-MAPPED-ADDRESS (0x{atype:04x})")
    if len(value) < 4:
        raise StunError(f"malformed attributes: {name} is {len(value)} bytes")
    family, port = value[1], struct.unpack_from("!H", value, 2)[0]
    raw = value[4:]
    if family == _FAMILY_IPV4:
        want = 4
    elif family == _FAMILY_IPV6:
        want = 16
    else:
        raise StunError(f"malformed attributes: {name} has unknown address family 0x{family:02x}")
    if len(raw) != want:
        raise StunError(
            f"malformed attributes: {name} holds {len(raw)} address bytes, IPv{4 if want == 4 else 6} needs {want}"
        )
    if atype != ATTR_MAPPED_ADDRESS:
        port ^= MAGIC_COOKIE >> 16
        key = _COOKIE_BYTES + txid
        raw = bytes(a ^ k for a, k in zip(raw, key[:want], strict=True))
    ip = ipaddress.IPv4Address(raw) if want == 4 else ipaddress.IPv6Address(raw)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped), port  # ::ffff:a.b.c.d is an IPv4 address (Go unmaps it too)
    return str(ip), port


def parse_response(packet: bytes, expected_txid: bytes | None = None) -> BindingResponse:
    """Validate a binding success response and return the address it carries.

    Raises :class:`StunError` for anything else: truncated or oversized packets, a length field that is
    not a multiple of 4, a bad magic cookie, another message type, a transaction ID other than
    *expected_txid*, malformed attributes, a wrong FINGERPRINT, or no address. The address comes from
    XOR-MAPPED-ADDRESS (0x0020, or 0x8020 which some servers send) and else from MAPPED-ADDRESS. As in
    Go's parser, bytes after the stated length are ignored and an IPv4-mapped IPv6 address
    (``::ffff:a.b.c.d``) is returned as the IPv4 address.
    """
    msg_type, txid, attrs = _split(packet, trailing_ok=True)
    if msg_type != BINDING_SUCCESS:
        raise StunError(f"not a success binding response: message type 0x{msg_type:04x}")
    if expected_txid is not None and txid != expected_txid:
        raise StunError("transaction ID mismatch")
    _check_fingerprint(packet, attrs, required=False)
    found: dict[int, tuple[str, int]] = {}
    for atype, value, _ in attrs:
        if atype in (ATTR_XOR_MAPPED_ADDRESS, ATTR_XOR_MAPPED_ADDRESS_ALT, ATTR_MAPPED_ADDRESS):
            found.setdefault(atype, _address(atype, value, txid))
    for atype in (ATTR_XOR_MAPPED_ADDRESS, ATTR_XOR_MAPPED_ADDRESS_ALT, ATTR_MAPPED_ADDRESS):
        if atype in found:
            ip, port = found[atype]
            return BindingResponse(txid=txid, ip=ip, port=port)
    raise StunError("no address: neither XOR-MAPPED-ADDRESS nor MAPPED-ADDRESS present")


def parse_request(packet: bytes) -> bytes:
    """Validate a Tailscale-style binding request and return its transaction ID.

    Like derper, this accepts only a binding request carrying SOFTWARE ``tailnode`` and ending in a
    correct FINGERPRINT; anything else raises :class:`StunError`.
    """
    msg_type, txid, attrs = _split(packet, trailing_ok=False)
    if msg_type != BINDING_REQUEST:
        raise StunError(f"not a binding request: message type 0x{msg_type:04x}")
    if not any(atype == ATTR_SOFTWARE and value == SOFTWARE for atype, value, _ in attrs):
        raise StunError("not a Tailscale request: no SOFTWARE attribute 'tailnode'")
    _check_fingerprint(packet, attrs, required=True)
    return txid
