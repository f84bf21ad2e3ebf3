"""DERP map models with Tailscale's ``tailcfg`` JSON names, validation, and merging.

The models mirror ``tailcfg.DERPMap``, ``DERPHomeParams``, ``DERPRegion`` and ``DERPNode``:

* keys are read in any letter case, as Go's ``encoding/json`` does (``omitDefaultRegions`` as written
  by tailcfg, ``OmitDefaultRegions`` as written in policy files, ``stunport`` in headscale YAML);
* :meth:`DERPMap.to_data` writes the exact tailcfg names back with Go's ``omitempty`` behaviour, so a map
  read and written again is the same data;
* a region may be ``None`` in a map that is an *overlay* (a policy file's ``derpMap``): it removes that
  region from the map it is merged over (:func:`merge`).

Nothing here does I/O.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from derptool.errors import MapError

MAX_REGION_ID = 2**53 - 1
"""Largest valid region ID (``DERPRegionID.IsValid``: a positive JavaScript-safe integer)."""

CUSTOM_REGION_IDS = range(900, 1000)
"""Region IDs Tailscale reserves for users' own DERP regions."""

DEFAULT_STUN_PORT = 3478
DEFAULT_DERP_PORT = 443

_DNS_LABEL = re.compile(r"^(?!-)[A-Za-z0-9_-]{1,63}(?<!-)$")


def _canonical_keys(data: Any, model: type[BaseModel]) -> Any:
    """Rename the keys of *data* to *model*'s aliases, matching them case-insensitively like Go."""
    if not isinstance(data, Mapping):
        return data
    by_lower = {
        (f.alias or name).lower(): (f.alias or name) for name, f in model.model_fields.items()
    }
    out: dict[str, Any] = {}
    for key, value in data.items():
        if not isinstance(key, str):
            out[key] = value
            continue
        out[by_lower.get(key.lower(), key)] = value
    return out


def is_valid_hostname(name: str) -> bool:
    """True when *name* is a DNS name (letters, digits, ``-``, ``_``; labels of 1..63) or an IP address."""
    if is_ip(name):
        return True
    if not name or len(name) > 253:
        return False
    labels = name[:-1].split(".") if name.endswith(".") else name.split(".")
    return all(_DNS_LABEL.match(label) for label in labels)


@functools.lru_cache(maxsize=4096)
def _ip_literal(text: str) -> tuple[str, int]:
    """*text* (a valid IP literal) in canonical form, and its version; cached: plans ask once per probe."""
    ip = ipaddress.ip_address(text)
    return str(ip), ip.version


def is_ip(text: str) -> bool:
    """True when *text* is an IPv4 or IPv6 address."""
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


class _Model(BaseModel):
    # defer_build: the validation schema is built on first use, not at import, so commands that only read
    # the bundled snapshot (see DERPMap.from_trusted) never pay for it.
    model_config = ConfigDict(
        defer_build=True,
        populate_by_name=True,
        strict=True,
        extra="ignore",
        frozen=False,
        validate_assignment=False,
    )


