"""A DERP client: connect to a server, send packets to other clients' keys, receive what they send.

::

    endpoint = DerpEndpoint("127.0.0.1", 443, host="derp.example.test", context=ssl_context)
    with DerpClient.connect(endpoint, timeout=5) as a, DerpClient.connect(endpoint, timeout=5) as b:
        a.send(b.public_key, b"hello")
        message = b.recv(timeout=2)        # ReceivedPacket(source=a.public_key, data=b"hello")
        rtt = a.ping(timeout=2)            # seconds to the server and back

Messages from the server are typed values (:data:`Message`). Pings from the server are answered as they
arrive; messages read while waiting for something else (a pong, a given packet) are kept for later
:meth:`DerpClient.recv` calls. Every wait ends by a deadline (see :mod:`derptool.net.derp.conn`).
"""

from __future__ import annotations

import os
import socket
import ssl
import struct
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import BinaryIO, cast

from derptool.errors import DerpError
from derptool.net.derp import frames
from derptool.net.derp.conn import Deadline, DeadlineStream, tls_connect
from derptool.net.derp.handshake import Greeting, ServerInfo, handshake
from derptool.net.derp.keys import NodePrivate, NodePublic

FrameType = frames.FrameType
DEFAULT_TIMEOUT = 5.0


@dataclass(frozen=True)
class DerpEndpoint:
    """Where a DERP server is and how to talk TLS to it.

    *address* is what is dialled (an IP address, or a name the system resolves); *host* goes into the
    HTTP ``Host`` header; *server_name* is the TLS SNI and the name verified (None with a pinned
    certificate: then *context* does not check names), by default *host*.
    """

    address: str
    port: int
    host: str
    context: ssl.SSLContext
    server_name: str | None = ""

    @property
    def sni(self) -> str | None:
        return self.host if self.server_name == "" else self.server_name

    def __str__(self) -> str:
        where = f"[{self.address}]" if ":" in self.address else self.address
        return f"{self.host} ({where}:{self.port})" if self.address != self.host else f"{where}:{self.port}"


@dataclass(frozen=True)
class ReceivedPacket:
    """A packet another client sent us through the server."""

    source: NodePublic
    data: bytes


@dataclass(frozen=True)
class PeerGone:
    """A peer we sent to is not (or no longer) connected; *reason* 0 disconnected, 1 not here."""

    peer: NodePublic
    reason: int


@dataclass(frozen=True)
class PeerPresent:
    """A peer connected (sent only to mesh peers that watch connections)."""

    peer: NodePublic
    endpoint: str | None
    flags: int


@dataclass(frozen=True)
class KeepAlive:
    """The server says the connection is alive."""


@dataclass(frozen=True)
class Pong:
    """The answer to one of our pings."""

    data: bytes


@dataclass(frozen=True)
class Health:
    """A health problem the server reports (empty: the problem is gone)."""

    problem: str


@dataclass(frozen=True)
class Restarting:
    """The server is restarting: reconnect after *reconnect_in_ms*, keep trying for *try_for_ms*."""

    reconnect_in_ms: int
    try_for_ms: int


@dataclass(frozen=True)
class OtherFrame:
    """A frame this client does not interpret."""

    frame_type: int
    payload: bytes


Message = ReceivedPacket | PeerGone | PeerPresent | KeepAlive | Pong | Health | Restarting | OtherFrame


def _endpoint_text(raw: bytes) -> str | None:
    if len(raw) < 18:
        return None
    ip, port = raw[:16], struct.unpack("!H", raw[16:18])[0]
    if ip[:12] == b"\0" * 10 + b"\xff\xff":
        addr = socket.inet_ntop(socket.AF_INET, ip[12:])
        return f"{addr}:{port}"
    return f"[{socket.inet_ntop(socket.AF_INET6, ip)}]:{port}"


def parse_message(frame_type: int, payload: bytes) -> Message | bytes:
    """A frame as a :data:`Message`; a server ping comes back as its 8 bytes (the caller answers it)."""
    k = frames.KEY_LEN
    if frame_type == FrameType.RECV_PACKET and len(payload) >= k:
        return ReceivedPacket(NodePublic(payload[:k]), payload[k:])
    if frame_type == FrameType.PEER_GONE and len(payload) >= k:
        return PeerGone(NodePublic(payload[:k]), payload[k] if len(payload) > k else 0)
    if frame_type == FrameType.PEER_PRESENT and len(payload) >= k:
        rest = payload[k:]
        return PeerPresent(NodePublic(payload[:k]), _endpoint_text(rest), rest[18] if len(rest) > 18 else 0)
    if frame_type == FrameType.KEEP_ALIVE:
        return KeepAlive()
    if frame_type == FrameType.PING and len(payload) >= 8:
        return payload[:8]
    if frame_type == FrameType.PONG and len(payload) >= 8:
        return Pong(payload[:8])
    if frame_type == FrameType.HEALTH:
        return Health(payload.decode("utf-8", "replace"))
    if frame_type == FrameType.RESTARTING and len(payload) >= 8:
        reconnect, try_for = struct.unpack("!II", payload[:8])
        return Restarting(reconnect, try_for)
    return OtherFrame(frame_type, payload)


