"""Port-mapping services on the LAN (UPnP IGD, NAT-PMP, PCP), probed the way Tailscale's netcheck does.

netcheck's ``PortMapping`` line says which of the three protocols the default gateway answers. The probe
sends, from one UDP socket, all at once:

* NAT-PMP (RFC 6886): an external-address request (version 0, opcode 0) to the gateway's port 5351;
* PCP (RFC 6887): an ANNOUNCE request (version 2, opcode 0, our LAN address) to the same port;
* UPnP: SSDP ``M-SEARCH`` for ``ssdp:all`` to the gateway's port 1900 (many routers answer unicast) and
  to 239.255.255.250:1900, plus one for ``urn:schemas-upnp-org:device:InternetGatewayDevice:1``.

and listens for 250 ms at most. NAT-PMP counts when an external-address reply has result 0; PCP when an
ANNOUNCE reply has result 0 (NOT_AUTHORIZED and ADDRESS_MISMATCH mean a PCP server that will not help);
UPnP when an SSDP answer names an ``:InternetGatewayDevice:``. After the first answer the probe waits
50 ms more for other UPnP devices, and ends early once all three protocols answered.

Packet builders and parsers are plain functions; :func:`probe` is the one function that does I/O. It
has its own UDP socket, the one exception to "only :mod:`derptool.net.stunclient` opens UDP sockets":
these are LAN protocols, not STUN (Go's portmapper also keeps its own socket apart from netcheck's).
Nothing is sent anywhere but the gateway and the SSDP multicast group, which does not leave the LAN.
"""

from __future__ import annotations

import contextlib
import ipaddress
import select
import socket
import struct
import time
from dataclasses import dataclass, field
from pathlib import Path

from derptool.net.stunclient import route_source

PXP_PORT = 5351
"""NAT-PMP and PCP server port."""
SSDP_PORT = 1900
SSDP_GROUP = "239.255.255.250"
PROBE_TIMEOUT = 0.250
UPNP_LINGER = 0.050
"""After the first answer, how long to wait for more UPnP answers (seconds)."""
REPORT_WINDOW = 1.0
"""Seconds a report's port-mapping probe (latency, nat) listens beside the STUN probes. A router answers
NAT-PMP at once but PCP and the SSDP search later (miniupnpd took over 250 ms, netcheck's own window, on an
idle machine); the probe stops once all three have answered, so only a router that lacks one costs it all."""

PMP_VERSION = 0
PMP_OP_PUBLIC_ADDRESS = 0
PCP_VERSION = 2
PCP_OP_ANNOUNCE = 0
OP_REPLY = 0x80
PCP_OK = 0
PCP_NOT_AUTHORIZED = 2
PCP_ADDRESS_MISMATCH = 12
IGD = "urn:schemas-upnp-org:device:InternetGatewayDevice:1"


# -- packets ------------------------------------------------------------------------------------


def pmp_public_address_request() -> bytes:
    """NAT-PMP "what is my external address" request."""
    return bytes([PMP_VERSION, PMP_OP_PUBLIC_ADDRESS])


def pcp_announce_request(my_ip: str) -> bytes:
    """PCP ANNOUNCE request from *my_ip* (an IPv4 address is sent IPv4-mapped, as RFC 6887 says)."""
    addr = ipaddress.ip_address(my_ip)
    packed = (ipaddress.IPv6Address(b"\0" * 10 + b"\xff\xff" + addr.packed) if addr.version == 4 else addr).packed
    return bytes([PCP_VERSION, PCP_OP_ANNOUNCE, 0, 0]) + b"\0" * 4 + packed


def ssdp_search(target: str = "ssdp:all") -> bytes:
    """An SSDP ``M-SEARCH`` discovery request for search target *target*."""
    return (
        f"M-SEARCH * HTTP/1.1\r\nHOST: {SSDP_GROUP}:{SSDP_PORT}\r\nST: {target}\r\n"
        'MAN: "ssdp:discover"\r\nMX: 2\r\n\r\n'
    ).encode()


