"""One GET on a tailscaled's LocalAPI unix socket, with a total deadline and a size cap.

The request is HTTP/1.0 (``Host: local-tailscaled.sock``, as tailscaled requires), so the answer is the
body until the daemon closes the connection: no chunked encoding to decode. The deadline covers the whole
exchange (connect, headers and body): a daemon that drip-feeds bytes or never stops sending is abandoned when
it passes, as is an answer past the size cap.
"""

from __future__ import annotations

import socket

from derptool.errors import NetworkError, ProtocolError
from derptool.net.deadline import Deadline

HOST = "local-tailscaled.sock"
_CHUNK = 65536


def localapi_get(socket_path: str, path: str, *, timeout: float, max_bytes: int) -> bytes:
    """The body of ``GET path`` on the LocalAPI at *socket_path* (an HTTP status other than 200 fails).

    :class:`NetworkError` when the socket cannot be reached, the answer is not complete within *timeout*
    seconds or is larger than *max_bytes*; :class:`ProtocolError` when the answer is not HTTP.
    """
    where = f"tailscaled LocalAPI {socket_path}"
    deadline = Deadline(timeout)
    raw = bytearray()
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            sock.connect(socket_path)
            sock.sendall(f"GET {path} HTTP/1.0\r\nHost: {HOST}\r\nAccept: */*\r\n\r\n".encode("ascii"))
            while True:
                left = deadline.left()
                if left <= 0:
                    raise NetworkError(f"{where}: no complete answer to {path} within {timeout:g} s")
                sock.settimeout(left)
                chunk = sock.recv(_CHUNK)
                if not chunk:
                    break
                raw += chunk
                if len(raw) > max_bytes:
                    raise NetworkError(f"{where}: answer to {path} larger than {max_bytes >> 20} MiB")
    except TimeoutError:
        raise NetworkError(f"{where}: no complete answer to {path} within {timeout:g} s") from None
    except OSError as err:  # absent, not a socket, permission denied, refused
        raise NetworkError(f"{where}: cannot scrape: {err.strerror or err}") from None
    return _body(bytes(raw), where, path)


def _body(raw: bytes, where: str, path: str) -> bytes:
    head, sep, body = raw.partition(b"\r\n\r\n")
    status_line = head.split(b"\r\n", 1)[0].decode("latin-1")
    parts = status_line.split(" ", 2)
    if not sep or len(parts) < 2 or not parts[0].startswith("HTTP/") or not (parts[1].isascii() and parts[1].isdigit()):
        raise ProtocolError(f"{where}: the answer to {path} is not HTTP ({status_line[:60]!r})")
    status = int(parts[1])
    if status != 200:
        lines = body.decode("utf-8", "replace").strip().splitlines()
        why = f": {lines[0][:200]}" if lines else ""
        raise NetworkError(f"{where}: HTTP {status}{why}")
    return body
