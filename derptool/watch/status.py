"""A tailscaled's status (``/localapi/v0/status``, what ``tailscale status --json`` prints), read as typed
peer states.

The fields used, from ``ipn/ipnstate.PeerStatus`` (tailscale v1.102)::

    HostName, DNSName            names ("host.tailnet.ts.net." for MagicDNS)
    TailscaleIPs                 ["100.64.0.2", "fd7a:..."]
    Relay                        the peer's home DERP region code: where DERP-relayed packets to it go
    CurAddr                      "ip:port" of the direct UDP path in use, "" when none
    PeerRelay                    "ip:port:vni:N" of the peer relay path in use, "" when none
    RxBytes, TxBytes             WireGuard bytes from and to the peer since it was added (int64)
    LastHandshake, LastWrite     RFC 3339 times; Go's zero time "0001-01-01T00:00:00Z" means never
    Active                       a packet was sent to it in the last two minutes
    Online                       connected to the control server
    ShareeNode                   in the map only because it was shared to us (``tailscale status`` hides it)

A field that is absent counts as empty (older and newer versions differ); a field of the wrong type, a byte
count that is not a whole number from 0 to 2^63-1, or an unreadable time is a :class:`ProtocolError`.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from derptool.errors import ProtocolError

_INT64_MAX = (1 << 63) - 1
_GO_ZERO_YEAR = 1


@dataclass(frozen=True)
class PeerState:
    """One peer as the status shows it at one moment."""

    key: str
    """The peer's node public key (the key of the status's ``Peer`` map)."""
    name: str
    """The first label of its MagicDNS name, else its host name, else its short key."""
    dns_name: str
    host_name: str
    tailscale_ips: tuple[str, ...]
    relay: str
    """Its home DERP region code ("" when it has none)."""
    cur_addr: str
    """``ip:port`` of the direct path in use ("" when none)."""
    peer_relay: str
    """``ip:port`` of the peer relay server in use ("" when none)."""
    rx_bytes: int
    tx_bytes: int
    last_handshake: float | None
    """Unix time of the last WireGuard handshake; None when never."""
    last_write: float | None
    """Unix time of the last packet sent to it; None when never."""
    active: bool
    online: bool


@dataclass(frozen=True)
class StatusSnapshot:
    """Every peer of one status, and when it was taken."""

    taken: float
    """Seconds on a monotonic clock (what rates are measured against)."""
    wall: float
    """Unix time (what handshake times are measured against)."""
    peers: dict[str, PeerState]
    backend_state: str = ""
    self_name: str = ""


def parse_status(data: Any, *, taken: float, wall: float, source: str = "status") -> StatusSnapshot:
    """Read decoded status JSON; :class:`ProtocolError` (naming *source* and the field) when it is not one."""
    if not isinstance(data, dict):
        raise ProtocolError(f"{source}: expected a JSON object, got {_kind(data)}")
    raw_peers = data.get("Peer")
    if raw_peers is None:
        raw_peers = {}
    if not isinstance(raw_peers, dict):
        raise ProtocolError(f"{source}: Peer: expected an object of peers, got {_kind(raw_peers)}")
    peers: dict[str, PeerState] = {}
    for key, raw in raw_peers.items():
        where = f"{source}: Peer[{_short(key)}]"
        if not isinstance(raw, dict):
            raise ProtocolError(f"{where}: expected an object, got {_kind(raw)}")
        if _bool(raw, "ShareeNode", where):
            continue
        peers[key] = _peer(key, raw, where)
    self_raw = data.get("Self")
    self_name = ""
    if isinstance(self_raw, dict):
        self_name = _name(_str(self_raw, "DNSName", f"{source}: Self"), _str(self_raw, "HostName", f"{source}: Self"))
    elif self_raw is not None:
        raise ProtocolError(f"{source}: Self: expected an object, got {_kind(self_raw)}")
    return StatusSnapshot(taken, wall, peers, _str(data, "BackendState", source), self_name)


def _peer(key: str, raw: Mapping[str, Any], where: str) -> PeerState:
    dns_name, host_name = _str(raw, "DNSName", where), _str(raw, "HostName", where)
    ips = raw.get("TailscaleIPs") or []
    if not isinstance(ips, list) or not all(isinstance(ip, str) for ip in ips):
        raise ProtocolError(f"{where}.TailscaleIPs: expected a list of addresses, got {_kind(ips)}")
    cur_addr = _str(raw, "CurAddr", where)
    if cur_addr:
        _check_endpoint(cur_addr, f"{where}.CurAddr")
    peer_relay = _str(raw, "PeerRelay", where).partition(":vni:")[0]
    if peer_relay:
        _check_endpoint(peer_relay, f"{where}.PeerRelay")
    return PeerState(
        key=key,
        name=_name(dns_name, host_name) or _short(key),
        dns_name=dns_name,
        host_name=host_name,
        tailscale_ips=tuple(ips),
        relay=_str(raw, "Relay", where),
        cur_addr=cur_addr,
        peer_relay=peer_relay,
        rx_bytes=_bytes(raw, "RxBytes", where),
        tx_bytes=_bytes(raw, "TxBytes", where),
        last_handshake=_time(raw, "LastHandshake", where),
        last_write=_time(raw, "LastWrite", where),
        active=_bool(raw, "Active", where),
        online=_bool(raw, "Online", where),
    )


def _name(dns_name: str, host_name: str) -> str:
    return dns_name.split(".", 1)[0] or host_name


def _short(key: object) -> str:
    text = str(key)
    return text.removeprefix("nodekey:")[:8] if text.startswith("nodekey:") else text[:40]


def _kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return f"the number {value!r}"
    if isinstance(value, str):
        return f"the string {value[:40]!r}"
    return "an array" if isinstance(value, list) else "an object"


def _str(raw: Mapping[str, Any], field: str, where: str) -> str:
    value = raw.get(field)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ProtocolError(f"{where}.{field}: expected a string, got {_kind(value)}")
    return value


def _bool(raw: Mapping[str, Any], field: str, where: str) -> bool:
    value = raw.get(field)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise ProtocolError(f"{where}.{field}: expected true or false, got {_kind(value)}")
    return value


def _bytes(raw: Mapping[str, Any], field: str, where: str) -> int:
    value = raw.get(field)
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ProtocolError(f"{where}.{field}: expected a byte count, got {_kind(value)}")
    if isinstance(value, float) and not value.is_integer():  # also NaN and inf (1e999 decodes to inf)
        raise ProtocolError(f"{where}.{field}: expected a whole byte count, got {value!r}")
    if not 0 <= value <= _INT64_MAX:
        raise ProtocolError(f"{where}.{field}: byte count {value:.6g} is outside 0 to 2^63-1")
    return int(value)


def _time(raw: Mapping[str, Any], field: str, where: str) -> float | None:
    text = _str(raw, field, where)
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ProtocolError(f"{where}.{field}: {text[:40]!r} is not an RFC 3339 time") from None
    if moment.tzinfo is None:
        raise ProtocolError(f"{where}.{field}: {text[:40]!r} has no time zone")
    return None if moment.year == _GO_ZERO_YEAR else moment.timestamp()


def _check_endpoint(text: str, where: str) -> None:
    host, sep, port = text.rpartition(":")
    host = host.removeprefix("[").removesuffix("]") if host.startswith("[") else host
    try:
        ipaddress.ip_address(host)
        ok = bool(sep) and port.isdigit() and int(port) <= 65535
    except ValueError:
        ok = False
    if not ok:
        raise ProtocolError(f"{where}: {text[:60]!r} is not an ip:port")