@dataclass(frozen=True)
class PmpResponse:
    """A NAT-PMP reply: opcode (with the reply bit), result code, seconds since the server's epoch."""

    opcode: int
    result: int
    epoch: int
    public_ip: str | None = None
    """For an external-address reply: the gateway's public IPv4 address (None when 0.0.0.0)."""


def parse_pmp_response(packet: bytes) -> PmpResponse | None:
    """A NAT-PMP reply, or None for anything else (wrong version, short, wrong length for its opcode)."""
    if len(packet) < 12 or packet[0] != PMP_VERSION:
        return None
    opcode, result, epoch = packet[1], *struct.unpack_from("!HI", packet, 2)
    public = None
    if opcode == OP_REPLY | PMP_OP_PUBLIC_ADDRESS:
        if len(packet) != 12:
            return None
        ip = ipaddress.IPv4Address(packet[8:12])
        public = None if ip.is_unspecified else str(ip)
    elif opcode in (OP_REPLY | 1, OP_REPLY | 2) and len(packet) != 16:
        return None
    return PmpResponse(opcode, result, epoch, public)


@dataclass(frozen=True)
class PcpResponse:
    """A PCP response header: opcode (with the reply bit), result code, lifetime, epoch."""

    opcode: int
    result: int
    lifetime: int
    epoch: int


def parse_pcp_response(packet: bytes) -> PcpResponse | None:
    """A PCP response, or None for anything else (short, another version)."""
    if len(packet) < 24 or packet[0] != PCP_VERSION:
        return None
    lifetime, epoch = struct.unpack_from("!II", packet, 4)
    return PcpResponse(packet[1], packet[3], lifetime, epoch)


@dataclass(frozen=True)
class SsdpResponse:
    """What an SSDP answer says about a device."""

    location: str
    server: str
    usn: str
    st: str


def parse_ssdp_response(packet: bytes) -> SsdpResponse | None:
    """An SSDP ``HTTP/1.1 200`` answer, or None for anything else. Header names in any case."""
    try:
        text = packet.decode("utf-8")
    except UnicodeDecodeError:
        return None
    lines = text.split("\r\n")
    status = lines[0].split(" ", 2)
    if len(status) < 2 or not status[0].startswith("HTTP/1.") or status[1] != "200":
        return None
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if not line:
            break
        name, sep, value = line.partition(":")
        if not sep:
            return None
        headers.setdefault(name.strip().lower(), value.strip())
    return SsdpResponse(
        headers.get("location", ""), headers.get("server", ""), headers.get("usn", ""), headers.get("st", "")
    )


def is_igd_answer(packet: bytes) -> bool:
    """True when *packet* is an SSDP answer naming an Internet Gateway Device (what netcheck counts)."""
    return b":InternetGatewayDevice:" in packet and parse_ssdp_response(packet) is not None


# -- the probe ---------------------------------------------------------------------------------


@dataclass
class PortMapProbe:
    """Which port-mapping protocols the gateway answered."""

    gateway: str | None
    upnp: bool = False
    pmp: bool = False
    pcp: bool = False
    public_ip: str | None = None
    """The external address NAT-PMP reported."""
    upnp_devices: list[SsdpResponse] = field(default_factory=list)
    error: str | None = None
    """Why nothing could be probed (no gateway, no socket)."""

    @property
    def protocols(self) -> list[str]:
        """The protocols found, named as ``tailscale netcheck`` prints them."""
        return [name for name, ok in (("UPnP", self.upnp), ("NAT-PMP", self.pmp), ("PCP", self.pcp)) if ok]

    def to_data(self) -> dict[str, object]:
        return {
            "gateway": self.gateway,
            "upnp": self.upnp,
            "pmp": self.pmp,
            "pcp": self.pcp,
            "public_ip": self.public_ip,
            "error": self.error,
        }


