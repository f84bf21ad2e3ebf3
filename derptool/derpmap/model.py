"""DERP map models with Tailscale's ``tailcfg`` JSON names, validation, and merging.

The models mirror ``tailcfg.DERPMap``, ``DERPHomeParams``, ``DERPRegion`` and ``DERPNode``:

* keys are read in any letter case, as Go's ``encoding/json`` does (``omitDefaultRegions`` as written
  by tailcfg, ``OmitDefaultRegions`` as written in policy files, ``stunport`` in headscale YAML);
* :meth:`DERPMap.to_data` writes the exact tailcfg names back with Go's ``omitempty`` behaviour, so a map
  read and written again is the same data;
* a region may be ``None`` in a map that is an *overlay* (a policy file's ``derpMap``): it removes that
  region from the map it is merged over (:func:`merge`).

The models are plain dataclasses, cheap to define: each field's tailcfg name is its ``alias`` metadata.
Untrusted data is validated by :func:`parse_derpmap` (or a class's ``model_validate``) through pydantic
mirrors in :mod:`derptool.derpmap._validation`, imported only then; the bundled snapshot is read without
validation (:meth:`DERPMap.from_trusted`). Nothing here does I/O.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from derptool.derpmap.limits import MAX_REGION_ID, ip_literal, is_ip, is_valid_hostname

if TYPE_CHECKING:
    from typing import Self

    from pydantic import GetCoreSchemaHandler, ValidationError
    from pydantic_core import CoreSchema

__all__ = [
    "CUSTOM_REGION_IDS",
    "DEFAULT_DERP_PORT",
    "DEFAULT_STUN_PORT",
    "MAX_REGION_ID",
    "DERPHomeParams",
    "DERPMap",
    "DERPNode",
    "DERPRegion",
    "MapProblem",
    "format_location",
    "is_ip",
    "is_valid_hostname",
    "merge",
    "problems_from_validation",
    "semantic_problems",
]

CUSTOM_REGION_IDS = range(900, 1000)
"""Region IDs Tailscale reserves for users' own DERP regions."""

DEFAULT_STUN_PORT = 3478
DEFAULT_DERP_PORT = 443


def _json(name: str) -> dict[str, str]:
    """Field metadata: the field is read and written as tailcfg's *name*."""
    return {"alias": name}


class _Model:
    """What the four DERP dataclasses share: tailcfg names and validation of plain data."""

    ALIASES: ClassVar[dict[str, str]]
    """Field name to tailcfg JSON name, in declaration order (set for each class below)."""

    @classmethod
    def model_validate(cls, data: Any) -> Self:
        """Validate plain data (any key case, tailcfg names) into this class; raises pydantic's
        ``ValidationError`` (see :func:`problems_from_validation`)."""
        from derptool.derpmap import _validation  # lazy: it loads pydantic, which the trusted snapshot skips

        mirror = getattr(_validation, cls.__name__)
        return _from_validated(mirror.model_validate(data))  # type: ignore[no-any-return]


@dataclass(eq=True)
class DERPNode(_Model):
    """One DERP (or STUN-only) server of a region."""

    name: str = field(metadata=_json("Name"))
    region_id: int = field(metadata=_json("RegionID"))
    host_name: str = field(metadata=_json("HostName"))
    cert_name: str = field(default="", metadata=_json("CertName"))
    ipv4: str = field(default="", metadata=_json("IPv4"))
    ipv6: str = field(default="", metadata=_json("IPv6"))
    stun_port: int = field(default=0, metadata=_json("STUNPort"))
    stun_only: bool = field(default=False, metadata=_json("STUNOnly"))
    derp_port: int = field(default=0, metadata=_json("DERPPort"))
    insecure_for_tests: bool = field(default=False, metadata=_json("InsecureForTests"))
    stun_test_ip: str = field(default="", metadata=_json("STUNTestIP"))
    can_port80: bool = field(default=False, metadata=_json("CanPort80"))

    @property
    def effective_stun_port(self) -> int | None:
        """The UDP port STUN is served on, or ``None`` when STUN is disabled."""
        if self.stun_port == -1:
            return None
        return self.stun_port or DEFAULT_STUN_PORT

    @property
    def effective_derp_port(self) -> int:
        """The TCP port DERP (HTTPS) is served on."""
        return self.derp_port or DEFAULT_DERP_PORT

    def stun_host(self, family: Literal[4, 6]) -> str | None:
        """Where to send STUN over IPv*family*: an IP address, a host name to resolve, or ``None``.

        As Tailscale does: ``"none"`` disables the family, STUNTestIP wins, then the IPv4/IPv6 field, then
        HostName (an address literal of the other family gives ``None``).
        """
        given = self.ipv4 if family == 4 else self.ipv6
        if given == "none":
            return None
        if self.stun_test_ip:
            text, version = ip_literal(self.stun_test_ip)
            return text if version == family else None
        if given:
            return given
        if is_ip(self.host_name):
            return self.host_name if ip_literal(self.host_name)[1] == family else None
        return self.host_name

    @property
    def tls_name(self) -> str:
        """The name the TLS certificate must carry (CertName, else HostName)."""
        return self.cert_name or self.host_name

    def to_data(self) -> dict[str, Any]:
        """The node as tailcfg JSON data (omitempty fields left out at their zero value)."""
        return _dump(self, always={"Name", "RegionID", "HostName"})


