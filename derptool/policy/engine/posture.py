"""Device postures applied to rules: which source devices a posture-gated rule lets through.

A rule (``acls[]``, ``grants[]``, ``ssh[]``) with ``srcPosture`` applies only from source devices that
satisfy at least one of the postures it names; a rule without ``srcPosture`` takes the policy's
``defaultSrcPosture`` (an explicit ``"srcPosture": []`` opts out of it). A posture holds when all its
conditions hold (:mod:`derptool.policy.posture`). The control plane decides this per device when it
computes the packet filter, so a gated rule's ``SrcIPs`` list the addresses of the satisfying devices
only: address ranges and subnet routes among the sources have no posture and are left out.

Devices get their attributes from the tailnet file's ``"posture"`` object. An attribute the file does
not give is unknown: compiling treats it as unset (Tailscale's answer for a device without the
attribute), while :class:`PostureGate` with ``unknown_passes=True`` counts the conditions on it as met, so
``explain`` can tell an answer that depends on a missing attribute from a settled one.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Mapping
from typing import Any

from derptool.policy.engine.addresses import IPSet, Range
from derptool.policy.engine.tailnet import Node, Tailnet
from derptool.policy.posture import Condition, PostureSyntaxError, parse_condition


def required_postures(policy: Mapping[str, Any], rule: Mapping[str, Any]) -> tuple[str, ...]:
    """The posture names a rule requires: its ``srcPosture``, else the policy's ``defaultSrcPosture``."""
    own = rule.get("srcPosture")
    names = own if isinstance(own, list) else policy.get("defaultSrcPosture")
    if not isinstance(names, list):
        return ()
    return tuple(n.strip() for n in names if isinstance(n, str))


def _and(values: Iterable[bool | None]) -> bool | None:
    out: bool | None = True
    for v in values:
        if v is False:
            return False
        if v is None:
            out = None
    return out


def _or(values: Iterable[bool | None]) -> bool | None:
    out: bool | None = False
    for v in values:
        if v is True:
            return True
        if v is None:
            out = None
    return out


class PostureGate:
    """The postures of one policy evaluated for the devices of one tailnet (answers cached per device)."""

    def __init__(self, policy: Mapping[str, Any], tailnet: Tailnet, *, unknown_passes: bool = False) -> None:
        self.tailnet = tailnet
        self.unknown_passes = unknown_passes
        self.postures: dict[str, list[Condition]] = {}
        raw = policy.get("postures")
        for name, conditions in raw.items() if isinstance(raw, Mapping) else []:
            parsed = []
            for text in conditions if isinstance(conditions, list) else []:
                try:
                    parsed.append(parse_condition(text) if isinstance(text, str) else None)
                except PostureSyntaxError:
                    parsed.append(None)  # validation reports it; a broken condition is never met
            self.postures[str(name)] = [c if c is not None else _NEVER for c in parsed]
        self._cache: dict[tuple[int, tuple[str, ...]], bool | None] = {}
        self._allowed: dict[tuple[str, ...], list[int]] = {}

    def verdict(self, node: Node, names: tuple[str, ...]) -> bool | None:
        """Whether *node* satisfies one of the postures *names*: True, False, or None (unknown attributes)."""
        if not names:
            return True
        key = (node.index, names)
        if key not in self._cache:
            self._cache[key] = _or(
                _and(c.evaluate(node.posture) for c in self.postures.get(n, [_NEVER])) for n in names
            )
        return self._cache[key]

    def allows(self, node: Node, names: tuple[str, ...]) -> bool:
        """Whether a rule requiring *names* applies from *node* (unknown counts as unset, or as met)."""
        answer = self.verdict(node, names)
        if answer is None:
            answer = self.unknown_passes or _or(
                _and(c.evaluate(_unset(node, c)) for c in self.postures.get(n, [_NEVER])) for n in names
            )
        return bool(answer)

    def unknown_attributes(self, node: Node, names: tuple[str, ...]) -> list[str]:
        """The attributes *node* does not give that the postures *names* read, sorted."""
        known = node.posture or {}
        return sorted(
            {c.attribute for n in names for c in self.postures.get(n, []) if c.attribute and c.attribute not in known}
        )

    def allowed_ips(self, names: tuple[str, ...]) -> list[int]:
        """Sorted addresses of the devices a rule requiring *names* applies from."""
        if names not in self._allowed:
            self._allowed[names] = sorted(ip for n in self.tailnet.nodes if self.allows(n, names) for ip in n.ips)
        return self._allowed[names]

    def narrow(self, items: list[Range], names: tuple[str, ...]) -> list[Range]:
        """Source ranges cut to the addresses of satisfying devices, each on its own, in the given order."""
        if not names:
            return items
        ips = self.allowed_ips(names)
        out: dict[Range, None] = {}
        for lo, hi in items:
            for k in range(bisect.bisect_left(ips, lo), bisect.bisect_right(ips, hi)):
                out.setdefault((ips[k], ips[k]), None)
        return list(out)

    def narrow_set(self, ips: IPSet, names: tuple[str, ...]) -> IPSet:
        """*ips* cut to the addresses of satisfying devices."""
        return IPSet.of(self.narrow(list(ips.ranges), names)) if names else ips


class _Never(Condition):
    """Stands for a condition that does not parse or a posture that is not defined: never met."""

    def evaluate(self, attributes: Mapping[str, Any] | None) -> bool | None:
        """Never met, whatever the attributes."""
        return False


_NEVER = _Never("", "", "==")


def _unset(node: Node, cond: Condition) -> Mapping[str, Any]:
    attrs: dict[str, Any] = dict(node.posture or {})
    attrs.setdefault(cond.attribute, None)
    return attrs


__all__ = ["PostureGate", "required_postures"]
