"""A LocalAPI on a real unix socket for the peer-view tests: HTTP (the stdlib server, as tailscaled speaks it
to ``tailscale``), serving the captured user metrics in order and a scripted list of statuses in order (the
last repeated), or misbehaving on purpose (``mode``): drip-feeding, never ending, or not speaking HTTP."""

from __future__ import annotations

import json
import socketserver
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

DATA = Path(__file__).resolve().parent.parent / "data" / "watch"


@dataclass
class Script:
    """What the fake serves, and what it was asked."""

    statuses: list[Any]
    """Each a JSON-ready value, or bytes sent as they are."""
    mode: str = "normal"
    """``normal``; ``drip`` (the status one byte every 0.1 s), ``endless`` (a status body that never stops),
    ``silent`` (accept and never answer), ``garbage`` (not HTTP): for the status request only."""
    requests: list[str] = field(default_factory=list)
    scrapes: int = 0
    status_reads: int = 0


class _Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
    block_on_close = False
    script: Script

    def handle_error(self, request: object, client_address: object) -> None:
        """A client that left mid-answer (the point of the drip and endless modes): nothing to report."""


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        script = self.server.script
        script.requests.append(self.path)
        if self.headers.get("Host") != "local-tailscaled.sock":
            self._send(403, b"invalid localapi request\n")
        elif self.path == "/localapi/v0/usermetrics":
            script.scrapes += 1
            self._send(200, (DATA / f"tailscaled-{min(script.scrapes, 2)}.prom").read_bytes())
        elif self.path == "/localapi/v0/derpmap":
            self._send(404, b"not here\n")  # the view then names regions from the bundled snapshot
        elif self.path == "/localapi/v0/status":
            script.status_reads += 1
            self._status(script)
        else:
            self._send(404, b"not found\n")

    def _status(self, script: Script) -> None:
        raw = script.statuses[min(script.status_reads, len(script.statuses)) - 1]
        body = raw if isinstance(raw, bytes) else json.dumps(raw).encode()
        if script.mode == "garbage":
            self.wfile.write(b"SSH-2.0-OpenSSH_9.2\r\n" + body)
        elif script.mode == "silent":
            time.sleep(30)
        elif script.mode == "drip":
            self.send_response(200)
            self.end_headers()
            for i in range(len(body)):
                self.wfile.write(body[i : i + 1])
                self.wfile.flush()
                time.sleep(0.1)
        elif script.mode == "endless":
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b'{"Peer": {"a": {"HostName": "')
            while True:
                self.wfile.write(b"x" * 65536)
        else:
            self._send(200, body)

    def _send(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextmanager
def serve(path: Path, script: Script) -> Iterator[Script]:
    """Serve *script* on a unix socket at *path* until the block ends."""
    server = _Server(str(path), _Handler)
    server.script = script
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield script
    finally:
        server.shutdown()
        server.server_close()
        path.unlink(missing_ok=True)


def peer(
    host: str,
    *,
    relay: str = "nyc",
    cur_addr: str = "",
    peer_relay: str = "",
    rx: int = 0,
    tx: int = 0,
    active: bool = True,
    handshake: str = "0001-01-01T00:00:00Z",
    ip: str = "100.64.0.9",
) -> dict[str, Any]:
    """One entry of a status's ``Peer`` map, shaped as tailscaled v1.102 writes it (fields it always writes)."""
    return {
        "ID": f"n{host}",
        "PublicKey": f"nodekey:{host.encode().hex():0<64}",
        "HostName": host,
        "DNSName": f"{host}.tailnet.test.",
        "OS": "linux",
        "UserID": 1,
        "TailscaleIPs": [ip, "fd7a:115c:a1e0::9"],
        "Addrs": None,
        "CurAddr": cur_addr,
        "Relay": relay,
        "PeerRelay": peer_relay,
        "RxBytes": rx,
        "TxBytes": tx,
        "Created": "2026-05-01T10:00:00Z",
        "LastWrite": "2026-05-01T10:00:00Z",
        "LastSeen": "0001-01-01T00:00:00Z",
        "LastHandshake": handshake,
        "Online": True,
        "ExitNode": False,
        "ExitNodeOption": False,
        "Active": active,
        "PeerAPIURL": None,
        "TaildropTarget": 0,
        "NoFileSharingReason": "",
        "InNetworkMap": True,
        "InMagicSock": True,
        "InEngine": True,
    }


def status(*peers: dict[str, Any]) -> dict[str, Any]:
    """A status with these peers (keyed by their public keys)."""
    return {
        "Version": "1.102.5",
        "TUN": False,
        "BackendState": "Running",
        "Self": {"HostName": "client1", "DNSName": "client1.tailnet.test.", "Relay": "nyc"},
        "Health": [],
        "Peer": {p["PublicKey"]: p for p in peers},
    }