@dataclass(eq=True)
class DERPRegion(_Model):
    """A DERP region: one geographic location, one or more nodes."""

    region_id: int = field(metadata=_json("RegionID"))
    region_code: str = field(metadata=_json("RegionCode"))
    region_name: str = field(metadata=_json("RegionName"))
    latitude: float = field(default=0.0, metadata=_json("Latitude"))
    longitude: float = field(default=0.0, metadata=_json("Longitude"))
    avoid: bool = field(default=False, metadata=_json("Avoid"))
    no_measure_no_home: bool = field(default=False, metadata=_json("NoMeasureNoHome"))
    nodes: list[DERPNode] = field(default_factory=list, metadata=_json("Nodes"))
    coordinates_problem: str | None = field(default=None, compare=False, repr=False, metadata={"internal": True})
    """Why Latitude/Longitude as given cannot place the region (then both read as 0); not part of the JSON."""

    @property
    def stun_only(self) -> bool:
        """True when every node of the region serves STUN only."""
        return bool(self.nodes) and all(n.stun_only for n in self.nodes)

    @property
    def is_custom(self) -> bool:
        """True for region IDs reserved for self-hosted regions (900..999)."""
        return self.region_id in CUSTOM_REGION_IDS

    def to_data(self) -> dict[str, Any]:
        """The region as tailcfg JSON data."""
        data = _dump(self, always={"RegionID", "RegionCode", "RegionName"}, skip={"Nodes"})
        data["Nodes"] = [n.to_data() for n in self.nodes]
        return data


@dataclass(eq=True, init=False)
class DERPHomeParams(_Model):
    """Parameters for choosing the home region."""

    region_score: dict[int, float] = field(default_factory=dict, metadata=_json("RegionScore"))

    def __init__(
        self, region_score: dict[int, float] | None = None, *, RegionScore: dict[int, float] | None = None
    ) -> None:
        """Take the field by its name or its tailcfg name (``DERPHomeParams(RegionScore={1: 0.5})``)."""
        self.region_score = _either(region_score, RegionScore, dict)

    def to_data(self) -> dict[str, Any]:
        """The parameters as tailcfg JSON data."""
        if not self.region_score:
            return {}
        return {"RegionScore": {str(k): v for k, v in sorted(self.region_score.items())}}