class DERPNode(_Model):
    """One DERP (or STUN-only) server of a region."""

    name: str = Field(alias="Name", description="Unique node name across the map (not a host name).")
    region_id: int = Field(alias="RegionID", description="ID of the region this node belongs to.")
    host_name: str = Field(alias="HostName", description="DNS name (or IP address) of the server.")
    cert_name: str = Field(
        "", alias="CertName", description="Expected TLS certificate name, if not HostName ('sha256-raw:<hex>' pins)."
    )
    ipv4: str = Field(
        "", alias="IPv4", description="IPv4 address to use instead of resolving HostName; 'none' disables IPv4."
    )
    ipv6: str = Field(
        "", alias="IPv6", description="IPv6 address to use instead of resolving HostName; 'none' disables IPv6."
    )
    stun_port: int = Field(0, alias="STUNPort", description="UDP STUN port: 0 means 3478, -1 disables STUN.")
    stun_only: bool = Field(False, alias="STUNOnly", description="The node serves only STUN, no DERP.")
    derp_port: int = Field(0, alias="DERPPort", description="TCP port of DERP over HTTPS: 0 means 443.")
    insecure_for_tests: bool = Field(
        False, alias="InsecureForTests", description="Skip TLS verification (tests only)."
    )
    stun_test_ip: str = Field("", alias="STUNTestIP", description="STUN address override (tests only).")
    can_port80: bool = Field(False, alias="CanPort80", description="Serves captive-portal checks on port 80.")

    @model_validator(mode="before")
    @classmethod
    def _keys(cls, data: Any) -> Any:
        return _canonical_keys(data, cls)

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not v:
            raise ValueError("Name must not be empty")
        return v

    @field_validator("host_name")
    @classmethod
    def _host(cls, v: str) -> str:
        if not v:
            raise ValueError("HostName must not be empty")
        if not is_valid_hostname(v):
            raise ValueError(f"HostName {v!r} is not a valid DNS name or IP address")
        return v

    @field_validator("ipv4")
    @classmethod
    def _ipv4(cls, v: str) -> str:
        if v in ("", "none"):
            return v
        try:
            ipaddress.IPv4Address(v)
        except ValueError:
            raise ValueError(f"IPv4 {v!r} is not an IPv4 address (or \"none\")") from None
        return v

    @field_validator("ipv6")
    @classmethod
    def _ipv6(cls, v: str) -> str:
        if v in ("", "none"):
            return v
        try:
            ipaddress.IPv6Address(v)
        except ValueError:
            raise ValueError(f"IPv6 {v!r} is not an IPv6 address (or \"none\")") from None
        return v

    @field_validator("stun_test_ip")
    @classmethod
    def _stun_test_ip(cls, v: str) -> str:
        if v and not is_ip(v):
            raise ValueError(f"STUNTestIP {v!r} is not an IP address")
        return v

    @field_validator("stun_port")
    @classmethod
    def _stun_port(cls, v: int) -> int:
        if not -1 <= v <= 65535:
            raise ValueError(f"STUNPort {v} is out of range (0..65535, 0 means 3478, -1 disables STUN)")
        return v

    @field_validator("derp_port")
    @classmethod
    def _derp_port(cls, v: int) -> int:
        if not 0 <= v <= 65535:
            raise ValueError(f"DERPPort {v} is out of range (0..65535, 0 means 443)")
        return v

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
            text, version = _ip_literal(self.stun_test_ip)
            return text if version == family else None
        if given:
            return given
        if is_ip(self.host_name):
            return self.host_name if _ip_literal(self.host_name)[1] == family else None
        return self.host_name

    @property
    def tls_name(self) -> str:
        """The name the TLS certificate must carry (CertName, else HostName)."""
        return self.cert_name or self.host_name

    def to_data(self) -> dict[str, Any]:
        """The node as tailcfg JSON data (omitempty fields left out at their zero value)."""
        return _dump(self, always={"Name", "RegionID", "HostName"})


class DERPRegion(_Model):
    """A DERP region: one geographic location, one or more nodes."""

    region_id: int = Field(alias="RegionID", description="Region ID, equal to its key in Regions.")
    region_code: str = Field(alias="RegionCode", description="Short code, such as 'nyc'.")
    region_name: str = Field(alias="RegionName", description="Long name, such as 'New York City'.")
    latitude: float = Field(0.0, alias="Latitude", description="Latitude of the region, for display.")
    longitude: float = Field(0.0, alias="Longitude", description="Longitude of the region, for display.")
    avoid: bool = Field(False, alias="Avoid", description="Deprecated: measured but never chosen as home.")
    no_measure_no_home: bool = Field(
        False, alias="NoMeasureNoHome", description="Never measured nor chosen as home; reachable as a peer's home."
    )
    nodes: list[DERPNode] = Field(default_factory=list, alias="Nodes", description="The region's servers.")

    @model_validator(mode="before")
    @classmethod
    def _keys(cls, data: Any) -> Any:
        data = _canonical_keys(data, cls)
        if isinstance(data, dict) and data.get("Nodes", []) is None:
            data = {**data, "Nodes": []}
        return data

    @field_validator("latitude", "longitude", mode="before")
    @classmethod
    def _coord_number(cls, v: Any) -> Any:
        if isinstance(v, bool) or not isinstance(v, int | float):
            return v
        return float(v)

    @field_validator("region_id")
    @classmethod
    def _rid(cls, v: int) -> int:
        if not 0 < v <= MAX_REGION_ID:
            raise ValueError(f"RegionID {v} is not a positive safe integer (1..2^53-1)")
        return v

    @field_validator("region_code")
    @classmethod
    def _code(cls, v: str) -> str:
        if not v:
            raise ValueError("RegionCode must not be empty")
        return v

    @field_validator("latitude")
    @classmethod
    def _lat(cls, v: float) -> float:
        if not -90.0 <= v <= 90.0:
            raise ValueError(f"Latitude {v} is out of range (-90..90)")
        return v

    @field_validator("longitude")
    @classmethod
    def _lon(cls, v: float) -> float:
        if not -180.0 <= v <= 180.0:
            raise ValueError(f"Longitude {v} is out of range (-180..180)")
        return v

    @model_validator(mode="after")
    def _node_regions(self) -> DERPRegion:
        for i, node in enumerate(self.nodes):
            if node.region_id != self.region_id:
                raise ValueError(
                    f"Nodes[{i}] ({node.name}) has RegionID {node.region_id} but belongs to region "
                    f"{self.region_id}; set its RegionID to {self.region_id}"
                )
        return self

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


