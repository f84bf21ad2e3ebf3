"""Opening a DERP connection: the HTTP upgrade, the server key, client info out, server info in.

1. ``GET /derp`` with ``Upgrade: DERP`` and ``Connection: Upgrade``; the server answers ``101 Switching
   Protocols`` (with ``Derp-Version`` and ``Derp-Public-Key`` headers). With ``Derp-Fast-Start: 1`` it skips
   the HTTP answer and speaks DERP at once.
2. The server's first frame is the server key (magic ``DERP🔑`` and its 32-byte public key).
3. The client sends client info: its public key, then a NaCl box sealed to the server key holding JSON
   (``version``, ``CanAckPings``, optionally ``meshKey``, ``IsProber``, ``AppName``).
4. The server answers with server info, a box sealed to the client key holding JSON (``version``, and the
   token bucket of a rate-limited server). A server that verifies clients (derper ``--verify-clients`` or
   ``--verify-client-url``) instead closes the connection here when it does not know the client's key.
"""

from __future__ import annotations

import json
import ssl
from dataclasses import dataclass
from typing import BinaryIO, cast

from derptool.errors import DerpClientRejected, DerpError
from derptool.net.derp import frames
from derptool.net.derp.conn import DeadlineStream
from derptool.net.derp.keys import NodePrivate, NodePublic

MAX_HEADER_BYTES = 16 * 1024
MAX_INFO_LEN = 1 << 20
FAST_START_HEADER = "Derp-Fast-Start"


@dataclass(frozen=True)
class ServerInfo:
    """What the server says about itself after accepting a client."""

    version: int
    token_bucket_bytes_per_second: int = 0
    token_bucket_bytes_burst: int = 0


@dataclass(frozen=True)
class Greeting:
    """The outcome of a handshake: who the server is and what it said."""

    server_key: NodePublic
    server_info: ServerInfo
    http_status: int | None
    """101, or None after a fast start (no HTTP answer)."""
    headers: dict[str, str]


def upgrade_request(host: str, *, fast_start: bool = False) -> bytes:
    """The ``GET /derp`` request that asks *host* to switch to DERP."""
    shown = f"[{host}]" if ":" in host else host
    lines = ["GET /derp HTTP/1.1", f"Host: {shown}", "User-Agent: derptool", "Upgrade: DERP", "Connection: Upgrade"]
    if fast_start:
        lines.append(f"{FAST_START_HEADER}: 1")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("ascii")


def read_upgrade(stream: DeadlineStream) -> tuple[int, dict[str, str]]:
    """The status and (lower-cased) headers of the answer; raises :class:`DerpError` unless it is 101."""
    try:
        head = stream.read_until(b"\r\n\r\n", MAX_HEADER_BYTES)
    except ValueError as err:
        raise DerpError(f"GET /derp: no HTTP answer ({err})") from None
    status_line, *lines = head.decode("latin-1").split("\r\n")
    parts = status_line.split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
        raise DerpError(f"GET /derp: not an HTTP answer: {status_line[:60]!r}")
    status = int(parts[1])
    headers = {}
    for line in lines:
        key, sep, value = line.partition(":")
        if sep:
            headers[key.strip().lower()] = value.strip()
    if status != 101:
        reason = parts[2] if len(parts) > 2 else ""
        raise DerpError(
            f"GET /derp with Upgrade: DERP answered {status} {reason}".rstrip()
            + ", not 101 Switching Protocols: not a DERP server"
        )
    return status, headers


def client_info(
    private: NodePrivate,
    server_key: NodePublic,
    *,
    mesh_key: str | None = None,
    is_prober: bool = False,
    app_name: str = "derptool",
) -> bytes:
    """The client-info frame payload: our public key, then the sealed JSON."""
    info: dict[str, object] = {"version": frames.PROTOCOL_VERSION, "CanAckPings": True}
    if mesh_key:
        info["meshKey"] = mesh_key
    if is_prober:
        info["IsProber"] = True
    if app_name:
        info["AppName"] = app_name
    message = json.dumps(info, separators=(",", ":")).encode()
    return private.public.raw + private.seal_to(server_key, message)


