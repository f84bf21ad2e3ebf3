"""What a policy change does to every device: access, SSH, egress, capabilities, DERP regions and tests.

:func:`diff_policies` takes two compiled policies of the same tailnet (through :class:`~.view.PolicyView`,
the narrow interface to the engine) and returns a :class:`PolicyDiff`: rows gained and lost per kind,
exactly one per device pair (and protocol and port range), ready for ``derptool policy diff --format json``.
:meth:`PolicyDiff.origin` finds the rule behind a row for annotations.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from derptool._types import JsonPath
from derptool.derpmap import DERPMap
from derptool.policy.engine.compile import Compiled
from derptool.policy.engine.diff.access import AccessDiff, AccessRow, diff_access
from derptool.policy.engine.diff.checks import TestChange, diff_tests
from derptool.policy.engine.diff.derp import DerpDiff, RegionRow, diff_derp
from derptool.policy.engine.diff.grants import CapRow, EgressRow, diff_caps, diff_egress
from derptool.policy.engine.diff.ssh import SSHRow, diff_ssh, ssh_origin
from derptool.policy.engine.diff.view import EngineView, Keys, PolicyView
from derptool.policy.engine.tailnet import TailnetError

KINDS = ("gained", "lost", "ssh", "egress", "capabilities", "derp", "tests")
"""What ``--fail-on`` may name: access gained, access lost, and any change of the other kinds."""


@dataclass
class PolicyDiff:
    """Everything a policy change does, kind by kind (rows sorted)."""

    access: AccessDiff
    ssh_gained: list[SSHRow]
    ssh_lost: list[SSHRow]
    egress_gained: list[EgressRow]
    egress_lost: list[EgressRow]
    caps_gained: list[CapRow]
    caps_lost: list[CapRow]
    derp: DerpDiff
    newly_failing: list[TestChange]
    newly_passing: list[TestChange]
    views: tuple[PolicyView, PolicyView] | None = field(default=None, repr=False)

    @property
    def present(self) -> set[str]:
        """The kinds of change present (see :data:`KINDS`)."""
        found = {
            "gained": bool(self.access.gained),
            "lost": bool(self.access.lost),
            "ssh": bool(self.ssh_gained or self.ssh_lost),
            "egress": bool(self.egress_gained or self.egress_lost),
            "capabilities": bool(self.caps_gained or self.caps_lost),
            "derp": self.derp.changes,
            "tests": bool(self.newly_failing),
        }
        return {k for k, v in found.items() if v}

    @property
    def empty(self) -> bool:
        """No change at all (tests that start passing count as a change)."""
        return not self.present and not self.newly_passing

    def to_json(self) -> dict[str, Any]:
        """The ``derptool policy diff --format json`` document."""
        return {
            "access": {
                "gained": [r.to_json() for r in self.access.gained],
                "lost": [r.to_json() for r in self.access.lost],
            },
            "ssh": {"gained": [r.to_json() for r in self.ssh_gained], "lost": [r.to_json() for r in self.ssh_lost]},
            "egress": {
                "gained": [r.to_json() for r in self.egress_gained],
                "lost": [r.to_json() for r in self.egress_lost],
            },
            "capabilities": {
                "gained": [r.to_json() for r in self.caps_gained],
                "lost": [r.to_json() for r in self.caps_lost],
            },
            "derp": self.derp.to_json(),
            "tests": {
                "newly_failing": [t.to_json() for t in self.newly_failing],
                "newly_passing": [t.to_json() for t in self.newly_passing],
            },
        }

    def origin(self, row: AccessRow | SSHRow, *, gained: bool) -> JsonPath | None:
        """The rule (``(section, index)``) behind a row: in the new policy for gained rows, else the old."""
        if isinstance(row, AccessRow):
            return self.access.origin(row, gained=gained)
        if self.views is None:
            return None
        return ssh_origin(self.views[1] if gained else self.views[0], row)


def diff_views(
    old: PolicyView,
    new: PolicyView,
    old_policy: Mapping[str, Any],
    new_policy: Mapping[str, Any],
    *,
    base_map: Callable[[], DERPMap] | None = None,
    maps: bool = False,
    derp: tuple[Mapping[str, Any], Mapping[str, Any]] | None = None,
) -> PolicyDiff:
    """The diff of two compiled policies given as views.

    *base_map* gives the default DERP map, loaded when a policy has a ``derpMap`` (or always with *maps*, to
    keep both maps for a latency assessment); *derp* the two policies whose ``derpMap`` to compare (default:
    *old_policy* and *new_policy*).
    """
    names_old = [n.name for n in old.tailnet.nodes]
    if names_old != [n.name for n in new.tailnet.nodes]:
        raise TailnetError("the two policies were compiled for different tailnets")
    ssh = diff_ssh(old, new)
    egress = diff_egress(old, new)
    caps = diff_caps(old, new)
    failing, passing = diff_tests(old, new, old_policy, new_policy)
    old_derp, new_derp = derp if derp is not None else (old_policy, new_policy)
    regions = DerpDiff() if base_map is None else diff_derp(old_derp, new_derp, base_map, always=maps)
    return PolicyDiff(diff_access(old, new), *ssh, *egress, *caps, regions, failing, passing, views=(old, new))


def diff_policies(
    old: Compiled,
    new: Compiled,
    *,
    base_map: Callable[[], DERPMap] | None = None,
    maps: bool = False,
    raw: tuple[Mapping[str, Any], Mapping[str, Any]] | None = None,
) -> PolicyDiff:
    """What changes from *old* to *new*, two policies compiled by the engine for the same tailnet.

    *raw* gives the two policies as decoded from their files, for their ``derpMap`` (whose ``null`` regions
    the engine's canonical data drops); without it the compiled data is read.
    """
    old_data, new_data = raw if raw is not None else (old.policy, new.policy)
    keys = Keys()
    return diff_views(
        EngineView(old, keys),
        EngineView(new, keys),
        old.policy,
        new.policy,
        base_map=base_map,
        maps=maps,
        derp=(old_data, new_data),
    )


__all__ = [
    "KINDS",
    "AccessRow",
    "CapRow",
    "DerpDiff",
    "EgressRow",
    "PolicyDiff",
    "PolicyView",
    "RegionRow",
    "SSHRow",
    "TestChange",
    "diff_policies",
    "diff_views",
]
