"""Health check of a (self-hosted) DERP server: is it really there, and would Tailscale clients accept it?

For every node checked, in order (a failed step skips the ones that need it, with the reason), one
module per step:

``dns`` (:mod:`.dns`)
    the host name resolves (skipped for an IP address; the map's ``IPv4``/``IPv6`` stand in when it does not).
``stun`` (:mod:`.stun`)
    a Tailscale-style STUN binding request on the STUN port gets a valid answer.
``tls``, ``cert_name``, ``cert_expiry`` (:mod:`.tls`)
    TCP connect and TLS handshake on the DERP port with the chain verified (or pinned); the certificate's
    names cover the expected name (``CertName``, else the host name); it is valid now (days left reported).
``latency_check`` / ``generate_204`` (:mod:`.https`)
    ``GET /derp/latency-check`` answers 2xx and ``GET /generate_204`` answers 204.
``derp`` (:mod:`.derp`)
    ``GET /derp`` with ``Upgrade: DERP`` switches protocols (101) and the first frame is the server-key
    frame (:mod:`derptool.net.derp.frames`).

What to check is :mod:`.targets`; the result is data (:class:`CheckReport`, :mod:`.report`); running the
steps is :mod:`.runner`; rendering is :mod:`derptool.cli.check`; the certificate reader is :mod:`.x509`.
"""

from __future__ import annotations

from derptool.net.check.report import Check, CheckReport, NodeCheck, NodeTarget, Status
from derptool.net.check.runner import DEFAULT_TIMEOUT, check_node, run
from derptool.net.check.targets import parse_target, targets_from_map
from derptool.net.check.x509 import CertInfo, cert_info, name_matches
from derptool.net.derp.frames import KEY_LEN, MAGIC, read_server_key

DERP_MAGIC = MAGIC
FRAME_SERVER_KEY = 0x01

__all__ = [
    "DEFAULT_TIMEOUT",
    "DERP_MAGIC",
    "FRAME_SERVER_KEY",
    "KEY_LEN",
    "CertInfo",
    "Check",
    "CheckReport",
    "NodeCheck",
    "NodeTarget",
    "Status",
    "cert_info",
    "check_node",
    "name_matches",
    "parse_target",
    "read_server_key",
    "run",
    "targets_from_map",
]
