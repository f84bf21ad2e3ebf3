"""Where metrics come from: an HTTP(S) URL, or a tailscaled's LocalAPI unix socket; one scrape at a time.

A tailscaled serves its user metrics (the ``tailscaled_*`` series) on its LocalAPI at
``/localapi/v0/usermetrics``, with ``local-tailscaled.sock`` as the HTTP host, and to its own tailnet
at ``http://100.100.100.100/metrics``. The same LocalAPI gives the DERP map the client uses
(``/localapi/v0/derpmap``), which names the home region exactly as the client knows it, and its status
(``/localapi/v0/status``, what ``tailscale status --json`` prints), which says how each peer is reached.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from derptool.derpmap import DERPMap, parse_derpmap
from derptool.errors import DerptoolError, InputError, NetworkError, ProtocolError, UsageError
from derptool.net.deadline import Deadline
from derptool.net.http import Request, decode_json_answer, get, peer_text
from derptool.net.url import looks_like_url, parse_url, redact, show
from derptool.watch.localapi import localapi_get
from derptool.watch.samples import Snapshot, parse_snapshot
from derptool.watch.status import StatusSnapshot, parse_status

DEFAULT_SOCKET = "/var/run/tailscale/tailscaled.sock"
DEFAULT_URL = "http://100.100.100.100/metrics"
USERMETRICS_PATH = "/localapi/v0/usermetrics"
DERPMAP_PATH = "/localapi/v0/derpmap"
STATUS_PATH = "/localapi/v0/status"
TIMEOUT = 5.0
"""Total deadline of one request, in seconds (connect, headers and body)."""
MAX_BYTES = 16 << 20
"""Largest response read from a target (a scrape of many megabytes is not a metrics page; a status that
large would be a tailnet of some 10 000 peers)."""


@dataclass(frozen=True)
class Target:
    """A metrics endpoint: ``url`` over HTTP(S), or a tailscaled LocalAPI ``socket``."""

    url: str | None = None
    socket: str | None = None
    ca_file: str | None = None
    """Also trust the CA certificates in this PEM file (for an https URL)."""

    @property
    def description(self) -> str:
        """How the target is named to the user."""
        return f"tailscaled LocalAPI {self.socket}" if self.socket else redact(str(self.url))

    @classmethod
    def from_spec(cls, url: str | None, socket: str | None = None, *, ca_file: str | None = None) -> Target:
        """The target a user gave (a URL or a socket path, not both), or :func:`default_target`."""
        if url and socket:
            raise UsageError("give a URL or --socket PATH, not both")
        if socket:
            return cls(socket=socket)
        if url:
            if not looks_like_url(url):
                raise UsageError(f"{show(url)} is not an http(s) URL; for a tailscaled socket use --socket PATH")
            return cls(url=parse_url(url, "URL", example="http://127.0.0.1:9100/metrics").text, ca_file=ca_file)
        return default_target()


def default_target(socket_path: str = DEFAULT_SOCKET) -> Target:
    """The local tailscaled: its LocalAPI socket when it exists, else ``http://100.100.100.100/metrics``."""
    if Path(socket_path).exists():
        return Target(socket=socket_path)
    return Target(url=DEFAULT_URL)


def _verify(target: Target) -> Any:
    if target.ca_file:
        from derptool.net.dial import tls_context  # lazy: only --ca-file needs it (0.3 s of imports)

        try:
            return tls_context(verify=True, ca_file=target.ca_file)
        except (OSError, ValueError) as err:
            raise InputError(f"--ca-file {target.ca_file}: cannot load CA certificates: {err}") from None
    return True


def _get(target: Target, path: str, timeout: float) -> str:
    """The body of *path* on a LocalAPI socket target, else of the target's URL, whole by *timeout* seconds."""
    if target.socket:
        return localapi_get(target.socket, path, timeout=timeout, max_bytes=MAX_BYTES).decode("utf-8", "replace")
    req = Request(str(target.url), verify=_verify(target), max_bytes=MAX_BYTES, shown=target.description)
    try:
        answer = get(req, Deadline(timeout))
    except NetworkError as err:
        raise NetworkError(
            f"{target.description}: cannot scrape: {err.message.removeprefix(req.name + ': ')}"
        ) from None
    if answer.status != 200:
        text = answer.body.decode("utf-8", "replace")
        why = f": {peer_text(text)}" if text.strip() else ""
        raise NetworkError(f"{target.description}: HTTP {answer.status}{why}")
    return answer.body.decode("utf-8", "replace")


def scrape(target: Target, *, timeout: float = TIMEOUT) -> Snapshot:
    """Fetch and parse one scrape of *target* (:class:`NetworkError` when it cannot be reached)."""
    text = _get(target, USERMETRICS_PATH, timeout)
    return parse_snapshot(text, taken=time.monotonic(), source=target.description)


def client_derpmap(target: Target, *, timeout: float = TIMEOUT) -> DERPMap | None:
    """The DERP map a tailscaled target uses (``None`` for a URL target, or when it cannot be had)."""
    if not target.socket:
        return None
    try:
        data = decode_json_answer(_get(target, DERPMAP_PATH, timeout).encode())
        return None if data is None else parse_derpmap(data, source=f"{target.description} DERP map")
    except (DerptoolError, ValueError):
        return None


def client_status(target: Target, *, timeout: float = TIMEOUT) -> StatusSnapshot | None:
    """The peers of a tailscaled target, from its LocalAPI status (``None`` for a URL target, which has
    no LocalAPI). :class:`NetworkError` when it cannot be had, :class:`ProtocolError` when it is not a status."""
    if not target.socket:
        return None
    body = _get(target, STATUS_PATH, timeout)
    taken, wall = time.monotonic(), time.time()
    try:
        data = json.loads(body)
    except (ValueError, RecursionError) as err:
        raise ProtocolError(f"{target.description}: its status is not JSON ({err})") from None
    return parse_status(data, taken=taken, wall=wall, source=f"{target.description} status")
