"""NAT classification from STUN probe results (pure: no I/O).

One local UDP socket asks several STUN servers "what address do you see me at?". Comparing the answers
tells what the NAT in front of the machine does (RFC 4787 terms):

* every answer equals the local address: **no NAT** (``"none"``);
* every server, at two or more addresses, saw the same public ``ip:port``: **easy NAT**, the mapping is
  *endpoint-independent*; Tailscale can punch holes through it;
* the public ``ip:port`` differs between destinations: **hard NAT**. When two answers come from the same
  server address on different ports the mapping is told apart as *address-dependent* (same mapping for
  one address, whatever the port) or *address-and-port-dependent* (a new mapping per address and port).
  Without such a pair ``mapping`` stays ``None``: it varies by address, and the port was not tested;
* no answer at all: UDP is **blocked**; a single server address answered: **unknown**.

:func:`classify` works on one address family; :func:`summarize` combines IPv4 and IPv6 into the
:class:`NatReport` whose :meth:`NatReport.to_data` is the ``derptool nat --format json`` contract.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from derptool.net.dial import join_host_port, split_host_port

if TYPE_CHECKING:
    from derptool.net.portmap import PortMapProbe

NatType = Literal["none", "easy", "hard", "blocked", "unknown"]
Mapping = Literal["endpoint-independent", "address-dependent", "address-and-port-dependent"]


@dataclass(frozen=True, order=True)
class Endpoint:
    """An IP address and a port."""

    ip: str
    port: int

    @property
    def family(self) -> int:
        """4 or 6."""
        return ipaddress.ip_address(self.ip).version

    def __str__(self) -> str:
        return join_host_port(self.ip, self.port)

    @classmethod
    def parse(cls, text: str) -> Endpoint:
        """Read ``ip:port`` or ``[ipv6]:port``; raises ``ValueError`` for anything else."""
        try:
            host, port = split_host_port(text)
        except ValueError:
            port = None
        if port is None:
            raise ValueError(f"{text!r} is not ip:port")
        ip = ipaddress.ip_address(host)
        if not 0 <= port <= 65535:
            raise ValueError(f"{text!r}: port out of range")
        return cls(str(ip), port)


@dataclass(frozen=True)
class Observation:
    """One STUN probe: where it went and what that server saw (``mapped`` is None without an answer)."""

    server: Endpoint
    mapped: Endpoint | None = None
    local: Endpoint | None = None
    """The local address the probe left from, where known (same socket for every probe of a family)."""
    node: str | None = None
    """Name of the DERP node probed, for display."""
    error: str | None = None


@dataclass(frozen=True)
class NatResult:
    """What one address family's probes say about the NAT."""

    udp: bool
    nat_type: NatType
    mapping: Mapping | None
    local: Endpoint | None
    mapped: tuple[Endpoint, ...]
    port_preserved: bool | None
    explanation: str
    family: int | None = None


@dataclass(frozen=True)
class NatReport:
    """The result of ``derptool nat``: the main verdict plus everything it was drawn from."""

    result: NatResult
    ipv4: NatResult | None
    ipv6: NatResult | None
    observations: tuple[Observation, ...] = field(default=())
    notes: tuple[str, ...] = ()
    """Notices for the user (not part of the JSON contract); the CLI prints them on stderr."""
    port_mapping: PortMapProbe | None = None
    """Which port-mapping protocols the gateway answered (None: not checked)."""
    captive_portal: bool | None = None
    """A captive portal answered instead of a DERP node (None: not checked; checked when UDP is blocked)."""

    def to_data(self) -> dict[str, Any]:
        """JSON-ready data: the contract fields, then ``family``, per-family verdicts ``ipv4``/``ipv6``, ``probes``,
        ``port_mapping`` and ``captive_portal``."""
        r = self.result
        data: dict[str, Any] = _result_data(r)
        data["family"] = r.family
        data["ipv4"] = _result_data(self.ipv4) if self.ipv4 else None
        data["ipv6"] = _result_data(self.ipv6) if self.ipv6 else None
        data["probes"] = [
            {
                "node": o.node,
                "server": str(o.server),
                "mapped": str(o.mapped) if o.mapped else None,
                "error": o.error,
            }
            for o in self.observations
        ]
        data["port_mapping"] = None if self.port_mapping is None else self.port_mapping.to_data()
        data["captive_portal"] = self.captive_portal
        return data


def _result_data(r: NatResult) -> dict[str, Any]:
    return {
        "udp": r.udp,
        "nat_type": r.nat_type,
        "mapping": r.mapping,
        "local": str(r.local) if r.local else None,
        "mapped": [str(m) for m in r.mapped],
        "port_preserved": r.port_preserved,
        "explanation": r.explanation,
    }


def _distinct(items: Sequence[Endpoint]) -> tuple[Endpoint, ...]:
    seen: dict[Endpoint, None] = {}
    for item in items:
        seen.setdefault(item, None)
    return tuple(seen)


def _mapping(answered: Sequence[Observation]) -> tuple[bool, Mapping | None]:
    """(varies, mapping) from answered observations of one socket.

    ``varies`` is True when two destinations saw different public endpoints. ``mapping`` is what can be
    proven: ``None`` when the evidence does not decide it.
    """
    by_server: dict[Endpoint, set[Endpoint]] = {}
    for o in answered:
        assert o.mapped is not None
        by_server.setdefault(o.server, set()).add(o.mapped)
    # Varies when any two answers differ, even two from one server (the NAT changed its mind).
    varies = len(set().union(*by_server.values())) > 1
    server_ips = {s.ip for s in by_server}
    # Two ports on one server address decide whether the port of the destination matters.
    same_ip_pairs: list[bool] = []
    servers = sorted(by_server)
    for i, a in enumerate(servers):
        for b in servers[i + 1 :]:
            if a.ip == b.ip and a.port != b.port:
                same_ip_pairs.append(by_server[a] == by_server[b] and len(by_server[a]) == 1)
    if same_ip_pairs and not all(same_ip_pairs):
        return True, "address-and-port-dependent"
    if not varies:
        if len(server_ips) >= 2:
            return False, "endpoint-independent"
        return False, None
    # Varies, and only across different addresses.
    if same_ip_pairs:
        return True, "address-dependent"
    return True, None


