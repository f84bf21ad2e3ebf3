"""The ``derp`` and ``relay`` steps: the DERP handshake a client makes, and packets relayed between two clients.

``derp``
    ``GET /derp`` with ``Upgrade: DERP`` switches protocols (101), the first frame is the server-key frame,
    and the server admits a client (client info sealed to its key, server info back): the handshake every
    Tailscale client makes. It is made :data:`HANDSHAKES` times: different server keys behind one address
    mean a load balancer spreads clients over several servers, which then reach each other only if those
    servers mesh (each server should be its own node in the map). A server that verifies clients
    (``--verify-clients``) refuses our unknown key: reported as such, with its server key, not as a failure.
``relay`` (``--relay``)
    two clients exchange packets through the server (:func:`derptool.net.derp.relay.relay_probe`);
    round-trip time and loss are reported, and a lost packet fails the step.

Keys are reported as ``nodekey:<64 hex digits>``, Tailscale's text form of node public keys.
"""

from __future__ import annotations

from derptool.errors import DerpClientRejected, DerpError
from derptool.net.check.report import NodeCheck, NodeTarget
from derptool.net.check.tls import TlsSession
from derptool.net.derp.client import DerpClient, DerpEndpoint
from derptool.net.derp.conn import Deadline
from derptool.net.derp.relay import RelayResult, relay_probe
from derptool.net.dial import server_name

HANDSHAKES = 3
"""Handshakes made by the ``derp`` step, to see whether one address hides several servers."""


def endpoint(t: NodeTarget, address: str, tls: TlsSession) -> DerpEndpoint:
    """How the DERP client reaches the node at *address*, trusting what the ``tls`` step trusted."""
    return DerpEndpoint(address, t.derp_port, t.host, tls.context, server_name(t.tls_name, t.cert_name))


def check_derp(
    t: NodeTarget, address: str, tls: TlsSession, result: NodeCheck, deadline: Deadline, mesh_key: str | None = None
) -> bool:
    """Record the ``derp`` step (and the server key on *result*); True when the server admits clients."""
    note = "" if tls.verified else " (certificate not verified)"
    ep = endpoint(t, address, tls)
    keys: list[str] = []
    try:
        for _ in range(HANDSHAKES):
            with DerpClient.connect(ep, deadline=deadline, mesh_key=mesh_key, is_prober=True) as client:
                keys.append(str(client.server_key))
                version = client.server_info.version
    except DerpClientRejected as err:
        if err.server_key is None:
            result.add("derp", "fail", str(err))
            return False
        result.public_key = err.server_key
        result.add(
            "derp",
            "pass",
            f"101 Switching Protocols and the server-key frame{note}; the server verifies "
            "clients (derper --verify-clients) and refused this probe's unknown key: give --mesh-key-file "
            "to go further",
            public_key=err.server_key,
            public_keys=[err.server_key],
            verify_clients=True,
        )
        return False
    except DerpError as err:
        if keys:
            result.public_key = keys[0]
        result.add("derp", "fail", str(err), public_keys=sorted(set(keys)))
        return False
    distinct = sorted(set(keys))
    result.public_key = keys[0]
    if len(distinct) > 1:
        result.add(
            "derp",
            "fail",
            f"{len(distinct)} different server keys in {len(keys)} connections to one address: "
            "a load balancer spreads clients over several DERP servers; clients on different servers reach "
            "each other only if those servers mesh; list each server as its own node instead",
            public_key=keys[0],
            public_keys=distinct,
            load_balancer=True,
        )
        return True
    result.add(
        "derp",
        "pass",
        f"101 Switching Protocols, server-key frame, client admitted (protocol version {version}){note}",
        public_key=keys[0],
        public_keys=distinct,
    )
    return True


def relay_check(result: NodeCheck, relay: RelayResult) -> None:
    """Record the ``relay`` step from a relay probe through the node."""
    data = relay.to_data()
    for key in ("node_a", "node_b", "mesh", "ok", "server_keys", "error"):
        data.pop(key, None)
    if relay.error is not None:
        if relay.rejected:
            result.add("relay", "skip", f"the server verifies clients: {relay.error}", **data)
        else:
            result.add("relay", "fail", relay.error, **data)
        return
    summary = (
        f"{relay.received}/{relay.sent} packets relayed between two clients, round trip {relay.rtt_ms:.2f} ms"
        if relay.rtt_ms is not None
        else f"{relay.received}/{relay.sent} relayed"
    )
    if relay.received < relay.sent:
        result.add("relay", "fail", f"{summary}; {relay.sent - relay.received} lost", **data)
    else:
        result.add("relay", "pass", summary, **data)


def check_relay(
    t: NodeTarget,
    address: str,
    tls: TlsSession,
    result: NodeCheck,
    timeout: float,
    mesh_key: str | None = None,
    count: int = 5,
) -> None:
    """Run a relay probe through the node and record the ``relay`` step."""
    relay_check(result, relay_probe(endpoint(t, address, tls), count=count, timeout=timeout, mesh_key=mesh_key))