@dataclass(eq=True, init=False)
class DERPMap(_Model):
    """A whole DERP map, or an overlay of one (regions set to ``None`` remove a region)."""

    home_params: DERPHomeParams | None = field(default=None, metadata=_json("HomeParams"))
    regions: dict[int, DERPRegion | None] = field(default_factory=dict, metadata=_json("Regions"))
    omit_default_regions: bool = field(default=False, metadata=_json("omitDefaultRegions"))

    def __init__(
        self,
        home_params: DERPHomeParams | None = None,
        regions: dict[int, DERPRegion | None] | None = None,
        omit_default_regions: bool | None = None,
        *,
        HomeParams: DERPHomeParams | None = None,
        Regions: dict[int, DERPRegion | None] | None = None,
        omitDefaultRegions: bool | None = None,
    ) -> None:
        """Take each field by its name or its tailcfg name (``DERPMap(Regions={1: None})``)."""
        self.home_params = home_params if home_params is not None else HomeParams
        self.regions = _either(regions, Regions, dict)
        self.omit_default_regions = bool(_either(omit_default_regions, omitDefaultRegions, bool))

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        """Inside a pydantic model (the policy's ``derpMap``): validate with the mirror, give a dataclass."""
        from pydantic_core import core_schema  # lazy (as the mirror): only a policy model asks for this

        from derptool.derpmap._validation import DERPMap as Mirror

        return core_schema.no_info_after_validator_function(_from_validated, handler(Mirror))

    @classmethod
    def from_trusted(cls, data: Mapping[str, Any]) -> DERPMap:
        """A map from tailcfg JSON data that is known to be valid (the bundled snapshot), without validation.

        Field names must be tailcfg's exact ones. Anything that may be wrong goes through
        :func:`parse_derpmap` instead; a test keeps both readings of the snapshot equal.
        """
        node_names = {a: n for n, a in DERPNode.ALIASES.items()}
        region_names = {a: n for n, a in DERPRegion.ALIASES.items() if a != "Nodes"}
        regions: dict[int, DERPRegion | None] = {}
        for key, region in data.get("Regions", {}).items():
            if region is None:
                regions[int(key)] = None
                continue
            nodes = [
                DERPNode(**{node_names[k]: v for k, v in n.items() if k in node_names})
                for n in region.get("Nodes") or []
            ]
            regions[int(key)] = DERPRegion(
                **{region_names[k]: v for k, v in region.items() if k in region_names}, nodes=nodes
            )
        home = data.get("HomeParams")
        home_params = (
            None
            if home is None
            else DERPHomeParams({int(k): float(v) for k, v in (home.get("RegionScore") or {}).items()})
        )
        return cls(home_params, regions, bool(data.get("omitDefaultRegions", False)))

    # -- views -------------------------------------------------------------------------------

    @property
    def is_overlay(self) -> bool:
        """True when the map only makes sense merged over another (null regions or omitDefaultRegions)."""
        return self.omit_default_regions or any(r is None for r in self.regions.values())

    def region_list(self) -> list[DERPRegion]:
        """The (non-null) regions sorted by ID."""
        return [r for _, r in sorted(self.regions.items()) if r is not None]

    def node_count(self) -> int:
        """Number of nodes over all regions."""
        return sum(len(r.nodes) for r in self.region_list())

    def to_data(self) -> dict[str, Any]:
        """The map as tailcfg JSON data: exact names, regions sorted by ID, omitempty honoured."""
        data: dict[str, Any] = {}
        if self.home_params is not None:
            data["HomeParams"] = self.home_params.to_data()
        data["Regions"] = {str(k): (None if r is None else r.to_data()) for k, r in sorted(self.regions.items())}
        if self.omit_default_regions:
            data["omitDefaultRegions"] = True
        return data

    def subset(self, region_ids: Iterable[int]) -> DERPMap:
        """A copy holding only the given regions."""
        keep = set(region_ids)
        return dataclasses.replace(self, regions={k: r for k, r in self.regions.items() if k in keep})


for _cls in (DERPNode, DERPRegion, DERPHomeParams, DERPMap):
    _cls.ALIASES = {f.name: f.metadata["alias"] for f in dataclasses.fields(_cls) if "alias" in f.metadata}


def _either(value: Any, alias_value: Any, factory: Any) -> Any:
    """The argument given by field name, else by tailcfg name, else a new zero value."""
    if value is not None:
        return value
    return alias_value if alias_value is not None else factory()


def _from_validated(model: Any) -> Any:
    """The dataclass holding the values of a validated pydantic mirror (see :mod:`._validation`)."""
    kind = type(model).__name__
    if kind == "DERPNode":
        return DERPNode(**{name: getattr(model, name) for name in DERPNode.ALIASES})
    if kind == "DERPRegion":
        values = {name: getattr(model, name) for name in DERPRegion.ALIASES if name != "nodes"}
        return DERPRegion(
            **values,
            nodes=[_from_validated(n) for n in model.nodes],
            coordinates_problem=model.coordinates_problem,
        )
    if kind == "DERPHomeParams":
        return DERPHomeParams(dict(model.region_score))
    home = model.home_params
    return DERPMap(
        None if home is None else _from_validated(home),
        {k: None if r is None else _from_validated(r) for k, r in model.regions.items()},
        model.omit_default_regions,
    )


