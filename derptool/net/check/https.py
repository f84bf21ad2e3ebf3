"""The ``latency_check`` and ``generate_204`` steps: plain HTTPS requests, each done by one deadline."""

from __future__ import annotations

from derptool.errors import ProbeFailed
from derptool.net import latencycheck
from derptool.net.check.report import NodeCheck, NodeTarget
from derptool.net.check.tls import TlsSession, handshake
from derptool.net.derp.conn import Deadline, DeadlineStream
from derptool.net.describe import describe_error


def request(t: NodeTarget, address: str, tls: TlsSession, deadline: Deadline, path: str) -> int:
    """``GET path`` on a new connection; the answer's status, read (headers included) by *deadline*."""
    stream = DeadlineStream(handshake(t, address, tls.context, deadline), deadline)
    with stream.sock:
        stream.write(latencycheck.request(t.host, t.derp_port, path))
        head = stream.read_until(b"\r\n\r\n", latencycheck.MAX_HEADER_BYTES)
    return latencycheck.status(head)


def check_http(
    t: NodeTarget,
    address: str,
    tls: TlsSession,
    result: NodeCheck,
    timeout: float,
    node_deadline: Deadline | None = None,
) -> None:
    """``GET /derp/latency-check`` must answer 2xx and ``GET /generate_204`` 204; record both steps."""
    note = "" if tls.verified else " (certificate not verified)"
    steps = (("latency_check", latencycheck.LATENCY_CHECK_PATH, None), ("generate_204", "/generate_204", 204))
    for name, path, want in steps:
        deadline = node_deadline.within(timeout) if node_deadline else Deadline(timeout)
        try:
            status = request(t, address, tls, deadline, path)
        except (OSError, ValueError, ProbeFailed) as err:
            result.add(name, "fail", f"GET {path}: {describe_error(err, within=deadline.seconds)}")
            continue
        good = status == want if want else 200 <= status <= 299
        expect = str(want) if want else "2xx"
        result.add(
            name,
            "pass" if good else "fail",
            f"GET {path}: {status}{'' if good else f', want {expect}'}{note}",
            http_status=status,
        )
