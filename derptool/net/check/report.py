"""What ``derptool check`` checks and finds: the targets and the report, as values."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from derptool.derpmap import DEFAULT_DERP_PORT, DEFAULT_STUN_PORT
from derptool.net.derp.relay import RelayResult

Status = Literal["pass", "fail", "skip"]


@dataclass(frozen=True)
class NodeTarget:
    """One server to check: where it is and what the map (or the command line) says about it."""

    host: str
    derp_port: int = DEFAULT_DERP_PORT
    stun_port: int | None = DEFAULT_STUN_PORT
    """None when the node has STUN disabled (``STUNPort`` -1)."""
    cert_name: str = ""
    ipv4: str = ""
    ipv6: str = ""
    stun_test_ip: str = ""
    insecure: bool = False
    stun_only: bool = False
    node: str | None = None
    region_id: int | None = None

    @property
    def tls_name(self) -> str:
        """The name the certificate must carry (and the SNI sent)."""
        return self.cert_name or self.host


@dataclass(frozen=True)
class Check:
    """The outcome of one check."""

    name: str
    status: Status
    detail: str
    data: dict[str, Any] = field(default_factory=dict)


@dataclass
class NodeCheck:
    """All checks of one node over one address family (a node with IPv4 and IPv6 has two)."""

    target: NodeTarget
    address: str | None = None
    checks: list[Check] = field(default_factory=list)
    public_key: str | None = None
    family: int | None = None
    """4 or 6: the family of :attr:`address` (None when the node had no address at all)."""

    @property
    def ok(self) -> bool:
        """True when no check failed."""
        return all(c.status != "fail" for c in self.checks)

    def add(self, name: str, status: Status, detail: str, **data: Any) -> Check:
        """Record the outcome of the check *name*."""
        check = Check(name, status, detail, data)
        self.checks.append(check)
        return check

    def skip(self, names: tuple[str, ...], why: str) -> None:
        """Record every check of *names* as skipped, for the reason *why*."""
        for name in names:
            self.add(name, "skip", why)

    def get(self, name: str) -> Check | None:
        """The check called *name*, if it ran (or was skipped)."""
        return next((c for c in self.checks if c.name == name), None)

    def passed(self, name: str) -> bool:
        """True when the check *name* passed."""
        check = self.get(name)
        return check is not None and check.status == "pass"


@dataclass
class CheckReport:
    """The result of ``derptool check``."""

    target: str
    nodes: list[NodeCheck]
    notes: list[str] = field(default_factory=list)
    """Notices for the user (not part of the JSON contract); the CLI prints them on stderr."""
    mesh: list[RelayResult] = field(default_factory=list)
    """Relay probes between two nodes of a region (``--relay`` with several nodes): derper's mesh."""
    started: float = 0.0
    """When the check started (Unix time)."""
    duration_s: float = 0.0
    """How long the whole check took."""

    @property
    def ok(self) -> bool:
        """True when no check of any node failed and every mesh probe relayed."""
        return all(n.ok for n in self.nodes) and all(m.ok for m in self.mesh)

    @property
    def counts(self) -> dict[str, int]:
        """How many checks passed, failed and were skipped, over every node."""
        counts = {"pass": 0, "fail": 0, "skip": 0}
        for n in self.nodes:
            for c in n.checks:
                counts[c.status] += 1
        return counts

    def to_data(self) -> dict[str, Any]:
        """JSON-ready data: ``{"target", "ok", "counts", "nodes": [{..., "checks": [...]}]}``."""
        nodes = []
        for n in self.nodes:
            t = n.target
            nodes.append(
                {
                    "node": t.node,
                    "region_id": t.region_id,
                    "host": t.host,
                    "address": n.address,
                    "stun_port": t.stun_port,
                    "derp_port": t.derp_port,
                    "tls_name": t.tls_name,
                    "family": n.family,
                    "ok": n.ok,
                    "public_key": n.public_key,
                    "checks": [{"name": c.name, "status": c.status, "detail": c.detail, **c.data} for c in n.checks],
                }
            )
        data: dict[str, Any] = {"target": self.target, "ok": self.ok, "counts": self.counts, "nodes": nodes}
        if self.mesh:
            data["mesh"] = [m.to_data() for m in self.mesh]
        return data