def default_gateway(route_file: str = "/proc/net/route") -> str | None:
    """The IPv4 default gateway from the kernel's routing table (Linux), or None."""
    try:
        lines = Path(route_file).read_text().splitlines()[1:]
    except OSError:
        return None
    best: tuple[int, str] | None = None
    for line in lines:
        cols = line.split()
        if len(cols) < 8 or cols[1] != "00000000" or cols[7] != "00000000":
            continue
        flags, metric = int(cols[3], 16), int(cols[6])
        if not flags & 0x2:  # RTF_GATEWAY
            continue
        gw = str(ipaddress.IPv4Address(struct.pack("<I", int(cols[2], 16))))
        if best is None or metric < best[0]:
            best = (metric, gw)
    return best[1] if best else None


def probe(
    gateway: str | None = None,
    *,
    my_ip: str | None = None,
    timeout: float = PROBE_TIMEOUT,
    pxp_port: int = PXP_PORT,
    ssdp_port: int = SSDP_PORT,
    multicast: bool = True,
) -> PortMapProbe:
    """Probe the gateway (default: the IPv4 default route's) for UPnP IGD, NAT-PMP and PCP.

    *my_ip* is our LAN address for PCP (default: the kernel's source address towards the gateway).
    *multicast* False sends SSDP only to the gateway itself. Never raises for network trouble: the
    result's ``error`` says why nothing was probed.
    """
    gw = gateway or default_gateway()
    result = PortMapProbe(gateway=gw)
    if gw is None:
        result.error = "no IPv4 default gateway"
        return result
    me = my_ip or route_source(4, gw, pxp_port)
    if me is None:
        result.error = f"no route to the gateway {gw}"
        return result
    try:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    except OSError as err:
        result.error = f"no UDP socket: {err.strerror or err}"
        return result
    with sock:
        sock.setblocking(False)
        sends = [
            (pmp_public_address_request(), (gw, pxp_port)),
            (pcp_announce_request(me), (gw, pxp_port)),
            (ssdp_search(), (gw, ssdp_port)),
        ]
        if multicast:
            sends += [(ssdp_search(), (SSDP_GROUP, ssdp_port)), (ssdp_search(IGD), (SSDP_GROUP, ssdp_port))]
        for data, dest in sends:
            with contextlib.suppress(OSError):  # e.g. no multicast route; the other probes still count
                sock.sendto(data, dest)
        _collect(sock, result, time.monotonic() + timeout, pxp_port)
    return result


def _collect(sock: socket.socket, result: PortMapProbe, deadline: float, pxp_port: int) -> None:
    pcp_heard = False
    linger_until: float | None = None
    while True:
        now = time.monotonic()
        if pcp_heard and result.pmp and result.upnp and linger_until is not None and now >= linger_until:
            return
        wait = deadline - now
        if wait <= 0:
            return
        if not select.select([sock], [], [], wait)[0]:
            return
        try:
            data, src = sock.recvfrom(1500)
        except (BlockingIOError, InterruptedError):
            continue
        except OSError:
            continue  # an ICMP error for one probe (e.g. port unreachable); others may still answer
        if linger_until is None:
            linger_until = time.monotonic() + UPNP_LINGER
        if src[1] == pxp_port:
            pcp = parse_pcp_response(data)
            if pcp is not None and pcp.opcode == OP_REPLY | PCP_OP_ANNOUNCE:
                pcp_heard = True
                result.pcp = pcp.result == PCP_OK
                continue
            pmp = parse_pmp_response(data)
            if pmp is not None and pmp.opcode == OP_REPLY | PMP_OP_PUBLIC_ADDRESS and pmp.result == 0:
                result.pmp = True
                result.public_ip = pmp.public_ip
            continue
        if is_igd_answer(data):
            result.upnp = True
            answer = parse_ssdp_response(data)
            if answer is not None and answer not in result.upnp_devices and len(result.upnp_devices) < 10:
                result.upnp_devices.append(answer)
