"""Policy-file fragments as data, and their HuJSON rendering with helpful comments.

Nothing here does I/O: callers pass a map they loaded and print or write what comes back.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from derptool.derpmap import DERPMap, DERPRegion
from derptool.errors import UsageError
from derptool.geo import geo_for, resolve


@dataclass(frozen=True)
class OmitPlan:
    """Which regions of a map an ``omit`` removes, and why."""

    omitted: list[DERPRegion]
    kept: list[DERPRegion]
    notes: list[str] = field(default_factory=list)

    @property
    def omitted_ids(self) -> list[int]:
        """IDs of the removed regions, sorted."""
        return [r.region_id for r in self.omitted]


def plan_omit(dmap: DERPMap, *, omit: list[str] | None = None, keep: list[str] | None = None,
              allow_empty: bool = False) -> OmitPlan:
    """Decide which regions to remove: those matching *omit*, plus (with *keep*) every region not kept.

    Refuses (:class:`UsageError`) a result that removes every region unless *allow_empty*, because clients
    left without any DERP region cannot relay at all.
    """
    omit = list(omit or [])
    keep = list(keep or [])
    if not omit and not keep:
        raise UsageError("nothing to omit: give --region SEL (regions to remove) or --keep SEL (regions to keep)")
    notes: list[str] = []
    removed: set[int] = set()
    if omit:
        res = resolve(omit, dmap)
        removed.update(res.region_ids)
        notes.extend(res.notes)
    if keep:
        res = resolve(keep, dmap)
        notes.extend(res.notes)
        kept_ids = set(res.region_ids)
        removed.update(r.region_id for r in dmap.region_list() if r.region_id not in kept_ids)
    regions = dmap.region_list()
    omitted = [r for r in regions if r.region_id in removed]
    kept = [r for r in regions if r.region_id not in removed]
    if not kept and not allow_empty:
        raise UsageError(
            f"this would remove all {len(regions)} regions of the map, leaving clients no DERP relay at all "
            "(no connection where a direct one fails); pass --allow-empty if that is really what you want"
        )
    return OmitPlan(omitted, kept, notes)


def region_label(region: DERPRegion) -> str:
    """``nyc (region 1): New York City, United States``; country unknown for regions not in the table."""
    geo = geo_for(region)
    city = geo.city or region.region_name
    country = geo.country_name or "country unknown"
    return f"{region.region_code} (region {region.region_id}): {city}, {country}"


def omit_fragment(plan: OmitPlan) -> dict[str, Any]:
    """The policy fragment as data: ``{"derpMap": {"Regions": {"<id>": None, ...}}}``."""
    return {"derpMap": {"Regions": {str(r.region_id): None for r in plan.omitted}}}


def render_omit_json(plan: OmitPlan) -> str:
    """The fragment as plain JSON text (newline-terminated)."""
    return json.dumps(omit_fragment(plan), indent=2) + "\n"


def render_omit_hujson(plan: OmitPlan, *, header: list[str] | None = None) -> str:
    """The fragment as HuJSON in ``hujson.Format`` layout, a comment naming each removed region."""
    lines = [f"// {h}" if h else "//" for h in header or []]
    regions = plan.omitted
    width = max((len(str(r.region_id)) for r in regions), default=0)
    lines.append("{")
    lines.append('\t"derpMap": {')
    if regions:
        lines.append('\t\t"Regions": {')
        for r in regions:
            key = f'"{r.region_id}":'
            pad = " " * (width - len(str(r.region_id)) + 1)
            lines.append(f"\t\t\t{key}{pad}null, // {region_label(r)}")
        lines.append("\t\t},")
    else:
        lines.append('\t\t"Regions": {},')
    lines.append("\t},")
    lines.append("}")
    return "\n".join(lines) + "\n"


# -- headscale DERP YAML, self-hosted regions (helper-apply) ---------------------------------------


def headscale_data(dmap: DERPMap) -> dict[str, Any]:
    """*dmap* as the data headscale's ``derp.paths`` YAML holds: tailcfg names lower-cased, integer region keys.

    ``None`` regions stay ``None`` (``1: null`` removes region 1 from the maps loaded before the file).
    """
    data = dmap.to_data()
    out: dict[str, Any] = {
        "regions": {int(k): None if r is None else _lower_keys(r) for k, r in data["Regions"].items()},
    }
    if data.get("omitDefaultRegions"):
        out["omitdefaultregions"] = True
    home = data.get("HomeParams")
    if home:
        out["homeparams"] = {"regionscore": {int(k): v for k, v in home.get("RegionScore", {}).items()}}
    return out


def _lower_keys(value: Any) -> Any:
    if isinstance(value, dict):
        return {k.lower(): _lower_keys(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_lower_keys(v) for v in value]
    return value


def _yaml_scalar(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    return json.dumps(str(value), ensure_ascii=False)  # a JSON string is a YAML double-quoted scalar


def _yaml_lines(value: Any, indent: int, comments: dict[Any, str]) -> list[str]:
    """Block-style YAML lines for dicts/lists of scalars; *comments* annotate top-level keys of *value*."""
    pad = "  " * indent
    out: list[str] = []
    if isinstance(value, dict):
        for key, item in value.items():
            note = f"  # {comments[key]}" if key in comments else ""
            if isinstance(item, dict | list) and item:
                out.append(f"{pad}{key}:{note}")
                out.extend(_yaml_lines(item, indent + 1, {}))
            elif isinstance(item, dict | list):
                out.append(f"{pad}{key}: {'{}' if isinstance(item, dict) else '[]'}{note}")
            else:
                out.append(f"{pad}{key}: {_yaml_scalar(item)}{note}")
        return out
    for item in value:
        if isinstance(item, dict | list) and item:
            sub = _yaml_lines(item, indent + 1, {})  # first line starts with pad + 2 spaces: put "- " there
            out.append(f"{pad}- {sub[0][len(pad) + 2:]}")
            out.extend(sub[1:])
        elif isinstance(item, dict | list):
            out.append(f"{pad}- {'{}' if isinstance(item, dict) else '[]'}")
        else:
            out.append(f"{pad}- {_yaml_scalar(item)}")
    return out


def render_headscale_yaml(dmap: DERPMap, *, header: list[str] | None = None,
                          labels: dict[int, str] | None = None) -> str:
    """*dmap* as a headscale DERP map YAML file (for ``derp.paths``), with a comment per labelled region."""
    data = headscale_data(dmap)
    lines = [f"# {h}" if h else "#" for h in header or []]
    regions = data.pop("regions")
    if regions:
        lines.append("regions:")
        lines.extend(_yaml_lines(regions, 1, {k: v for k, v in (labels or {}).items() if k in regions}))
    else:
        lines.append("regions: {}")
    if data.pop("omitdefaultregions", False):
        lines.append("# headscale ignores omitdefaultregions: set derp.urls: [] in its config to drop Tailscale's map")
        lines.append("omitdefaultregions: true")
    lines.extend(_yaml_lines(data, 0, {}))
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class RegionPlan:
    """A self-hosted region to add, whether it replaces Tailscale's regions, and notes for the user."""

    region: DERPRegion
    omit_default: bool = False
    notes: list[str] = field(default_factory=list)


