"""The policy's ``derpMap`` in a :class:`~derptool.edit.document.Document`, for the edits that write it (omit,
region): where it is, and the check that an edited one is still a valid map."""

from __future__ import annotations

from derptool.derpmap import DERPMap
from derptool.derpmap.overlay import policy_overlay
from derptool.edit.document import Document, Member
from derptool.errors import ApplyError


def derp_members(doc: Document) -> tuple[Member | None, Member | None]:
    """``(derpMap, Regions)`` as far as they exist; raises :class:`ApplyError` where an edit cannot write."""
    dmap = doc.get("derpMap")
    if dmap is None:
        return None, None
    if not dmap.is_object:
        if dmap.is_null:
            raise ApplyError(f'{doc.file}: "{dmap.name}" is null; remove that line or make it an object {{}}')
        raise ApplyError(f'{doc.file}: "{dmap.name}" must be an object, it is not')
    regions = dmap.get("Regions")
    if regions is not None and not regions.is_object:
        raise ApplyError(f'{doc.file}: "{dmap.name}"."{regions.name}" must be an object of regions, it is not')
    return dmap, regions


def overlay_of(doc: Document) -> DERPMap | None:
    """The document's ``derpMap`` as a validated overlay map (after :meth:`Document.finish`: the edited one).

    Raises :class:`~derptool.errors.MapError` for an invalid map, which an edit reports instead of writing.
    """
    dmap, _ = derp_members(doc)
    if dmap is None:
        return None
    return policy_overlay({dmap.name: dmap.data()}, source=doc.file)
