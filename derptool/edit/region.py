"""``derptool region add``: a self-hosted DERP region (the plan, from ``--node`` specs), its policy fragment,
and the edit of a policy file.

Applied to a file, the region is added, or replaces the policy's region with the same ID (its comments kept);
``omit_default`` also sets ``OmitDefaultRegions: true``; ``prefer`` sets ``HomeParams.RegionScore`` for the
region, so clients make it their home while it answers and fall back to Tailscale's regions when it does not.
Pure: no I/O.

How a client picks its home region: it multiplies each region's measured latency by that region's score
(1 when none is given) and takes the lowest; it keeps its current home unless another region is at least
10 ms better and better by more than a third. A score of 0.1 makes the region win against any region less
than ten times faster. A region that does not answer has no latency, so it cannot be home: clients then
use the best of Tailscale's regions, which is the fallback.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from derptool import hujson
from derptool.derpmap import (
    CUSTOM_REGION_IDS,
    DERPHomeParams,
    DERPMap,
    DERPNode,
    DERPRegion,
    format_location,
    problems_from_validation,
)
from derptool.derpmap.limits import coordinate_problem
from derptool.edit._derpmap import derp_members, overlay_of
from derptool.edit.document import ApplyResult, Document
from derptool.errors import ApplyError, UsageError


@dataclass(frozen=True)
class RegionPlan:
    """A self-hosted region to add, whether it replaces Tailscale's regions, and notes for the user."""

    region: DERPRegion
    omit_default: bool = False
    notes: list[str] = field(default_factory=list)
    prefer: float | None = None
    """``HomeParams.RegionScore`` for the region (in (0, 1): preferred as home), or None."""


DEFAULT_PREFER_SCORE = 0.1
"""``--prefer`` without a value: the region's latency counts a tenth, so it wins unless ten times slower."""


_NODE_OPTIONS = {
    "name": "Name",
    "ipv4": "IPv4",
    "ipv6": "IPv6",
    "stun-port": "STUNPort",
    "derp-port": "DERPPort",
    "cert-name": "CertName",
    "stun-only": "STUNOnly",
    "insecure": "InsecureForTests",
    "can-port80": "CanPort80",
}
_NODE_FLAGS = {"stun-only", "insecure", "can-port80"}
_NODE_INTS = {"stun-port", "derp-port"}
_OPTION_OF_FIELD = {
    "RegionID": "--id",
    "RegionCode": "--code",
    "RegionName": "--name",
    "Latitude": "--lat",
    "Longitude": "--lon",
}


def node_name(region_id: int, index: int) -> str:
    """Default node names: ``900a``, ``900b``, ... ``900z``, ``900aa``, ..."""
    letters = ""
    n = index + 1
    while n:
        n, rem = divmod(n - 1, 26)
        letters = chr(ord("a") + rem) + letters
    return f"{region_id}{letters}"


def parse_node_spec(text: str, region_id: int, index: int) -> dict[str, Any]:
    """Turn ``HOST[,ipv4=A][,ipv6=A][,stun-port=N][,derp-port=N][,stun-only][,cert-name=N][,insecure][,name=N]``
    into tailcfg node data (not yet validated). Raises :class:`UsageError` for unknown or malformed options."""
    host, *opts = [p.strip() for p in text.split(",")]
    where = f"--node {text!r}"
    if not host or "=" in host:
        raise UsageError(f"{where}: start with the server's host name, e.g. --node derp1.example.com,ipv4=203.0.113.5")
    node: dict[str, Any] = {"Name": node_name(region_id, index), "RegionID": region_id, "HostName": host}
    for opt in opts:
        key, eq, value = opt.partition("=")
        key = key.strip().lower()
        if key not in _NODE_OPTIONS:
            known = ", ".join(f"{k}=" if k not in _NODE_FLAGS else k for k in _NODE_OPTIONS)
            raise UsageError(f"{where}: unknown option {key!r} (known: {known})")
        if key in _NODE_FLAGS:
            if eq and value.strip().lower() not in ("true", "1", "yes"):
                raise UsageError(f"{where}: {key} is a flag and takes no value")
            node[_NODE_OPTIONS[key]] = True
            continue
        if not eq or not value.strip():
            raise UsageError(f"{where}: {key} needs a value ({key}=...)")
        value = value.strip()
        if key in _NODE_INTS:
            try:
                node[_NODE_OPTIONS[key]] = int(value, 10)
            except ValueError:
                raise UsageError(f"{where}: {key}={value!r} is not a port number") from None
        else:
            node[_NODE_OPTIONS[key]] = value
    return node


