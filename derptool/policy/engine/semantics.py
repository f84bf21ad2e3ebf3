"""Where control planes differ in what they make of one policy: one profile per control plane.

The compiler consults a :class:`Semantics` for every point where Tailscale and headscale disagree, so
the differences live here and nowhere else. ``derptool policy compile --control headscale`` picks
:data:`HEADSCALE`; the default is :data:`TAILSCALE`. headscale's behaviour is that of its policy v2
engine at v0.27.1 (``hscontrol/policy/v2``), read from its code:

===========================  ==================================  ==========================================
point                        Tailscale                           headscale
===========================  ==================================  ==========================================
rule shape                   one rule per source set and         one rule per ACL: sources merged into the
                             protocol, merged across ACLs;       fewest prefixes, every destination in it;
                             node addresses listed one by one    ``/32`` and ``/128`` written out
default ``IPProto``          absent (TCP, UDP, ICMPv4, ICMPv6)   ``[6, 17]`` (TCP and UDP only)
``proto: "icmp"``            ``[1]``                             ``[1, 58]`` (ICMPv4 and ICMPv6)
``*``                        the tailnet's ranges and routes     ``0.0.0.0/0`` and ``::/0``
                             (source), ``*`` (destination)
a host or address naming     that address                        every address of that node
a node's address
``"alice@"``                 no such user                        user ``alice`` (the ``@`` is dropped)
which nodes receive a rule   addresses, approved subnet routes,  addresses and every *advertised* route:
                             exit nodes for public destinations  an exit node receives every rule
SSH ``check``                hold and delegate to the control    accept, with ``checkPeriod`` as the session
                             server's check URL                  duration; no ``root: ""`` unless nonroot
peers                        a rule either way between them      the same, but with ``autogroup:self`` in any
                             (addresses, routes, exit nodes)     ACL or SSH rule each node's own rules decide
                                                                 what it sees, one direction at a time
``grants``                   compiled                            not supported (refused)
no ``acls`` and no grants    allow all (tailnet ranges)          allow all: ``SrcIPs ["*"]``, ``IP "*"``
===========================  ==================================  ==========================================
"""

from __future__ import annotations

from dataclasses import dataclass

from derptool.errors import UsageError


@dataclass(frozen=True)
class Semantics:
    """How one control plane compiles a policy (see the module docstring's table)."""

    name: str
    one_rule_per_acl: bool
    """Each ACL becomes exactly one rule with merged sources (headscale), instead of rules merged across
    ACLs by source set and protocol (Tailscale)."""
    default_protocols: tuple[int, ...] | None
    """``IPProto`` of a rule without ``proto``; None leaves it out (the client's default set)."""
    icmp_protocols: tuple[int, ...]
    """``IPProto`` of ``proto: "icmp"``."""
    wildcard_prefixes: tuple[str, ...] | None
    """What ``*`` stands for, when it is written as prefixes rather than the tailnet's ranges."""
    host_means_node: bool
    """A host alias or address that is one node's address stands for all that node's addresses."""
    user_at_suffix: bool
    """``"alice@"`` names the user called ``alice``."""
    advertised_routes_receive: bool
    """A node receives the rules whose destinations overlap any route it advertises, approved or not."""
    ssh_check_holds: bool
    """SSH ``check`` holds the session and delegates to the control server (else: accept with a
    session duration)."""
    supports_grants: bool
    allow_all_literal: bool
    """The allow-all rule of a policy without ``acls`` is written with ``*`` (else with the tailnet's
    ranges)."""


TAILSCALE = Semantics(
    name="tailscale",
    one_rule_per_acl=False,
    default_protocols=None,
    icmp_protocols=(1,),
    wildcard_prefixes=None,
    host_means_node=False,
    user_at_suffix=False,
    advertised_routes_receive=False,
    ssh_check_holds=True,
    supports_grants=True,
    allow_all_literal=False,
)
HEADSCALE = Semantics(
    name="headscale",
    one_rule_per_acl=True,
    default_protocols=(6, 17),
    icmp_protocols=(1, 58),
    wildcard_prefixes=("0.0.0.0/0", "::/0"),
    host_means_node=True,
    user_at_suffix=True,
    advertised_routes_receive=True,
    ssh_check_holds=False,
    supports_grants=False,
    allow_all_literal=True,
)
CONTROLS = {s.name: s for s in (TAILSCALE, HEADSCALE)}


def semantics_for(control: str) -> Semantics:
    """The profile of the control plane called *control* (``tailscale`` or ``headscale``)."""
    try:
        return CONTROLS[control]
    except KeyError:
        raise UsageError(f"--control {control!r}: give one of {', '.join(CONTROLS)}") from None


__all__ = ["CONTROLS", "HEADSCALE", "TAILSCALE", "Semantics", "semantics_for"]