def parse_server_info(private: NodePrivate, server_key: NodePublic, payload: bytes) -> ServerInfo:
    """Open and decode the server-info payload; raises :class:`DerpError` when it is not valid."""
    if not frames.NONCE_LEN <= len(payload) <= frames.NONCE_LEN + MAX_INFO_LEN:
        raise DerpError(f"server info of {len(payload)} bytes is not a sealed message")
    try:
        data = json.loads(private.open_from(server_key, payload))
    except ValueError as err:
        raise DerpError(f"server info: {err}") from None
    except RecursionError:  # a server that seals JSON nested thousands deep
        raise DerpError("server info: JSON nested too deeply") from None
    if not isinstance(data, dict):
        raise DerpError("server info is not a JSON object")

    def number(name: str) -> int:
        value = data.get(name, 0)
        return value if isinstance(value, int) else 0

    return ServerInfo(number("version"), number("TokenBucketBytesPerSecond"), number("TokenBucketBytesBurst"))


def handshake(
    stream: DeadlineStream,
    private: NodePrivate,
    *,
    host: str,
    fast_start: bool = False,
    mesh_key: str | None = None,
    is_prober: bool = False,
    app_name: str = "derptool",
    expect_key: NodePublic | None = None,
) -> Greeting:
    """Run steps 1 to 4 on an open TLS *stream*; every failure is a :class:`DerpError`.

    *expect_key* (for example a key learned over another connection) makes a different server key an error.
    A server that closes the connection after our client info raises :class:`DerpClientRejected`.
    """
    reader = cast(BinaryIO, stream)
    try:
        stream.write(upgrade_request(host, fast_start=fast_start))
        status: int | None = None
        headers: dict[str, str] = {}
        if not fast_start:
            status, headers = read_upgrade(stream)
        try:
            server_key = NodePublic(frames.read_server_key(reader))
        except ValueError as err:
            raise DerpError(f"upgraded, but no server-key frame: {err}") from None
        header_key = headers.get("derp-public-key", "").lower()
        if header_key and header_key != server_key.raw.hex():
            raise DerpError(
                f"the server-key frame ({server_key}) and the Derp-Public-Key header ({header_key}) disagree"
            )
        if expect_key is not None and server_key != expect_key:
            raise DerpError(f"server key {server_key}, expected {expect_key}")
        stream.write(
            frames.encode_frame(
                frames.FrameType.CLIENT_INFO,
                client_info(private, server_key, mesh_key=mesh_key, is_prober=is_prober, app_name=app_name),
            )
        )
        try:
            header = stream.read(frames.HEADER_LEN)
        except (ConnectionResetError, ssl.SSLEOFError):
            header = b""
        except TimeoutError:
            raise DerpClientRejected(
                f"the server did not answer our client info within {stream.deadline.seconds:g} s: a server that "
                "verifies clients (derper --verify-clients) waits like this while its tailscaled does not answer, "
                "then refuses the client; give the mesh key (derpprobe does the same) or check its tailscaled",
                str(server_key),
            ) from None
        if not header:
            raise DerpClientRejected(
                f"the server closed the connection after our client info instead of answering: it admits only "
                f"clients it knows (derper --verify-clients or --verify-client-url), and {private.public} is "
                "not one of them; give the mesh key (derpprobe does the same) or test from a tailnet node",
                str(server_key),
            )
        try:
            frame_type, length = frames.parse_header(header)
            if length > frames.NONCE_LEN + MAX_INFO_LEN:
                raise ValueError(f"a frame of {length} bytes is too long for server info")
            payload = frames.read_exactly(reader, length)
        except ValueError as err:
            raise DerpError(f"server info: {err}") from None
        if frame_type != frames.FrameType.SERVER_INFO:
            raise DerpError(f"expected server info (0x03) after client info, got frame type {frame_type:#04x}")
        info = parse_server_info(private, server_key, payload)
    except TimeoutError:
        raise DerpError(f"DERP handshake: no answer within {stream.deadline.seconds:g} s") from None
    except ssl.SSLError as err:
        raise DerpError(f"DERP handshake: TLS error: {err.reason or err}") from None
    except OSError as err:
        raise DerpError(f"DERP handshake: {err.strerror or err}") from None
    return Greeting(server_key, info, status, headers)
