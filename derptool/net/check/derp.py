"""The ``derp`` step: ``GET /derp`` with ``Upgrade: DERP`` switches protocols and sends the server-key frame.

The key is reported as ``nodekey:<64 hex digits>``, the text form Tailscale uses for node public keys.
Nothing more is sent: no tailnet is joined. The frame format is :mod:`derptool.net.derp.frames`.
"""

from __future__ import annotations

from derptool.net.check.https import describe, request
from derptool.net.check.report import NodeCheck, NodeTarget
from derptool.net.check.tls import TlsSession
from derptool.net.derp.frames import read_server_key


def check_derp(t: NodeTarget, address: str, tls: TlsSession, result: NodeCheck, timeout: float) -> None:
    """Upgrade to DERP, read the server key and record the step (and the key on *result*)."""
    note = "" if tls.verified else " (certificate not verified)"
    try:
        sock, reader, status, headers = request(t, address, tls, timeout, "/derp",
                                                "Upgrade: DERP\r\nConnection: Upgrade\r\n")
    except (OSError, ValueError) as err:
        result.add("derp", "fail", f"GET /derp: {describe(err)}")
        return
    with sock:
        if status != 101:
            result.add("derp", "fail", f"GET /derp with Upgrade: DERP answered {status}, not 101 Switching "
                       "Protocols: not a DERP server", http_status=status)
            return
        try:
            key = read_server_key(reader)
        except (OSError, ValueError) as err:
            result.add("derp", "fail", f"upgraded, but no server-key frame: {describe(err)}", http_status=status)
            return
    public_key = "nodekey:" + key.hex()
    header_key = headers.get("derp-public-key", "").lower()
    if header_key and header_key != key.hex():
        result.add("derp", "fail", f"the key frame ({public_key}) and the Derp-Public-Key header "
                   f"({header_key}) disagree", public_key=public_key)
        return
    result.public_key = public_key
    result.add("derp", "pass", f"101 Switching Protocols, then the server-key frame{note}", public_key=public_key)
