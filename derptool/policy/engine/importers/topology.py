"""derptool's own tailnet file (the ``topology`` of Tailscale's recorded netmaps), or a whole recorded
case holding one; read by :func:`derptool.policy.engine.tailnet.from_topology`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from derptool.policy.engine.tailnet import Tailnet, from_topology

KIND = "derptool's tailnet file"


def looks_like(data: Any) -> bool:
    """Whether *data* may be a tailnet file or a recorded case: any object the other sources do not claim
    (so that a misspelt member is reported at its line by the tailnet file's reader)."""
    return isinstance(data, Mapping)


def to_tailnet(data: Any, file: str, src: bytes | None) -> Tailnet:
    """The tailnet of a tailnet file (errors at file:line:col) or of a recorded case's ``topology``."""
    if isinstance(data, Mapping) and "topology" in data and "nodes" not in data:
        return from_topology(data["topology"], file=file)  # a whole recording case: no positions
    return from_topology(data, file=file, src=src)


__all__ = ["KIND", "looks_like", "to_tailnet"]
