"""Does the server relay? Two clients exchange packets through it; round-trip time and loss are measured.

Client A connects to one node, client B to the same node or (a mesh probe, as Tailscale's derpprobe does)
to another node of the region. A sends a numbered packet to B's key; B sends it back to A's key; the time
from A's send to A's receipt is one relay round trip (A -> server -> B -> server -> A, or across the mesh
in both directions). First the clients warm up: a server learns about a client on another node through
its mesh watch, so early packets may be dropped; A repeats the first packet until one round trip succeeds
(that wait is reported as ``setup_ms``). Then *count* packets are timed one after another; a packet not
back within *packet_timeout* counts as lost. The whole probe ends by one deadline.
"""

from __future__ import annotations

import os
import statistics
import struct
import time
from dataclasses import dataclass, field
from typing import Any

from derptool.errors import DerpClientRejected, DerpError
from derptool.net.derp.client import DerpClient, DerpEndpoint, Message, ReceivedPacket
from derptool.net.derp.conn import Deadline
from derptool.net.derp.keys import NodePublic

DEFAULT_COUNT = 5
DEFAULT_SIZE = 64
DEFAULT_PACKET_TIMEOUT = 1.0
WARMUP_INTERVAL = 0.1
_TAG = b"derptool-relay"
_SEQ = struct.Struct("!8sI")


@dataclass
class RelayResult:
    """What a relay probe found. ``error`` is set when it could not run (then ``ok`` is False)."""

    node_a: str
    node_b: str | None
    """None when both clients used the same node (not a mesh probe)."""
    sent: int = 0
    received: int = 0
    rtts_ms: list[float] = field(default_factory=list)
    setup_ms: float | None = None
    """Time from both clients connected to the first successful round trip (mesh propagation)."""
    connect_ms: float | None = None
    """Slowest of the two clients' TLS connect, upgrade and handshake."""
    server_keys: list[str] = field(default_factory=list)
    error: str | None = None
    rejected: bool = False
    """The server refused our clients (it verifies clients)."""

    @property
    def mesh(self) -> bool:
        return self.node_b is not None

    @property
    def loss(self) -> float | None:
        """Fraction of timed packets that did not come back (None when none was sent)."""
        return (self.sent - self.received) / self.sent if self.sent else None

    @property
    def rtt_ms(self) -> float | None:
        """Median relay round trip in milliseconds (None without one)."""
        return statistics.median(self.rtts_ms) if self.rtts_ms else None

    @property
    def ok(self) -> bool:
        return self.error is None and self.received > 0

    def to_data(self) -> dict[str, Any]:
        """JSON-ready fields."""
        return {
            "node_a": self.node_a,
            "node_b": self.node_b,
            "mesh": self.mesh,
            "ok": self.ok,
            "sent": self.sent,
            "received": self.received,
            "loss": self.loss,
            "rtt_ms": _round(self.rtt_ms),
            "rtt_min_ms": _round(min(self.rtts_ms, default=None)),
            "rtt_max_ms": _round(max(self.rtts_ms, default=None)),
            "setup_ms": _round(self.setup_ms),
            "connect_ms": _round(self.connect_ms),
            "server_keys": self.server_keys,
            "error": self.error,
            "rejected": self.rejected,
        }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def _packet(nonce: bytes, seq: int, size: int) -> bytes:
    body = _TAG + nonce + _SEQ.pack(b"seq", seq)
    return body + b"\0" * max(0, size - len(body))


def _is_packet(source: NodePublic, nonce: bytes, seq: int | None) -> Any:
    prefix = _TAG + nonce

    def wanted(message: Message) -> bool:
        if not isinstance(message, ReceivedPacket) or message.source != source:
            return False
        data = message.data
        if not data.startswith(prefix):
            return False
        got = _SEQ.unpack_from(data, len(prefix))[1]
        return seq is None or got == seq

    return wanted


def _round_trip(a: DerpClient, b: DerpClient, nonce: bytes, seq: int, size: int, deadline: Deadline) -> float:
    """Send packet *seq* from A to B, echo it back; seconds until A has it. ``TimeoutError`` if lost."""
    started = time.monotonic()
    a.send(b.public_key, _packet(nonce, seq, size), timeout=max(deadline.left(), 0.001))
    got = b.wait_for(_is_packet(a.public_key, nonce, seq), deadline=deadline)
    assert isinstance(got, ReceivedPacket)
    b.send(a.public_key, got.data, timeout=max(deadline.left(), 0.001))
    a.wait_for(_is_packet(b.public_key, nonce, seq), deadline=deadline)
    return time.monotonic() - started


def relay_probe(
    node_a: DerpEndpoint,
    node_b: DerpEndpoint | None = None,
    *,
    count: int = DEFAULT_COUNT,
    size: int = DEFAULT_SIZE,
    timeout: float = 5.0,
    packet_timeout: float = DEFAULT_PACKET_TIMEOUT,
    mesh_key: str | None = None,
) -> RelayResult:
    """Relay *count* packets between two clients on *node_a* (and *node_b*, for a mesh probe).

    Never raises for network trouble: a failure is :attr:`RelayResult.error`. *mesh_key* (64 hex digits)
    lets the clients past a server that verifies clients, as derpprobe's clients get past.
    """
    if count < 1 or size < 32 or size > 65536 or timeout <= 0:
        raise ValueError("count must be at least 1, size between 32 and 65536, timeout positive")
    deadline = Deadline(timeout)
    result = RelayResult(str(node_a), str(node_b) if node_b is not None else None)
    a = b = None
    try:
        a = DerpClient.connect(node_a, deadline=deadline, mesh_key=mesh_key, is_prober=True)
        b = DerpClient.connect(node_b or node_a, deadline=deadline, mesh_key=mesh_key, is_prober=True)
        result.connect_ms = max(a.connect_seconds, b.connect_seconds) * 1000
        result.server_keys = sorted({str(a.server_key), str(b.server_key)})
        if node_b is not None and a.server_key == b.server_key:
            result.error = (
                f"{node_a} and {node_b} have the same server key {a.server_key}: one server, so this is not a mesh test"
            )
            return result
        nonce = os.urandom(8)
        warm_started = time.monotonic()
        attempt = 0
        while True:  # warm up: until one packet makes the round trip (mesh peers learn of each other)
            try:
                _round_trip(a, b, nonce, attempt, size, deadline.within(WARMUP_INTERVAL if node_b else packet_timeout))
                break
            except TimeoutError:
                if deadline.expired:
                    raise
                attempt += 1
        result.setup_ms = (time.monotonic() - warm_started) * 1000
        for i in range(count):
            if deadline.expired:
                break
            result.sent += 1
            try:
                rtt = _round_trip(a, b, nonce, attempt + 1 + i, size, deadline.within(packet_timeout))
            except TimeoutError:
                continue
            result.received += 1
            result.rtts_ms.append(rtt * 1000)
    except TimeoutError:
        how = "through the mesh " if node_b is not None else ""
        result.error = f"no packet came back {how}within {timeout:g} s: the server does not relay between clients"
    except DerpError as err:
        result.error = str(err)
        result.rejected = isinstance(err, DerpClientRejected)
    finally:
        for client in (a, b):
            if client is not None:
                client.close()
    return result