def classify(observations: Sequence[Observation], local: Endpoint | None = None) -> NatResult:
    """Classify the NAT from the probes one socket (one address family) made.

    *local* is the socket's local address; it defaults to the first ``Observation.local`` given.
    """
    if local is None:
        local = next((o.local for o in observations if o.local is not None), None)
    family = observations[0].server.family if observations else (local.family if local else None)
    answered = [o for o in observations if o.mapped is not None]
    mapped = _distinct([o.mapped for o in answered if o.mapped is not None])
    if not answered:
        errors = {o.error for o in observations if o.error and o.error != "no answer"}
        return NatResult(False, "blocked", None, local, (), None, _explain_blocked(len(observations), errors), family)

    port_preserved = None if local is None else all(m.port == local.port for m in mapped)
    varies, mapping = _mapping(answered)
    server_ips = {o.server.ip for o in answered}

    if local is not None and mapped == (local,):
        mapping = "endpoint-independent" if len(server_ips) >= 2 else None
        return NatResult(True, "none", mapping, local, mapped, True, _explain_none(local), family)
    if varies:
        return NatResult(
            True,
            "hard",
            mapping,
            local,
            mapped,
            port_preserved,
            _explain_hard(len(server_ips), mapped, mapping),
            family,
        )
    if mapping == "endpoint-independent":
        return NatResult(
            True, "easy", mapping, local, mapped, port_preserved, _explain_easy(mapped[0], port_preserved), family
        )
    return NatResult(True, "unknown", None, local, mapped, port_preserved, _explain_unknown(mapped[0]), family)


def summarize(observations: Sequence[Observation], locals_: Sequence[Endpoint] = ()) -> NatReport:
    """Classify IPv4 and IPv6 probes separately and pick the main verdict.

    The main verdict is IPv4's when any IPv4 server answered (IPv4 is where NATs live), else IPv6's
    when any IPv6 server answered, else "blocked" for whichever family was probed.
    """
    results: dict[int, NatResult] = {}
    for fam in (4, 6):
        obs = [o for o in observations if o.server.family == fam]
        local = next((lo for lo in locals_ if lo.family == fam), None)
        if obs:
            results[fam] = classify(obs, local)
    v4, v6 = results.get(4), results.get(6)
    if v4 is not None and (v4.udp or v6 is None or not v6.udp):
        main = v4
    elif v6 is not None:
        main = v6
    else:
        main = NatResult(
            False,
            "blocked",
            None,
            None,
            (),
            None,
            "No STUN server could be probed, so nothing is known about UDP or NAT.",
            None,
        )
    return NatReport(main, v4, v6, tuple(observations))


# Plain-language explanations: what the result means for direct (peer-to-peer) connections.


def _explain_blocked(probes: int, errors: set[str]) -> str:
    if errors:
        return (
            f"No STUN probe got through ({'; '.join(sorted(errors))}): this machine has no working route "
            "for this address family. Tailscale falls back to relaying through DERP over HTTPS (TCP 443)."
        )
    return (
        f"None of the {probes} STUN probes got an answer: UDP to the internet looks blocked. "
        "Tailscale will still connect, but every packet is relayed through a DERP server over HTTPS "
        "(TCP 443), which is slower; no direct connections are possible until outbound UDP is allowed."
    )


def _explain_none(local: Endpoint) -> str:
    return (
        f"No NAT: the STUN servers see this machine at its own address {local}. Peers can reach it "
        "directly, so direct connections should work, as long as no firewall drops incoming UDP."
    )


def _explain_easy(public: Endpoint, port_preserved: bool | None) -> str:
    kept = " and keeps the local port" if port_preserved else ""
    return (
        f"Easy NAT: every server saw the same public address {public} (endpoint-independent mapping){kept}. "
        "Tailscale can punch through this kind of NAT, so expect direct connections to most peers; "
        "only a peer behind a hard NAT may still need a DERP relay."
    )


def _explain_hard(addresses: int, mapped: Sequence[Endpoint], mapping: Mapping | None) -> str:
    how = {
        "address-dependent": "a new public port for each destination address",
        "address-and-port-dependent": "a new public port for each destination address and port",
        None: "a different public address or port for each destination address",
    }[mapping]
    untested = (
        " (whether the destination port matters too was not tested: the map has no server with two "
        "STUN ports on one address)"
        if mapping is None
        else ""
    )
    return (
        f"Hard NAT: the router gives {how}{untested}: servers at {addresses} "
        f"addresses saw {len(mapped)} different public endpoints. Peers cannot predict where to send "
        "packets, so direct connections usually fail unless the other side has no NAT or an easy NAT, and traffic goes "
        "through a DERP relay. A port mapping (UPnP, NAT-PMP, PCP) or a forwarded UDP port (41641) helps."
    )


def _explain_unknown(public: Endpoint) -> str:
    return (
        f"Only one server address answered (it saw {public}), so it is not known whether the mapping "
        "changes with the destination. Probe more regions to tell an easy NAT from a hard one."
    )