_NODE_OPTIONS = {
    "name": "Name", "ipv4": "IPv4", "ipv6": "IPv6", "stun-port": "STUNPort", "derp-port": "DERPPort",
    "cert-name": "CertName", "stun-only": "STUNOnly", "insecure": "InsecureForTests", "can-port80": "CanPort80",
}
_NODE_FLAGS = {"stun-only", "insecure", "can-port80"}
_NODE_INTS = {"stun-port", "derp-port"}
_OPTION_OF_FIELD = {"RegionID": "--id", "RegionCode": "--code", "RegionName": "--name", "Latitude": "--lat",
                    "Longitude": "--lon"}


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


def plan_region(region_id: int, code: str, name: str | None = None, nodes: list[str] | None = None, *,
                latitude: float | None = None, longitude: float | None = None,
                omit_default: bool = False) -> RegionPlan:
    """Build and validate a self-hosted region from command-line style values.

    Every problem raises :class:`UsageError` naming the option to fix; the notes warn about IDs outside the
    custom range 900-999 and about ``OmitDefaultRegions``.
    """
    from pydantic import ValidationError

    from derptool.derpmap import CUSTOM_REGION_IDS, DERPNode, format_location, problems_from_validation

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
            raise UsageError(f"--node {spec!r}: node name {nd['Name']!r} is also used by --node {seen[nd['Name']]!r}; "
                             "give each node a different name=")
        seen[nd["Name"]] = spec
    data: dict[str, Any] = {"RegionID": region_id, "RegionCode": code, "RegionName": name or code, "Nodes": node_data}
    if latitude is not None:
        data["Latitude"] = float(latitude)
    if longitude is not None:
        data["Longitude"] = float(longitude)
    try:
        region = DERPRegion.model_validate(data)
    except ValidationError as err:
        first = problems_from_validation(err)[0]
        option = _OPTION_OF_FIELD.get(str(first.path[0]) if first.path else "", "")
        where = option or format_location(first.path) or "region"
        raise UsageError(f"{where}: {first.message}") from None
    notes = []
    if region_id not in CUSTOM_REGION_IDS:
        notes.append(f"region ID {region_id} is outside 900-999, the IDs Tailscale reserves for custom regions; "
                     "it replaces any default region with that ID")
    if omit_default:
        notes.append("--omit-default sets OmitDefaultRegions: Tailscale's DERP regions are dropped and every "
                     "connection that needs a relay then depends on your own servers")
    return RegionPlan(region, omit_default, notes)