class DerpClient:
    """One open DERP connection (use :meth:`connect`); close it, or use it as a context manager."""

    def __init__(
        self,
        endpoint: DerpEndpoint,
        stream: DeadlineStream,
        private: NodePrivate,
        greeting: Greeting,
        connect_seconds: float,
    ) -> None:
        self.endpoint = endpoint
        self._stream = stream
        self._private = private
        self.greeting = greeting
        self.connect_seconds = connect_seconds
        """Time from the TCP connect to the server info (TLS, upgrade and handshake)."""
        self._pending: deque[Message] = deque()

    # -- opening and closing ----------------------------------------------------------------------

    @classmethod
    def connect(
        cls,
        endpoint: DerpEndpoint,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        deadline: Deadline | None = None,
        private: NodePrivate | None = None,
        fast_start: bool = False,
        mesh_key: str | None = None,
        is_prober: bool = False,
        expect_key: NodePublic | None = None,
    ) -> DerpClient:
        """Connect, upgrade and handshake, all by *deadline* (default: *timeout* seconds from now).

        Raises :class:`~derptool.errors.DerpError` (or its :class:`~derptool.errors.DerpClientRejected`)
        for every failure, with a one-line reason.
        """
        deadline = deadline or Deadline(timeout)
        private = private or NodePrivate.generate()
        started = time.monotonic()
        try:
            sock = tls_connect(
                endpoint.address, endpoint.port, context=endpoint.context, server_name=endpoint.sni, deadline=deadline
            )
        except TimeoutError:
            raise DerpError(f"cannot connect to {endpoint}: no TLS connection within {deadline.seconds:g} s") from None
        except ssl.SSLCertVerificationError as err:
            raise DerpError(f"TLS with {endpoint}: certificate not trusted: {err.verify_message or err}") from None
        except ssl.SSLError as err:
            raise DerpError(f"TLS with {endpoint} failed: {err.reason or err}") from None
        except OSError as err:
            raise DerpError(f"cannot connect to {endpoint}: {err.strerror or err}") from None
        stream = DeadlineStream(sock, deadline)
        try:
            greeting = handshake(
                stream,
                private,
                host=endpoint.host,
                fast_start=fast_start,
                mesh_key=mesh_key,
                is_prober=is_prober,
                expect_key=expect_key,
            )
        except BaseException:
            stream.close()
            raise
        return cls(endpoint, stream, private, greeting, time.monotonic() - started)

    def close(self) -> None:
        """Close the connection (the server forgets this client)."""
        self._stream.close()

    def __enter__(self) -> DerpClient:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- who is who --------------------------------------------------------------------------------

    @property
    def public_key(self) -> NodePublic:
        """This client's key: other clients send to it."""
        return self._private.public

    @property
    def server_key(self) -> NodePublic:
        return self.greeting.server_key

    @property
    def server_info(self) -> ServerInfo:
        return self.greeting.server_info

    # -- sending -----------------------------------------------------------------------------------

    def _write(self, frame_type: int, payload: bytes, deadline: Deadline) -> None:
        self._stream.deadline = deadline
        try:
            self._stream.write(frames.encode_frame(frame_type, payload))
        except TimeoutError:
            raise DerpError(f"{self.endpoint}: could not send within {deadline.seconds:g} s") from None
        except OSError as err:
            raise DerpError(f"{self.endpoint}: connection lost: {err.strerror or err}") from None

    def send(self, destination: NodePublic, packet: bytes, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        """Send *packet* (at most 64 KiB) to the client with key *destination*."""
        if len(packet) > frames.MAX_PACKET_SIZE:
            raise ValueError(f"a DERP packet is at most {frames.MAX_PACKET_SIZE} bytes, not {len(packet)}")
        self._write(FrameType.SEND_PACKET, destination.raw + packet, Deadline(timeout))

    def note_preferred(self, preferred: bool, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        """Tell the server whether it is this client's home (it only counts it)."""
        self._write(FrameType.NOTE_PREFERRED, b"\x01" if preferred else b"\x00", Deadline(timeout))

    # -- receiving ---------------------------------------------------------------------------------

    def _read_one(self, deadline: Deadline) -> Message:
        self._stream.deadline = deadline
        while True:
            try:
                frame_type, payload = frames.read_frame(cast(BinaryIO, self._stream))
            except TimeoutError:
                raise
            except ValueError as err:
                raise DerpError(f"{self.endpoint}: {err}") from None
            except ssl.SSLError as err:
                raise DerpError(f"{self.endpoint}: TLS error: {err.reason or err}") from None
            except OSError as err:
                raise DerpError(f"{self.endpoint}: connection lost: {err.strerror or err}") from None
            message = parse_message(frame_type, payload)
            if isinstance(message, bytes):  # a ping from the server: answer it, keep reading
                self._write(FrameType.PONG, message, deadline)
                continue
            return message

    def recv(self, *, timeout: float = DEFAULT_TIMEOUT, deadline: Deadline | None = None) -> Message:
        """The next message; raises ``TimeoutError`` when none comes by the deadline."""
        if self._pending:
            return self._pending.popleft()
        return self._read_one(deadline or Deadline(timeout))

    def wait_for(self, wanted: Callable[[Message], bool], *, deadline: Deadline) -> Message:
        """Read until a message satisfies *wanted*; the others are kept for :meth:`recv`.

        Raises ``TimeoutError`` when none does by *deadline*.
        """
        for i, message in enumerate(self._pending):
            if wanted(message):
                del self._pending[i]
                return message
        while True:
            message = self._read_one(deadline)
            if wanted(message):
                return message
            if len(self._pending) < 1024:
                self._pending.append(message)

    def ping(self, *, timeout: float = DEFAULT_TIMEOUT) -> float:
        """Seconds from a ping to the server to its pong; raises ``TimeoutError`` without a pong."""
        deadline = Deadline(timeout)
        data = os.urandom(8)
        started = time.monotonic()
        self._write(FrameType.PING, data, deadline)
        self.wait_for(lambda m: isinstance(m, Pong) and m.data == data, deadline=deadline)
        return time.monotonic() - started