class DERPHomeParams(_Model):
    """Parameters for choosing the home region."""

    region_score: dict[int, float] = Field(
        default_factory=dict,
        alias="RegionScore",
        description="Region ID to latency multiplier; below 1 makes a region more attractive as home.",
    )

    @model_validator(mode="before")
    @classmethod
    def _keys(cls, data: Any) -> Any:
        data = _canonical_keys(data, cls)
        if isinstance(data, dict) and isinstance(data.get("RegionScore"), Mapping):
            data = {
                **data,
                "RegionScore": {
                    _region_key(k): float(v) if isinstance(v, int) and not isinstance(v, bool) else v
                    for k, v in data["RegionScore"].items()
                },
            }
        return data

    def to_data(self) -> dict[str, Any]:
        """The parameters as tailcfg JSON data."""
        if not self.region_score:
            return {}
        return {"RegionScore": {str(k): v for k, v in sorted(self.region_score.items())}}


class DERPMap(_Model):
    """A whole DERP map, or an overlay of one (regions set to ``None`` remove a region)."""

    home_params: DERPHomeParams | None = Field(None, alias="HomeParams", description="Home selection tuning.")
    regions: dict[int, DERPRegion | None] = Field(
        default_factory=dict, alias="Regions", description="Regions by ID; null removes a region from the base map."
    )
    omit_default_regions: bool = Field(
        False, alias="omitDefaultRegions", description="Drop every region of the base (default) map."
    )

    @model_validator(mode="before")
    @classmethod
    def _keys(cls, data: Any) -> Any:
        data = _canonical_keys(data, cls)
        if isinstance(data, dict):
            regions = data.get("Regions")
            if regions is None and "Regions" in data:
                data = {**data, "Regions": {}}
            elif isinstance(regions, Mapping):
                data = {**data, "Regions": {_region_key(k): v for k, v in regions.items()}}
        return data

    @model_validator(mode="after")
    def _region_ids(self) -> DERPMap:
        for key, region in self.regions.items():
            if not 0 < key <= MAX_REGION_ID:
                raise ValueError(f"Regions key {key} is not a positive safe integer (1..2^53-1)")
            if region is not None and region.region_id != key:
                raise ValueError(
                    f'Regions["{key}"] has RegionID {region.region_id}; it must equal its key {key}'
                )
        return self

    @classmethod
    def from_trusted(cls, data: Mapping[str, Any]) -> DERPMap:
        """A map from tailcfg JSON data that is known to be valid (the bundled snapshot), without validation.

        Field names must be tailcfg's exact ones. Anything that may be wrong goes through
        :func:`parse_derpmap` instead; a test keeps both readings of the snapshot equal.
        """

        def build(model: type[_Model], values: Mapping[str, Any]) -> Any:
            names = {f.alias or n: n for n, f in model.model_fields.items()}
            return model.model_construct(**{names[k]: v for k, v in values.items() if k in names})

        regions: dict[int, DERPRegion | None] = {}
        for key, region in data.get("Regions", {}).items():
            if region is None:
                regions[int(key)] = None
                continue
            nodes = [build(DERPNode, n) for n in region.get("Nodes") or []]
            regions[int(key)] = build(DERPRegion, {**region, "Nodes": nodes})
        home = data.get("HomeParams")
        home_params = None if home is None else DERPHomeParams.model_construct(
            region_score={int(k): float(v) for k, v in (home.get("RegionScore") or {}).items()})
        return cls.model_construct(home_params=home_params, regions=regions,
                                   omit_default_regions=bool(data.get("omitDefaultRegions", False)))

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
        data["Regions"] = {
            str(k): (None if r is None else r.to_data()) for k, r in sorted(self.regions.items())
        }
        if self.omit_default_regions:
            data["omitDefaultRegions"] = True
        return data

    def subset(self, region_ids: Iterable[int]) -> DERPMap:
        """A copy holding only the given regions."""
        keep = set(region_ids)
        return self.model_copy(update={"regions": {k: r for k, r in self.regions.items() if k in keep}})