def plan_region(
    region_id: int,
    code: str,
    name: str | None = None,
    nodes: list[str] | None = None,
    *,
    latitude: float | None = None,
    longitude: float | None = None,
    omit_default: bool = False,
    prefer: float | None = None,
) -> RegionPlan:
    """Build and validate a self-hosted region from command-line style values.

    Every problem raises :class:`UsageError` naming the option to fix; the notes warn about IDs outside the
    custom range 900-999 and about ``OmitDefaultRegions``.
    """
    specs = list(nodes or [])
    if not specs:
        raise UsageError("a region needs at least one server: --node HOST[,ipv4=A][,ipv6=A]...")
    node_data = [parse_node_spec(s, region_id, i) for i, s in enumerate(specs)]
    for spec, nd in zip(specs, node_data, strict=True):
        try:
            DERPNode.model_validate(nd)
        except ValidationError as err:
            raise UsageError(f"--node {spec!r}: {problems_from_validation(err)[0].message}") from None
    seen: dict[str, str] = {}
    for spec, nd in zip(specs, node_data, strict=True):
        if nd["Name"] in seen:
            raise UsageError(
                f"--node {spec!r}: node name {nd['Name']!r} is also used by --node {seen[nd['Name']]!r}; "
                "give each node a different name="
            )
        seen[nd["Name"]] = spec
    data: dict[str, Any] = {"RegionID": region_id, "RegionCode": code, "RegionName": name or code, "Nodes": node_data}
    for option, value, limit, key in (("--lat", latitude, 90.0, "Latitude"), ("--lon", longitude, 180.0, "Longitude")):
        if value is None:
            continue
        why = coordinate_problem(key, float(value), limit)
        if why:
            raise UsageError(f"{option}: {why}")
        data[key] = float(value)
    try:
        region = DERPRegion.model_validate(data)
    except ValidationError as err:
        first = problems_from_validation(err)[0]
        option = _OPTION_OF_FIELD.get(str(first.path[0]) if first.path else "", "")
        where = option or format_location(first.path) or "region"
        raise UsageError(f"{where}: {first.message}") from None
    notes = []
    if region_id not in CUSTOM_REGION_IDS:
        notes.append(
            f"region ID {region_id} is outside 900-999, the IDs Tailscale reserves for custom regions; "
            "it replaces any default region with that ID"
        )
    if omit_default:
        notes.append(
            "--omit-default sets OmitDefaultRegions: Tailscale's DERP regions are dropped and every "
            "connection that needs a relay then depends on your own servers"
        )
    if prefer is not None:
        check_prefer_score(prefer)
        if omit_default:
            notes.append("--prefer with --omit-default: there are no Tailscale regions left to fall back to")
    return RegionPlan(region, omit_default, notes, prefer)


def check_prefer_score(score: float) -> None:
    """Raise :class:`UsageError` unless *score* is a RegionScore that makes a region preferred: 0 < score < 1."""
    if not math.isfinite(score) or score <= 0:
        raise UsageError(
            f"--prefer-score {score:g}: a RegionScore must be above 0 (Tailscale ignores 0 and negative scores)"
        )
    if score >= 1:
        raise UsageError(
            f"--prefer-score {score:g}: a score of 1 or more does not prefer the region (1 is neutral, "
            "more penalizes it); use a score below 1, such as 0.1"
        )


PREFER_COMMENT = (
    "HomeParams.RegionScore: latency x score decides the home region; below 1 prefers the region, "
    "Tailscale's regions stay as fallback when it does not answer"
)


def region_derpmap(plan: RegionPlan) -> DERPMap:
    """The plan as a (policy overlay) DERP map."""
    home = None if plan.prefer is None else DERPHomeParams(RegionScore={plan.region.region_id: plan.prefer})
    return DERPMap(HomeParams=home, Regions={plan.region.region_id: plan.region}, omitDefaultRegions=plan.omit_default)


def region_fragment(plan: RegionPlan) -> dict[str, Any]:
    """The policy fragment as data: ``{"derpMap": {"OmitDefaultRegions"?: true, "Regions": {"900": {...}}}}``."""
    derp: dict[str, Any] = {}
    if plan.omit_default:
        derp["OmitDefaultRegions"] = True
    if plan.prefer is not None:
        derp["HomeParams"] = {"RegionScore": {str(plan.region.region_id): plan.prefer}}
    derp["Regions"] = {str(plan.region.region_id): plan.region.to_data()}
    return {"derpMap": derp}


