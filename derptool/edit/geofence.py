"""The geofence a policy records, and whether the policy is still in step with the map.

``omit --apply`` writes the selectors it applied as one comment line the editor owns, just before the
policy's ``derpMap``::

    // derptool: omit --keep eu

:func:`check_geofence` reads them back, selects again from the current map (plus the regions the policy
defines) and compares with the regions the policy sets to ``null``:

* ``missing``: regions the selectors select now that the policy does not remove (a region added to the map);
* ``extra``: regions the policy removes that the selectors no longer select; reported only when the line
  records ``--replace`` (without it, ``omit --apply`` leaves other ``null`` entries alone, so they are the
  policy's own).

Pure: bytes and a loaded map in, a :class:`GeofenceCheck` out.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field

from derptool.derpmap import DERPMap, DERPRegion
from derptool.edit.document import Document
from derptool.edit.omit import omit_universe
from derptool.edit.omit_plan import SELECTOR_MARKER, OmitPlan, plan_omit, region_label, selector_args
from derptool.errors import DerptoolError, InputError

MARKER = SELECTOR_MARKER
_LINE = re.compile(r"^[ \t]*//[ \t]*derptool:[ \t]*omit\b(?P<args>.*)$")
_FLAGS = {"--replace": "replace", "--allow-empty": "allow_empty"}
_VALUED = {"--region": "omit", "-r": "omit", "--keep": "keep", "-k": "keep"}


@dataclass(frozen=True)
class Recorded:
    """The selectors a policy records (see the module docstring), and where the line is."""

    omit: list[str] = field(default_factory=list)
    keep: list[str] = field(default_factory=list)
    replace: bool = False
    allow_empty: bool = False
    line: int = 0
    column: int = 0

    def command(self, file: str, *, replace: bool | None = None) -> str:
        """The ``derptool omit`` command line that applies these selectors to *file*."""
        return f"derptool omit {self.args(replace=replace)} --apply {shlex.quote(file)}"

    def args(self, *, replace: bool | None = None) -> str:
        """The options as the comment writes them: ``--keep eu --replace``."""
        again = self.replace if replace is None else replace
        return selector_args(self.omit, self.keep, replace=again, allow_empty=self.allow_empty)


def read_recorded(src: bytes, file: str) -> Recorded | None:
    """The selectors the comment line of *src* records, or ``None`` when it has none.

    Raises :class:`InputError` (``file:line:col``) for a line that does not parse or names an unknown option,
    and for two such lines.
    """
    text = src.decode("utf-8", "replace")
    found: Recorded | None = None
    for number, line in enumerate(text.splitlines(), 1):
        m = _LINE.match(line)
        if m is None:
            continue
        column = line.index("//") + 1
        if found is not None:
            raise InputError(
                f"a second '// {MARKER}' line (the first is line {found.line}); keep one, or run omit --apply again",
                file=file,
                line=number,
                column=column,
            )
        found = _parse(m.group("args"), file, number, column)
    return found


def _parse(args: str, file: str, line: int, column: int) -> Recorded:
    def bad(why: str) -> InputError:
        return InputError(
            f"the '// {MARKER}' line {why}; fix it or run 'derptool omit ... --apply {file}' to write it again",
            file=file,
            line=line,
            column=column,
        )

    try:
        words = shlex.split(args)
    except ValueError as err:
        raise bad(f"cannot be read ({err})") from None
    values: dict[str, list[str]] = {"omit": [], "keep": []}
    flags = {"replace": False, "allow_empty": False}
    i = 0
    while i < len(words):
        word = words[i]
        option, eq, inline = word.partition("=")
        if option in _VALUED:
            if eq:
                value = inline
            elif i + 1 < len(words):
                i += 1
                value = words[i]
            else:
                raise bad(f"ends with {option} and no selector")
            if not value.strip() or value.startswith("-"):
                raise bad(f"has {option} with no selector")
            values[_VALUED[option]].append(value)
        elif word in _FLAGS:
            flags[_FLAGS[word]] = True
        else:
            raise bad(f"has {word!r}, which is not --region SEL, --keep SEL, --replace or --allow-empty")
        i += 1
    if not values["omit"] and not values["keep"]:
        raise bad("records no selector (--region SEL or --keep SEL)")
    return Recorded(values["omit"], values["keep"], flags["replace"], flags["allow_empty"], line, column)


@dataclass(frozen=True)
class GeofenceCheck:
    """The result of :func:`check_geofence`."""

    recorded: Recorded | None
    plan: OmitPlan | None
    missing: list[DERPRegion] = field(default_factory=list)
    """Regions the selectors select now that the policy does not remove."""
    extra: list[int] = field(default_factory=list)
    """Region IDs the policy removes that the selectors no longer select (with ``--replace`` only)."""
    notes: list[str] = field(default_factory=list)

    @property
    def in_step(self) -> bool:
        """True when the policy removes exactly what its selectors select now."""
        return not self.missing and not self.extra


def check_geofence(src: bytes, base: DERPMap, *, file: str = "<policy>") -> GeofenceCheck:
    """Compare the regions *src* removes with what its recorded selectors select from *base* now.

    A policy without the comment line gives ``recorded=None`` (nothing to check); one that sets
    ``OmitDefaultRegions`` is in step by definition. Raises :class:`InputError` for a tampered line
    (:func:`read_recorded`), with the line's place also for a selector that no longer resolves.
    """
    from derptool.derpmap.overlay import overlay_entries
    from derptool.edit._derpmap import derp_members

    recorded = read_recorded(src, file)
    if recorded is None:
        return GeofenceCheck(None, None)
    doc = Document.open(src, file)
    dmap, regions = derp_members(doc)
    entries = overlay_entries(dmap.data() if dmap is not None else None)
    if entries.omit_default:
        return GeofenceCheck(recorded, None, notes=[f"{file} sets OmitDefaultRegions: no Tailscale region is left"])
    try:
        plan = plan_omit(
            omit_universe(base, doc),
            omit=recorded.omit,
            keep=recorded.keep,
            allow_empty=recorded.allow_empty,
        )
    except DerptoolError as err:
        raise InputError(
            f"the recorded selectors ({recorded.args()}) no longer apply: {err.message}",
            file=file,
            line=recorded.line,
            column=recorded.column,
        ) from None
    existing = entries.regions if regions is not None else {}
    removed = {int(k) for k, v in existing.items() if v is None and k.isdigit()}
    defined = {int(k) for k, v in existing.items() if v is not None and k.isdigit()}
    wanted = set(plan.omitted_ids)
    missing = [r for r in plan.omitted if r.region_id not in removed and r.region_id not in defined]
    extra = sorted(removed - wanted) if recorded.replace else []
    return GeofenceCheck(recorded, plan, missing, extra)


def describe_drift(check: GeofenceCheck, file: str) -> list[str]:
    """One line per region out of step, each with the command that fixes it."""
    if check.recorded is None:
        return []
    lines = []
    fix = check.recorded.command(file)
    for r in check.missing:
        lines.append(f"region {region_label(r)}: selected by '{check.recorded.args()}' but not removed; run '{fix}'")
    for rid in check.extra:
        lines.append(
            f"region {rid}: removed, but '{check.recorded.args()}' no longer selects it; run "
            f"'{check.recorded.command(file, replace=True)}'"
        )
    return lines