def _region_key(key: Any) -> Any:
    """Turn a decimal region key (``"1"``, or ``1`` from YAML) into an int; leave anything else as is."""
    if isinstance(key, bool):
        return key
    if isinstance(key, int):
        return key
    if isinstance(key, str) and key.isascii() and key.isdigit() and (key == "0" or not key.startswith("0")):
        return int(key)
    return key


def _dump(model: BaseModel, *, always: set[str], skip: Iterable[str] = ()) -> dict[str, Any]:
    """Serialise *model* by alias, leaving out zero values except the names in *always* (Go omitempty)."""
    out: dict[str, Any] = {}
    skipped = set(skip)
    for name, field in type(model).model_fields.items():
        alias = field.alias or name
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
            msg = msg[len("Value error, "):]
        elif e["type"] == "missing":
            msg = f"{loc[-1]} is required" if loc else "a required field is missing"
        elif e["type"] in ("int_type", "string_type", "bool_type", "float_type", "dict_type", "list_type",
                           "model_type", "int_parsing"):
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
    """Checks across regions: duplicate node names and duplicate region codes."""
    out: list[MapProblem] = []
    names: dict[str, int] = {}
    codes: dict[str, int] = {}
    for rid, region in sorted(dmap.regions.items()):
        if region is None:
            continue
        code = region.region_code.lower()
        if code in codes:
            out.append(MapProblem(("Regions", rid, "RegionCode"),
                                  f"region code {region.region_code!r} is also used by region {codes[code]}"))
        else:
            codes[code] = rid
        for i, node in enumerate(region.nodes):
            if node.name in names:
                out.append(MapProblem(("Regions", rid, "Nodes", i, "Name"),
                                      f"node name {node.name!r} is also used in region {names[node.name]}"))
            else:
                names[node.name] = rid
    return out


def parse_derpmap(data: Any, *, source: str = "DERP map") -> DERPMap:
    """Validate plain data (decoded JSON/YAML) as a :class:`DERPMap`, raising :class:`MapError` on any problem.

    The message names the first problem with its path, and how many more there are.
    """
    if not isinstance(data, Mapping):
        raise MapError(f"{source}: a DERP map must be a JSON object with \"Regions\", got {_describe(data)}")
    try:
        dmap = DERPMap.model_validate(data)
    except ValidationError as err:
        problems = problems_from_validation(err)
    else:
        problems = [p for p in semantic_problems(dmap) if p.severity == "error"]
        if not problems:
            return dmap
    first = problems[0]
    where = format_location(first.path)
    more = f" (and {len(problems) - 1} more problem{'s' if len(problems) > 2 else ''})" if len(problems) > 1 else ""
    raise MapError(f"{source}: {where + ': ' if where else ''}{first.message}{more}")


# -- merging -------------------------------------------------------------------------------------


def merge(base: DERPMap, overlay: DERPMap) -> DERPMap:
    """Apply a policy-file ``derpMap`` *overlay* to *base* with Tailscale's semantics.

    ``omitDefaultRegions`` drops every base region; a region set to ``None`` is removed; a region given in
    full replaces the base one (it is not merged field by field). HomeParams of the overlay win when set.
    The result is a complete map: it holds no ``None`` regions and no ``omitDefaultRegions``.
    """
    regions: dict[int, DERPRegion | None] = {} if overlay.omit_default_regions else {
        k: r for k, r in base.regions.items() if r is not None
    }
    for rid, region in overlay.regions.items():
        if region is None:
            regions.pop(rid, None)
        else:
            regions[rid] = region
    return DERPMap(
        HomeParams=overlay.home_params if overlay.home_params is not None else base.home_params,
        Regions=dict(sorted(regions.items())),
    )