def render_region_json(plan: RegionPlan) -> str:
    """The region fragment as plain JSON text (newline-terminated)."""
    return json.dumps(region_fragment(plan), indent=2) + "\n"


def node_comment(node_data: dict[str, Any]) -> str:
    """What a client does with a node: ``DERP over HTTPS on 443, STUN on UDP 3478``."""
    node = DERPNode.model_validate(node_data)
    parts = []
    if node.stun_only:
        parts.append("STUN only (no relay)")
    else:
        parts.append(f"DERP over HTTPS on TCP {node.effective_derp_port}")
    stun = node.effective_stun_port
    parts.append(f"STUN on UDP {stun}" if stun is not None else "STUN disabled")
    if node.cert_name:
        parts.append(f"certificate name {node.cert_name}")
    if node.insecure_for_tests:
        parts.append("TLS NOT verified (tests only)")
    return ", ".join(parts)


def region_value_hujson(plan: RegionPlan, indent: str = "\t", depth: int = 0) -> str:
    """The region object as HuJSON text with a comment per node (lines after the first indented at *depth*)."""
    data = plan.region.to_data()
    pad = indent * depth
    lines = ["{"]
    for key, value in data.items():
        if key == "Nodes":
            continue
        lines.append(f"{pad}{indent}{json.dumps(key)}: {json.dumps(value, ensure_ascii=False)},")
    lines.append(f'{pad}{indent}"Nodes": [')
    for node in data["Nodes"]:
        lines.append(f"{pad}{indent * 2}// {node['Name']}: {node_comment(node)}")
        lines.append(f"{pad}{indent * 2}{{")
        for key, value in node.items():
            lines.append(f"{pad}{indent * 3}{json.dumps(key)}: {json.dumps(value, ensure_ascii=False)},")
        lines.append(f"{pad}{indent * 2}}},")
    lines.append(f"{pad}{indent}],")
    lines.append(f"{pad}}}")
    return "\n".join(lines)


def region_title(region: DERPRegion) -> str:
    """``myc (region 900): My City, self-hosted``."""
    kind = "self-hosted" if region.is_custom else "replaces the default region with this ID"
    return f"{region.region_code} (region {region.region_id}): {region.region_name}, {kind}"


OMIT_DEFAULT_COMMENT = (
    "OmitDefaultRegions: clients use only the regions of this derpMap, never Tailscale's; "
    "when your servers are down, connections that need a relay fail"
)


def render_region_hujson(plan: RegionPlan, *, header: list[str] | None = None) -> str:
    """The region fragment as HuJSON with comments, in ``hujson.Format`` layout."""
    lines = [f"// {h}" if h else "//" for h in header or []]
    lines += ["{", '\t"derpMap": {']
    if plan.omit_default:
        lines += [f"\t\t// {OMIT_DEFAULT_COMMENT}", '\t\t"OmitDefaultRegions": true,', ""]
    if plan.prefer is not None:
        lines += [
            f"\t\t// {PREFER_COMMENT}",
            f'\t\t"HomeParams": {{"RegionScore": {{"{plan.region.region_id}": {plan.prefer!r}}}}},',
            "",
        ]
    lines += ['\t\t"Regions": {', f"\t\t\t// {region_title(plan.region)}"]
    lines.append(f'\t\t\t"{plan.region.region_id}": {region_value_hujson(plan, depth=3)},')
    lines += ["\t\t},", "\t},", "}"]
    return _formatted("\n".join(lines) + "\n")


def _formatted(text: str) -> str:
    """*text* through ``hujson.format`` (value alignment as Tailscale's formatter does it), when available."""
    fmt = getattr(hujson, "format", None)
    if fmt is None:
        return text
    out: bytes = fmt(text.encode())
    return out.decode()


# -- applying to a policy file ----------------------------------------------------------------------