def _dump(model: _Model, *, always: set[str], skip: Iterable[str] = ()) -> dict[str, Any]:
    """Serialise *model* by alias, leaving out zero values except the names in *always* (Go omitempty)."""
    out: dict[str, Any] = {}
    skipped = set(skip)
    for name, alias in type(model).ALIASES.items():
        if alias in skipped:
            continue
        value = getattr(model, name)
        if alias in always or value not in (0, 0.0, "", False, None) or (isinstance(value, bool) and value):
            out[alias] = value
    return out


# -- parsing with clear errors -------------------------------------------------------------------


def format_location(loc: Iterable[int | str]) -> str:
    """Render a pydantic error location as ``Regions["1"].Nodes[0].IPv4``."""
    out = ""
    parts = list(loc)
    for i, part in enumerate(parts):
        if isinstance(part, int):
            out += f'["{part}"]' if i > 0 and parts[i - 1] == "Regions" else f"[{part}]"
        elif part in ("DERPRegion", "DERPNode", "function-after[_region_ids(), DERPMap]"):
            continue
        else:
            out += ("." if out else "") + str(part)
    return out


@dataclass(frozen=True)
class MapProblem:
    """One thing wrong with a map, with the JSON path to it."""

    path: tuple[str | int, ...]
    message: str
    severity: Literal["error", "warning"] = "error"


def problems_from_validation(err: ValidationError) -> list[MapProblem]:
    """Turn a pydantic ``ValidationError`` into :class:`MapProblem` values with readable messages."""
    out = []
    for e in err.errors(include_url=False):
        loc = tuple(p for p in e["loc"] if not (isinstance(p, str) and p.startswith("function-")))
        loc = tuple(p for p in loc if p not in ("DERPRegion", "DERPNode"))
        msg = e["msg"]
        if msg.startswith("Value error, "):
            msg = msg[len("Value error, ") :]
        elif e["type"] == "missing":
            msg = f"{loc[-1]} is required" if loc else "a required field is missing"
        elif e["type"] in (
            "int_type",
            "string_type",
            "bool_type",
            "float_type",
            "dict_type",
            "list_type",
            "model_type",
            "int_parsing",
        ):
            msg = f"{msg} (got {_describe(e.get('input'))})"
        out.append(MapProblem(loc, msg))
    return out


def _describe(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f"string {value!r}"
    if isinstance(value, int | float):
        return f"number {value}"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def semantic_problems(dmap: DERPMap) -> list[MapProblem]:
    """Checks across regions: duplicate node names and duplicate region codes (errors); coordinates that
    cannot place a region (warnings)."""
    out: list[MapProblem] = []
    names: dict[str, int] = {}
    codes: dict[str, int] = {}
    for rid, region in sorted(dmap.regions.items()):
        if region is None:
            continue
        if region.coordinates_problem:
            out.append(
                MapProblem(
                    ("Regions", rid),
                    f"{region.coordinates_problem}: the region cannot be placed by its coordinates",
                    "warning",
                )
            )
        code = region.region_code.lower()
        if code in codes:
            out.append(
                MapProblem(
                    ("Regions", rid, "RegionCode"),
                    f"region code {region.region_code!r} is also used by region {codes[code]}",
                )
            )
        else:
            codes[code] = rid
        for i, node in enumerate(region.nodes):
            if node.name in names:
                out.append(
                    MapProblem(
                        ("Regions", rid, "Nodes", i, "Name"),
                        f"node name {node.name!r} is also used in region {names[node.name]}",
                    )
                )
            else:
                names[node.name] = rid
    return out


def merge(base: DERPMap, overlay: DERPMap) -> DERPMap:
    """Apply a policy-file ``derpMap`` *overlay* to *base* with Tailscale's semantics.

    ``omitDefaultRegions`` drops every base region; a region set to ``None`` is removed; a region given in
    full replaces the base one (it is not merged field by field). HomeParams of the overlay win when set.
    The result is a complete map: it holds no ``None`` regions and no ``omitDefaultRegions``.
    """
    regions: dict[int, DERPRegion | None] = (
        {} if overlay.omit_default_regions else {k: r for k, r in base.regions.items() if r is not None}
    )
    for rid, region in overlay.regions.items():
        if region is None:
            regions.pop(rid, None)
        else:
            regions[rid] = region
    return DERPMap(
        HomeParams=overlay.home_params if overlay.home_params is not None else base.home_params,
        Regions=dict(sorted(regions.items())),
    )
