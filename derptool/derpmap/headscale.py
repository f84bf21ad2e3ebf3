"""headscale's DERP map YAML (``derp.paths``), read and written.

headscale reads tailcfg's field names in lower case and region IDs as integer keys. Reading takes every
scalar as a string (YAML 1.1's ``yes``/``no`` are not guessed) and gives each field the JSON type tailcfg
declares for it, so the result decodes like a DERP map JSON.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from derptool.derpmap.model import DERPMap, DERPNode, DERPRegion
from derptool.errors import InputError


def load_yaml(data: bytes, name: str) -> Any:
    """headscale DERP YAML from *data* as JSON-typed data (see the module docstring)."""
    return _coerce_yaml_map(_load_yaml(data, name))


def _load_yaml(data: bytes, name: str) -> Any:
    import yaml

    try:
        return yaml.load(data, Loader=yaml.BaseLoader)
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark
        where = f"{name}:{mark.line + 1}:{mark.column + 1}" if mark is not None else name
        raise InputError(f"{where}: invalid YAML: {err.problem}") from None
    except yaml.YAMLError as err:
        raise InputError(f"{name}: invalid YAML: {err}") from None


_TRUE = {"true", "yes", "on"}
_FALSE = {"false", "no", "off"}


def _coerce_scalar(value: Any, kind: type) -> Any:
    if not isinstance(value, str):
        return value
    text = value.strip()
    if kind is bool and text.lower() in _TRUE | _FALSE:
        return text.lower() in _TRUE
    if kind is int:
        try:
            return int(text, 10)
        except ValueError:
            return value
    if kind is float:
        try:
            return float(text)
        except ValueError:
            return value
    return value


def _field_kinds(model: type[DERPNode] | type[DERPRegion]) -> dict[str, type]:
    kinds: dict[str, type] = {}
    for name, field in model.model_fields.items():
        ann = field.annotation
        if ann in (str, int, bool, float):
            kinds[(field.alias or name).lower()] = ann  # type: ignore[assignment]
    return kinds


def _coerce_yaml_map(data: Any) -> Any:
    """Give headscale YAML (read as all-strings) the JSON types of tailcfg's fields."""
    if not isinstance(data, Mapping):
        return data
    node_kinds = _field_kinds(DERPNode)
    region_kinds = _field_kinds(DERPRegion)
    out: dict[str, Any] = {}
    for key, value in data.items():
        lk = str(key).lower()
        if lk == "regions" and isinstance(value, Mapping):
            regions: dict[Any, Any] = {}
            for rid, region in value.items():
                if region in ("", "null", "~", "Null", "NULL"):
                    regions[rid] = None
                    continue
                if not isinstance(region, Mapping):
                    regions[rid] = region
                    continue
                r: dict[str, Any] = {}
                for rk, rv in region.items():
                    rkl = str(rk).lower()
                    if rkl == "nodes" and isinstance(rv, list):
                        r[rk] = [
                            {nk: _coerce_scalar(nv, node_kinds.get(str(nk).lower(), str)) for nk, nv in n.items()}
                            if isinstance(n, Mapping) else n
                            for n in rv
                        ]
                    else:
                        r[rk] = _coerce_scalar(rv, region_kinds.get(rkl, str))
                regions[rid] = r
            out[key] = regions
        elif lk == "omitdefaultregions":
            out[key] = _coerce_scalar(value, bool)
        elif lk == "homeparams" and isinstance(value, Mapping):
            out[key] = {
                hk: {sk: _coerce_scalar(sv, float) for sk, sv in hv.items()} if isinstance(hv, Mapping) else hv
                for hk, hv in value.items()
            }
        else:
            out[key] = value
    return out


# -- writing ---------------------------------------------------------------------------------------


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