def apply_region(src: bytes | Document, plan: RegionPlan, *, file: str = "<policy>") -> ApplyResult:
    """Add (or replace) the plan's region in the policy's ``derpMap``; set ``OmitDefaultRegions`` if asked.

    *src* is the policy's bytes or the :class:`Document` already opened on them (then *file* is its own).
    """
    doc = src if isinstance(src, Document) else Document.open(src, file)
    file = doc.file
    dmap, regions = derp_members(doc)
    region = plan.region
    rid = str(region.region_id)
    unit = doc.indent
    notes: list[str] = []
    done: list[str] = []
    if dmap is None:
        members: list[tuple[str, str, str | None]] = []
        lead: dict[str, list[str]] = {}
        if plan.omit_default:
            members.append(("OmitDefaultRegions", "true", None))
            lead["OmitDefaultRegions"] = [OMIT_DEFAULT_COMMENT]
        if plan.prefer is not None:
            members.append(("HomeParams", _home_text(rid, plan.prefer), None))
            lead["HomeParams"] = [PREFER_COMMENT]
        region_text = doc.object_text(
            [(rid, region_value_hujson(plan, unit, 2), None)], 2, lead={rid: [region_title(region)]}
        )
        members.append(("Regions", region_text, None))
        doc.add(
            ("derpMap",),
            doc.object_text(members, 1, lead=lead),
            lead=["DERP relays: self-hosted regions (derptool region add)."],
        )
        done.append(f"derpMap created with region {rid}")
        if plan.prefer is not None:
            done.append(f"HomeParams.RegionScore {rid} = {plan.prefer:g}")
    else:
        if regions is None:
            region_text = doc.object_text(
                [(rid, region_value_hujson(plan, unit, 2), None)], 2, lead={rid: [region_title(region)]}
            )
            doc.add((*dmap.path, "Regions"), region_text)
            done.append(f"region {rid} added")
        else:
            current = regions.get(rid)
            if current is None:
                doc.add((*regions.path, rid), region_value_hujson(plan, unit, 3), lead=[region_title(region)])
                done.append(f"region {rid} added")
            elif _same_region(current.data(), region.to_data()):
                pass
            else:
                doc.add(current.path, region_value_hujson(plan, unit, 3))
                was = "a null entry" if current.data() is None else "the existing definition"
                done.append(f"region {rid} replaced ({was})")
        if plan.omit_default:
            flag = dmap.get("OmitDefaultRegions")
            if flag is None:
                doc.add((*dmap.path, "OmitDefaultRegions"), "true", lead=[OMIT_DEFAULT_COMMENT])
                done.append("OmitDefaultRegions set")
            elif flag.data() is not True:
                doc.add(flag.path, "true")
                done.append("OmitDefaultRegions set")
            nulls = [k for k, v in (regions.data() or {}).items() if v is None] if regions is not None else []
            if nulls:
                notes.append(
                    f"with OmitDefaultRegions the null entries ({', '.join(nulls)}) have no effect; you may delete them"
                )
        if plan.prefer is not None:
            _apply_prefer(doc, dmap, rid, plan.prefer, done)
    summary = f"{file}: derpMap: " + "; ".join(done)
    result = doc.finish(
        summary=summary, notes=notes, unchanged=f"{file}: already up to date (region {rid} is there as given)"
    )
    if result.changed:
        overlay_of(doc)  # the edited derpMap must still be a valid map (a failure is reported, never written)
    return result


def _home_text(rid: str, score: float) -> str:
    return f'{{"RegionScore": {{"{rid}": {score!r}}}}}'


def _apply_prefer(doc: Document, dmap: Any, rid: str, score: float, done: list[str]) -> None:
    """Set ``HomeParams.RegionScore[rid]`` to *score*, creating what is missing; other scores are kept."""
    home = dmap.get("HomeParams")
    if home is None or home.is_null:
        doc.add((*dmap.path, "HomeParams"), _home_text(rid, score), lead=[] if home else [PREFER_COMMENT])
        done.append(f"HomeParams.RegionScore {rid} = {score:g}")
        return
    if not home.is_object:
        raise ApplyError(f'{doc.file}: "{dmap.name}"."{home.name}" must be an object, it is not')
    scores = home.get("RegionScore")
    if scores is None or scores.is_null:
        doc.add((*home.path, "RegionScore"), f'{{"{rid}": {score!r}}}')
        done.append(f"HomeParams.RegionScore {rid} = {score:g}")
        return
    if not scores.is_object:
        raise ApplyError(f'{doc.file}: "{home.name}"."{scores.name}" must be an object, it is not')
    current = scores.get(rid)
    if current is not None and current.data() == score:
        return
    doc.add(current.path if current is not None else (*scores.path, rid), repr(score))
    done.append(f"HomeParams.RegionScore {rid} = {score:g}")


def _same_region(current: Any, wanted: dict[str, Any]) -> bool:
    if not isinstance(current, dict):
        return False
    try:
        return DERPRegion.model_validate(current).to_data() == wanted
    except ValidationError:
        return False