def region_derpmap(plan: RegionPlan) -> DERPMap:
    """The plan as a (policy overlay) DERP map."""
    return DERPMap(Regions={plan.region.region_id: plan.region}, omitDefaultRegions=plan.omit_default)


def region_fragment(plan: RegionPlan) -> dict[str, Any]:
    """The policy fragment as data: ``{"derpMap": {"OmitDefaultRegions"?: true, "Regions": {"900": {...}}}}``."""
    derp: dict[str, Any] = {}
    if plan.omit_default:
        derp["OmitDefaultRegions"] = True
    derp["Regions"] = {str(plan.region.region_id): plan.region.to_data()}
    return {"derpMap": derp}


def render_region_json(plan: RegionPlan) -> str:
    """The region fragment as plain JSON text (newline-terminated)."""
    return json.dumps(region_fragment(plan), indent=2) + "\n"


def node_comment(node_data: dict[str, Any]) -> str:
    """What a client does with a node: ``DERP over HTTPS on 443, STUN on UDP 3478``."""
    from derptool.derpmap import DERPNode

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
    lines.append(f"{pad}{indent}\"Nodes\": [")
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


OMIT_DEFAULT_COMMENT = ("OmitDefaultRegions: clients use only the regions of this derpMap, never Tailscale's; "
                        "when your servers are down, connections that need a relay fail")


def render_region_hujson(plan: RegionPlan, *, header: list[str] | None = None) -> str:
    """The region fragment as HuJSON with comments, in ``hujson.Format`` layout."""
    lines = [f"// {h}" if h else "//" for h in header or []]
    lines += ["{", '\t"derpMap": {']
    if plan.omit_default:
        lines += [f"\t\t// {OMIT_DEFAULT_COMMENT}", '\t\t"OmitDefaultRegions": true,', ""]
    lines += ['\t\t"Regions": {', f"\t\t\t// {region_title(plan.region)}"]
    lines.append(f'\t\t\t"{plan.region.region_id}": {region_value_hujson(plan, depth=3)},')
    lines += ["\t\t},", "\t},", "}"]
    return _formatted("\n".join(lines) + "\n")


def _formatted(text: str) -> str:
    """*text* through ``hujson.format`` (value alignment as Tailscale's formatter does it), when available."""
    from derptool import hujson

    fmt = getattr(hujson, "format", None)
    if fmt is None:
        return text
    out: bytes = fmt(text.encode())
    return out.decode()
