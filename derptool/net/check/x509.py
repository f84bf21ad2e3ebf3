"""A small X.509 reader for ``derptool check``: validity dates and subjectAltNames, nothing more.

The standard library only decodes certificates it has verified; a checker must also describe the
expired or untrusted ones, so the few fields it reports are read from the DER here.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass

from derptool.derpmap import is_ip


@dataclass(frozen=True)
class CertInfo:
    """What :func:`cert_info` reads from an X.509 certificate."""

    not_before: dt.datetime
    not_after: dt.datetime
    dns_names: tuple[str, ...]
    ip_addresses: tuple[str, ...]


def _tlv(data: bytes, pos: int) -> tuple[int, int, int]:
    """(tag, content start, content end) of the DER element at *pos*."""
    if pos + 2 > len(data):
        raise ValueError("truncated DER")
    tag, length = data[pos], data[pos + 1]
    pos += 2
    if length & 0x80:
        n = length & 0x7F
        if n == 0 or n > 4 or pos + n > len(data):
            raise ValueError("bad DER length")
        length = int.from_bytes(data[pos : pos + n], "big")
        pos += n
    if pos + length > len(data):
        raise ValueError("truncated DER")
    return tag, pos, pos + length


def _children(data: bytes, start: int, end: int) -> list[tuple[int, int, int]]:
    out = []
    while start < end:
        tag, s, e = _tlv(data, start)
        out.append((tag, s, e))
        start = e
    return out


def _time(tag: int, raw: bytes) -> dt.datetime:
    text = raw.decode("ascii")
    if tag == 0x17:  # UTCTime YYMMDDHHMMSSZ
        year = int(text[:2])
        text = f"{1900 + year if year >= 50 else 2000 + year}{text[2:]}"
    elif tag != 0x18:
        raise ValueError("bad time in certificate")
    return dt.datetime.strptime(text[:14], "%Y%m%d%H%M%S").replace(tzinfo=dt.UTC)


_SAN_OID = bytes([0x55, 0x1D, 0x11])


def cert_info(der: bytes) -> CertInfo:
    """Validity and subjectAltNames of a DER certificate; raises ``ValueError`` when it cannot be read."""
    try:
        _, s, _ = _tlv(der, 0)
        _, ts, te = _tlv(der, s)  # tbsCertificate
        items = _children(der, ts, te)
        if items and items[0][0] == 0xA0:
            items = items[1:]
        validity = _children(der, items[3][1], items[3][2])
        not_before = _time(validity[0][0], der[validity[0][1] : validity[0][2]])
        not_after = _time(validity[1][0], der[validity[1][1] : validity[1][2]])
        dns: list[str] = []
        ips: list[str] = []
        for tag, cs, ce in items[6:]:
            if tag != 0xA3:
                continue
            ((_, xs, xe),) = _children(der, cs, ce)
            for _, es, ee in _children(der, xs, xe):
                parts = _children(der, es, ee)
                if der[parts[0][1] : parts[0][2]] != _SAN_OID:
                    continue
                vs = parts[-1][1]
                _, gs, ge = _tlv(der, vs)
                for gtag, ns, ne in _children(der, gs, ge):
                    if gtag == 0x82:
                        dns.append(der[ns:ne].decode("ascii"))
                    elif gtag == 0x87:
                        ips.append(str(ipaddress.ip_address(der[ns:ne])))
        return CertInfo(not_before, not_after, tuple(dns), tuple(ips))
    except (IndexError, UnicodeDecodeError, ValueError) as err:
        raise ValueError(f"malformed certificate ({err})") from None


def name_matches(name: str, info: CertInfo) -> bool:
    """True when the certificate's subjectAltNames cover *name* (one-label wildcards allowed)."""
    if is_ip(name):
        return str(ipaddress.ip_address(name)) in info.ip_addresses
    want = name.lower().rstrip(".")
    for pattern in info.dns_names:
        p = pattern.lower().rstrip(".")
        if p == want:
            return True
        if p.startswith("*.") and "." in want and want.split(".", 1)[1] == p[2:]:
            return True
    return False
