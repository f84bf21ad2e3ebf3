"""What every hostile attempt shares: run the CLI, hold its answer to the standard, and peers that misbehave.

The standard (DESIGN.md): exactly one ``derptool: error:`` line on stderr (notices may come before it), the
documented exit code, no traceback, no hang past the documented deadline, and never a password echoed.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

from typer.testing import CliRunner, Result

from derptool.cli import app

runner = CliRunner()
SECRET = "hunter2"
"""The password put in hostile URLs: no output may contain it."""


@dataclass
class Outcome:
    """One CLI run: exit code, stdout, stderr and wall time."""

    code: int
    stdout: str
    stderr: str
    seconds: float


def run(args: list[str], env: Mapping[str, str] | None = None, stdin: bytes | None = None) -> Outcome:
    """Run ``derptool ARGS`` in-process (``env`` set for the run) and time it."""
    begin = time.monotonic()
    result: Result = runner.invoke(app, args, env=dict(env or {}), input=stdin)
    took = time.monotonic() - begin
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(f"derptool {args!r} raised {result.exception!r}") from result.exception
    return Outcome(result.exit_code, result.stdout, result.stderr, took)


def assert_refused(out: Outcome, code: int, *mentions: str, within: float = 20.0) -> str:
    """*out* ended with exit *code* and one error line (returned) that mentions each of *mentions*."""
    lines = out.stderr.splitlines()
    errors = [line for line in lines if line.startswith("derptool: error: ")]
    assert out.code == code, f"exit {out.code}, want {code}; stderr: {out.stderr!r}"
    assert len(errors) == 1, f"want one error line, got: {out.stderr!r}"
    assert all(line.startswith("derptool: ") for line in lines), f"a line not derptool's: {out.stderr!r}"
    assert "Traceback" not in out.stderr + out.stdout
    assert SECRET not in out.stderr + out.stdout, "a password was echoed"
    assert out.seconds < within, f"took {out.seconds:.1f} s, more than {within} s"
    for text in mentions:
        assert text in errors[0], f"{text!r} not in {errors[0]!r}"
    return errors[0]


# -- peers that misbehave ------------------------------------------------------------------------------

Behaviour = Callable[[socket.socket, threading.Event], None]


def _send(conn: socket.socket, data: bytes) -> bool:
    try:
        conn.sendall(data)
    except OSError:
        return False
    return True


def answer(status: int, body: bytes, headers: Mapping[str, str] | None = None) -> Behaviour:
    """A whole HTTP answer, then close."""

    def behave(conn: socket.socket, stop: threading.Event) -> None:
        head = {"Content-Length": str(len(body)), "Connection": "close", **(headers or {})}
        lines = "".join(f"{k}: {v}\r\n" for k, v in head.items())
        _send(conn, f"HTTP/1.1 {status} X\r\n{lines}\r\n".encode() + body)

    return behave


def drip_body(conn: socket.socket, stop: threading.Event) -> None:
    """Headers promising 100 000 bytes, then one byte every 50 ms, forever."""
    if _send(conn, b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n"):
        while not stop.is_set() and _send(conn, b"1"):
            time.sleep(0.05)


def drip_headers(conn: socket.socket, stop: threading.Event) -> None:
    """A status line, then one header byte every 50 ms, never ending the headers."""
    if _send(conn, b"HTTP/1.1 200 OK\r\nX-Slow: "):
        while not stop.is_set() and _send(conn, b"a"):
            time.sleep(0.05)


def silent(conn: socket.socket, stop: threading.Event) -> None:
    """Accept, read the request, never answer."""
    stop.wait(30)


def endless(conn: socket.socket, stop: threading.Event) -> None:
    """A body without a length that never ends, as fast as the reader takes it."""
    if _send(conn, b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n"):
        block = b"0" * 65536
        while not stop.is_set() and _send(conn, block):
            pass


def not_http(conn: socket.socket, stop: threading.Event) -> None:
    """Another protocol's greeting."""
    _send(conn, b"SSH-2.0-OpenSSH_9.6\r\n")


def hang_up(conn: socket.socket, stop: threading.Event) -> None:
    """Close without a byte."""


GZIP_LIE = answer(200, b'{"not": "gzip"}' * 10, {"Content-Encoding": "gzip", "Content-Type": "application/json"})
HUGE_LENGTH = answer(200, b"{}", {"Content-Length": str(10**13)})
REDIRECT_LOOP = answer(302, b"", {"Location": "/again"})
STATUS_500 = answer(500, b"boom\n\x1b[31mred\x1b[0m second line\n", {"Content-Type": "text/plain"})
NOT_JSON = answer(200, b"<html>hello</html>", {"Content-Type": "text/html"})
DEEP_JSON = answer(200, b"[" * 50_000 + b"]" * 50_000, {"Content-Type": "application/json"})
NAN_JSON = answer(200, b'{"status": NaN}', {"Content-Type": "application/json"})

MISBEHAVIOURS: dict[str, tuple[Behaviour, str]] = {
    "drip-fed body": (drip_body, "no complete answer within"),
    "drip-fed headers": (drip_headers, "no complete answer within"),
    "never answers": (silent, "no complete answer within"),
    "endless body": (endless, "larger than"),
    "gzip header over plain bytes": (GZIP_LIE, "Content-Encoding"),
    "Content-Length of 10 TB": (HUGE_LENGTH, "more than"),
    "redirect loop": (REDIRECT_LOOP, "redirect"),
    "another protocol": (not_http, ""),
    "hangs up": (hang_up, ""),
}
"""Transport faults: each must end in one line and exit 3 by the deadline; the text the line must hold."""


@contextlib.contextmanager
def peer(behave: Behaviour) -> Iterator[str]:
    """A loopback TCP server answering every connection with *behave*; yields ``http://127.0.0.1:PORT``."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    stop = threading.Event()
    conns: list[socket.socket] = []

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conns.append(conn)
            threading.Thread(target=handle, args=(conn,), daemon=True).start()

    def handle(conn: socket.socket) -> None:
        with conn:
            conn.settimeout(5)
            with contextlib.suppress(OSError):
                conn.recv(65536)
            with contextlib.suppress(OSError):
                behave(conn, stop)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stop.set()
        listener.close()
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.close()
        thread.join(2)
