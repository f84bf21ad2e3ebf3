"""A policy file's ``derpMap``: the overlay Tailscale merges over its default DERP map.

This is the one reader of a policy's ``derpMap``, shared by every caller that needs it:

* :mod:`derptool.derpmap.sources` (``--map policy.hujson``: the overlay merged over the default map),
* :mod:`derptool.edit` (``omit``/``region add --apply``: the regions a policy defines or removes, and the
  check that an edited ``derpMap`` is still a valid map),
* :mod:`derptool.policy.derpcheck` (``validate``: which regions a policy removes or defines).

Rules, as Tailscale reads a policy: member names match in any letter case (``derpMap``, ``DERPMap``; the
first match wins); a ``null`` or missing ``derpMap`` means no overlay; a region set to ``null`` removes that
region of the default map; ``OmitDefaultRegions: true`` removes all of them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from derptool.derpmap.model import DERPMap
from derptool.derpmap.parse import parse_derpmap
from derptool.errors import MapError

K = TypeVar("K")


def named(data: Mapping[Any, Any], name: str) -> tuple[str, Any] | None:
    """``(name as written, value)`` of the member of *data* named *name* in any letter case.

    Two members that differ only in case raise :class:`MapError`: the file means two things.
    """
    want = name.lower()
    found = [(str(key), value) for key, value in data.items() if str(key).lower() == want]
    if len(found) > 1:
        raise MapError(
            f'keys "{found[0][0]}" and "{found[1][0]}" differ only in case: Go reads both into one field and keeps '
            "the later, so the file says two things; keep one of them"
        )
    return found[0] if found else None


def derpmap_member(policy: Mapping[str, Any]) -> tuple[str, Any] | None:
    """The policy's ``derpMap`` member: ``(name as written, value)``, or ``None`` when there is none."""
    return named(policy, "derpMap")


@dataclass(frozen=True)
class OverlayEntries(Generic[K]):
    """What a ``derpMap`` value does to the default map, read without validating it.

    Keys are as the caller's data has them (strings in a file's data, integers in canonical data).
    """

    omit_default: bool = False
    """``OmitDefaultRegions`` is ``true``: every default region is dropped."""
    regions: dict[K, Any] = field(default_factory=dict)
    """Every entry of ``Regions`` in order (empty when ``Regions`` is missing or not an object)."""

    @property
    def removed(self) -> list[K]:
        """Keys of the regions set to ``null`` (removed from the default map)."""
        return [k for k, v in self.regions.items() if v is None]

    @property
    def defined(self) -> dict[K, Any]:
        """The regions the ``derpMap`` defines itself (every entry that is not ``null``)."""
        return {k: v for k, v in self.regions.items() if v is not None}


def overlay_entries(derp: Any) -> OverlayEntries[Any]:
    """Read a ``derpMap`` value's ``OmitDefaultRegions`` and ``Regions`` (anything else reads as empty)."""
    if not isinstance(derp, Mapping):
        return OverlayEntries()
    flag = named(derp, "OmitDefaultRegions")
    regions = named(derp, "Regions")
    return OverlayEntries(
        omit_default=flag is not None and flag[1] is True,
        regions=dict(regions[1]) if regions is not None and isinstance(regions[1], Mapping) else {},
    )


def policy_overlay(policy: Mapping[str, Any], *, source: str) -> DERPMap | None:
    """The policy's ``derpMap`` as a validated overlay map, or ``None`` when it has none (or it is ``null``).

    *policy* is the decoded policy (or any mapping that holds its ``derpMap`` member). Raises
    :class:`~derptool.errors.MapError` for an invalid map, naming ``SOURCE: <derpMap as written>``.
    """
    try:
        found = derpmap_member(policy)
    except MapError as err:
        raise MapError(f"{source}: {err.message}") from None
    if found is None or found[1] is None:
        return None
    name, value = found
    return parse_derpmap(value, source=f"{source}: {name}")
