"""headscale's DERP map YAML (``derp.paths``), read and written.

headscale reads tailcfg's field names in lower case and region IDs as integer keys. Reading takes every
scalar as a string (YAML 1.1's ``yes``/``no`` are not guessed) and gives each field the JSON type tailcfg
declares for it, so the result decodes like a DERP map JSON. Anchors and aliases are refused (a DERP map
needs none, and a few KB of nested aliases expand to gigabytes); so are snake_case spellings of field names
(``region_id``), which headscale would silently ignore.
"""

from __future__ import annotations

import json
import re
import typing
from collections.abc import Mapping
from functools import cache
from typing import Any

from derptool.derpmap.model import DERPMap, DERPNode, DERPRegion
from derptool.errors import InputError, LimitError, MapError
from derptool.fileio import MAX_DEPTH


def load_yaml(data: bytes, name: str) -> Any:
    """headscale DERP YAML from *data* as JSON-typed data (see the module docstring)."""
    doc = _load_yaml(data, name)
    _refuse_deep(doc, name)
    _refuse_snake_case(doc, data, name)
    return _coerce_yaml_map(doc)


class _AliasRefused(Exception):
    def __init__(self, what: str, line: int, column: int) -> None:
        super().__init__(what)
        self.what, self.line, self.column = what, line, column


@cache
def _loader() -> type:
    """PyYAML's all-strings loader, refusing anchors and aliases before anything is expanded."""
    import yaml  # lazy, as below

    class NoAliasLoader(yaml.BaseLoader):
        def compose_node(self, parent: Any, index: Any) -> Any:
            event = self.peek_event()  # type: ignore[no-untyped-call]
            anchor = getattr(event, "anchor", None)
            if anchor is not None:
                kind = "alias" if isinstance(event, yaml.AliasEvent) else "anchor"
                mark = event.start_mark
                raise _AliasRefused(f"{kind} {'*' if kind == 'alias' else '&'}{anchor}", mark.line + 1, mark.column + 1)
            return super().compose_node(parent, index)

    return NoAliasLoader


def _load_yaml(data: bytes, name: str) -> Any:
    import yaml  # lazy: a costly import that maps in JSON (and the snapshot, for omit) never need

    try:
        return yaml.load(data, Loader=_loader())
    except _AliasRefused as err:
        raise LimitError(
            f"YAML {err.what}: derptool reads no anchors or aliases (a DERP map needs none); write the values out",
            file=name,
            line=err.line,
            column=err.column,
        ) from None
    except RecursionError:
        raise LimitError(f"{name}: YAML nested too deeply to read (the limit is 10000 levels)") from None
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark
        where = f"{name}:{mark.line + 1}:{mark.column + 1}" if mark is not None else name
        raise InputError(f"{where}: invalid YAML: {err.problem}") from None
    except yaml.YAMLError as err:  # a reader error (a byte YAML refuses): PyYAML's text spans lines
        raise InputError(f"{name}: invalid YAML: {' '.join(str(err).split())}") from None


def _refuse_deep(doc: Any, name: str) -> None:
    """Block-style YAML nests without brackets, so the depth limit is checked on what was read (iteratively)."""
    stack: list[tuple[Any, int]] = [(doc, 0)]
    while stack:
        value, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise LimitError(f"{name}: YAML nested deeper than the {MAX_DEPTH} levels derptool reads")
        if isinstance(value, Mapping):
            stack.extend((v, depth + 1) for v in value.values())
        elif isinstance(value, list):
            stack.extend((v, depth + 1) for v in value)


def _refuse_snake_case(doc: Any, data: bytes, name: str) -> None:
    """headscale reads ``regionid``, not ``region_id``: name such a key, which headscale would ignore."""
    if not isinstance(doc, Mapping):
        return
    known = {
        k.replace("_", ""): k
        for k in (
            *_field_kinds(DERPRegion),
            *_field_kinds(DERPNode),
            "nodes",
            "regions",
            "omitdefaultregions",
            "homeparams",
            "regionscore",
        )
    }
    for key in _keys(doc):
        text = str(key)
        if "_" in text and text.replace("_", "").lower() in known:
            right = text.replace("_", "").lower()
            m = re.search(rb"(?m)^[ \t-]*" + re.escape(text.encode()) + rb"\s*:", data)
            line = data.count(b"\n", 0, m.start()) + 1 if m else None
            col = (
                (
                    m.start()
                    - (data.rfind(b"\n", 0, m.start()) + 1)
                    + len(m.group())
                    - len(m.group().lstrip(b" \t-"))
                    + 1
                )
                if m
                else None
            )
            raise MapError(
                f"key {text!r} is not one headscale reads (it would be ignored): write {right!r}",
                file=name,
                line=line,
                column=col,
            )


def _keys(value: Any, depth: int = 0) -> list[Any]:
    """Every mapping key in *value*, to four levels (regions, region, nodes, node)."""
    if depth > 4:
        return []
    out: list[Any] = []
    if isinstance(value, Mapping):
        for k, v in value.items():
            out.append(k)
            out.extend(_keys(v, depth + 1))
    elif isinstance(value, list):
        for v in value:
            out.extend(_keys(v, depth + 1))
    return out


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
    hints = typing.get_type_hints(model)
    for name, alias in model.ALIASES.items():
        ann = hints[name]
        if ann in (str, int, bool, float):
            kinds[alias.lower()] = ann
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
                            if isinstance(n, Mapping)
                            else n
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
            out.append(f"{pad}- {sub[0][len(pad) + 2 :]}")
            out.extend(sub[1:])
        elif isinstance(item, dict | list):
            out.append(f"{pad}- {'{}' if isinstance(item, dict) else '[]'}")
        else:
            out.append(f"{pad}- {_yaml_scalar(item)}")
    return out


def render_headscale_yaml(
    dmap: DERPMap, *, header: list[str] | None = None, labels: dict[int, str] | None = None
) -> str:
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
