"""A TLS byte stream to a DERP server whose every read and write ends by one deadline.

A socket timeout bounds each ``recv`` on its own, so a server that sends one byte per second keeps a reader
going for as long as it likes. Here each operation gets only the time left until a :class:`Deadline`, so
a whole conversation (connect, TLS, upgrade, handshake, one probe) ends when its deadline does.
"""

from __future__ import annotations

import socket
import ssl

from derptool.net.deadline import Deadline

__all__ = ["Deadline", "DeadlineStream", "tls_connect"]


def tls_connect(
    address: str, port: int, *, context: ssl.SSLContext, server_name: str | None, deadline: Deadline
) -> ssl.SSLSocket:
    """TCP to ``address:port`` and a TLS handshake (SNI *server_name*), both done by *deadline*."""
    raw = socket.create_connection((address, port), timeout=deadline.remaining())
    try:
        raw.settimeout(deadline.remaining())
        # Python bounds the whole handshake by the socket timeout (not each read of it).
        sock = context.wrap_socket(raw, server_hostname=server_name)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock
    except BaseException:
        raw.close()
        raise


class DeadlineStream:
    """Buffered reads and whole writes on a socket, each bounded by the stream's current :attr:`deadline`.

    ``read(n)`` has the shape frame readers expect from a binary file: it returns fewer than *n* bytes
    only when the peer closed the connection. Timeouts raise ``TimeoutError``.
    """

    def __init__(self, sock: socket.socket, deadline: Deadline) -> None:
        self.sock = sock
        self.deadline = deadline
        self._buf = bytearray()
        self._eof = False

    def _fill(self) -> bool:
        """Read what the socket has (waiting until the deadline); False at end of stream."""
        if self._eof:
            return False
        self.sock.settimeout(self.deadline.remaining())
        chunk = self.sock.recv(65536)
        if not chunk:
            self._eof = True
            return False
        self._buf += chunk
        return True

    def read(self, n: int) -> bytes:
        """Exactly *n* bytes, or fewer if the connection closes first."""
        while len(self._buf) < n and self._fill():
            pass
        data = bytes(self._buf[:n])
        del self._buf[:n]
        return data

    def read_until(self, marker: bytes, limit: int) -> bytes:
        """Bytes up to and including *marker*; ``ValueError`` past *limit* bytes or at end of stream."""
        while True:
            end = self._buf.find(marker)
            if end >= 0:
                data = bytes(self._buf[: end + len(marker)])
                del self._buf[: end + len(marker)]
                return data
            if len(self._buf) > limit:
                raise ValueError(f"no {marker!r} in the first {limit} bytes")
            if not self._fill():
                raise ValueError(f"connection closed after {len(self._buf)} bytes, before {marker!r}")

    def has_buffered(self) -> bool:
        """True when bytes are waiting in the buffer or inside the TLS layer."""
        pending = self.sock.pending() if isinstance(self.sock, ssl.SSLSocket) else 0
        return bool(self._buf) or pending > 0

    def write(self, data: bytes) -> None:
        """Send all of *data* by the deadline."""
        self.sock.settimeout(self.deadline.remaining())
        self.sock.sendall(data)

    def close(self) -> None:
        self.sock.close()
