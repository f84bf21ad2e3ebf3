"""The ``stun`` step: a Tailscale-style binding request on the STUN port gets a valid answer.

The request goes out from the shared STUN socket (:class:`derptool.net.stunclient.BlockingStunClient`),
repeated every half second: an answer from another address or port is ignored, and a closed port fails at
once (ICMP port unreachable) instead of at the deadline.
"""

from __future__ import annotations

from derptool.errors import ProbeFailed, StunTimeout
from derptool.net.check.report import NodeCheck, NodeTarget
from derptool.net.dial import join_host_port
from derptool.net.stunclient import BlockingStunClient, StunStats

STUN_TIMEOUT = 3.0
"""The step waits at most this long (or the check's timeout, when shorter)."""
RETRANSMIT = 0.5


def check_stun(
    t: NodeTarget, address: str | None, result: NodeCheck, timeout: float, stats: StunStats | None = None
) -> None:
    """Send a binding request to the node's STUN port and record the step (*stats* adds up what came)."""
    if t.stun_port is None:
        result.add("stun", "skip", "STUN is disabled for this node (STUNPort -1)")
        return
    if t.stun_test_ip:
        address = t.stun_test_ip
    if address is None:
        result.add("stun", "skip", "no address to send to")
        return
    where = join_host_port(address, t.stun_port)
    limit = min(timeout, STUN_TIMEOUT)
    with BlockingStunClient() as client:
        (got,) = client.query([(address, t.stun_port)], timeout=limit, retransmit=RETRANSMIT)
        if stats is not None:
            stats.add(client.stats)
    if isinstance(got, StunTimeout):
        why = f"no answer ({got.ignored})" if got.ignored else "no answer"
        result.add("stun", "fail", f"{where}: {why} within {limit:g} s")
    elif isinstance(got, ProbeFailed):
        result.add("stun", "fail", f"{where}: {got}")
    else:
        result.add(
            "stun",
            "pass",
            f"{where} answered in {got.rtt_ms:.1f} ms; it sees this machine at {got.mapped}",
            mapped=got.mapped,
            rtt_ms=round(got.rtt_ms, 3),
        )
