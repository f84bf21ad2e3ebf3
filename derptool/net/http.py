"""The one HTTP GET of derptool: a whole-request deadline, a size cap, and one line for every failure.

httpx bounds each read, not the request: a server that drips a byte a second, or never ends its headers or
its body, would hold a plain ``httpx`` call forever, and name resolution has no timeout at all. :func:`get`
runs the request in a worker thread and gives up when the :class:`Deadline` passes (the worker also stops
reading by then), so the caller waits no longer than the deadline, whatever the peer does. The body is read
to at most ``max_bytes``; a body that is not what its headers say (``Content-Encoding: gzip`` over plain
bytes) fails with one line. Every failure is a :class:`~derptool.errors.NetworkError` (exit 3) whose message
names the URL with its password redacted.

``derpmap.sources`` (maps), ``fleet.prometheus``, ``watch`` (scrapes and the LocalAPI) use it; ``check``'s
HTTPS steps read raw sockets bounded by the same :class:`Deadline`.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from derptool.errors import NetworkError, UsageError
from derptool.net.deadline import Deadline
from derptool.net.describe import describe_error
from derptool.net.url import redact


@dataclass(frozen=True)
class Answer:
    """What a server answered: status, headers (lower-case names) and the whole body."""

    status: int
    reason: str
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Request:
    """One GET: the URL (as given, password included), and how to make it."""

    url: str
    headers: Mapping[str, str] = field(default_factory=dict)
    params: Mapping[str, str] | None = None
    socket: str | None = None
    """A unix socket to connect to instead of the URL's host (a tailscaled LocalAPI)."""
    verify: Any = True
    """``True``, ``False`` or an ``ssl.SSLContext``."""
    follow_redirects: bool = False
    max_bytes: int = 16 << 20
    shown: str = ""
    """How messages name the target (default: the URL with its password redacted)."""

    @property
    def name(self) -> str:
        return self.shown or redact(self.url)


def describe(err: BaseException) -> str:
    """A one-line reason for a failed request, without the URL (the caller names it): the HTTP-level faults
    here, the rest in :func:`derptool.net.describe.describe_error`'s words, the password always redacted."""
    import httpx

    if isinstance(err, httpx.DecodingError):
        return "the body is not what its headers say (its Content-Encoding does not decode)"
    if isinstance(err, httpx.TooManyRedirects):
        return "too many redirects"
    if isinstance(err, httpx.RemoteProtocolError):
        return f"the server broke HTTP: {_first_line(err)}"
    return redact(describe_error(err))[:300]


def peer_text(value: object, limit: int = 200) -> str:
    """Text a peer sent, fit for one line of a message: its first line, control characters escaped, cut short."""
    text = value if isinstance(value, str) else repr(value)
    lines = text.strip().splitlines()
    first = lines[0] if lines else ""
    shown = "".join(c if c.isprintable() else f"\\u{ord(c):04x}" for c in first[:limit])
    return shown + ("..." if len(first) > limit or len(lines) > 1 else "")


def decode_json_answer(body: bytes) -> Any:
    """A JSON answer decoded within derptool's limits (nesting, number length), or None when it is not JSON.

    ``NaN`` and ``Infinity`` (not JSON) and numbers that overflow to infinity make it not JSON.
    """
    import json

    from derptool.errors import LimitError
    from derptool.fileio import check_document_limits, room_for_depth

    try:
        check_document_limits(body, "answer")
        with room_for_depth():
            return json.loads(body, parse_constant=_not_json, parse_float=_finite)
    except (ValueError, RecursionError, LimitError, UnicodeDecodeError):
        return None


def _not_json(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _finite(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise ValueError(f"{text} overflows")
    return value


def _first_line(err: BaseException) -> str:
    text = str(err).strip() or type(err).__name__
    line = text.splitlines()[0] if text.splitlines() else text
    return redact(line)[:300]


def _fetch(req: Request, deadline: Deadline, cancel: threading.Event) -> Answer:
    import httpx

    per_read = max(0.05, deadline.left())
    timeout = httpx.Timeout(per_read)
    transport = httpx.HTTPTransport(uds=req.socket, verify=req.verify) if req.socket else None
    try:
        with (
            httpx.Client(
                timeout=timeout,
                follow_redirects=req.follow_redirects,
                verify=req.verify,
                transport=transport,
                headers=dict(req.headers),
            ) as client,
            client.stream("GET", req.url, params=req.params) as resp,
        ):
            headers = {k.lower(): v for k, v in resp.headers.items()}
            declared = headers.get("content-length", "")
            if declared.isascii() and declared.isdigit() and int(declared) > req.max_bytes:
                raise NetworkError(
                    f"{req.name}: the answer is {int(declared)} bytes, more than the {req.max_bytes} allowed"
                )
            body = bytearray()
            for chunk in resp.iter_bytes():
                body += chunk
                if len(body) > req.max_bytes:
                    raise NetworkError(f"{req.name}: the answer is larger than the {req.max_bytes} bytes allowed")
                if cancel.is_set() or deadline.expired:
                    raise NetworkError(f"{req.name}: timed out: no complete answer within {deadline.seconds:g} s")
            return Answer(resp.status_code, resp.reason_phrase or "", bytes(body), headers)
    except httpx.InvalidURL as err:
        raise UsageError(f"{req.name} is not a usable URL: {_first_line(err)}") from None
    except (httpx.HTTPError, OSError) as err:
        raise NetworkError(f"{req.name}: {describe(err)}") from None


def get(req: Request, deadline: Deadline) -> Answer:
    """GET *req* and read the whole answer by *deadline*, or raise :class:`NetworkError` (exit 3).

    A URL httpx cannot use raises :class:`UsageError` (exit 2); callers parse URLs with
    :func:`derptool.net.url.parse_url` first, so this is a last guard.
    """
    result: list[Answer] = []
    error: list[BaseException] = []
    cancel = threading.Event()

    def run() -> None:
        try:
            result.append(_fetch(req, deadline, cancel))
        except BaseException as err:  # handed to the caller's thread
            error.append(err)

    worker = threading.Thread(target=run, name="derptool-http", daemon=True)
    worker.start()
    worker.join(max(0.0, deadline.left()))
    if worker.is_alive():
        cancel.set()
        raise NetworkError(f"{req.name}: timed out: no complete answer within {deadline.seconds:g} s")
    if error:
        raise error[0]
    return result[0]
