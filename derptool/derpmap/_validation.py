"""Validation of untrusted DERP maps: pydantic mirrors of the dataclasses in :mod:`derptool.derpmap.model`.

Imported on first use (by :func:`~derptool.derpmap.parse.parse_derpmap`, ``model_validate`` and the policy
model), so commands that only read the bundled snapshot never import pydantic. The classes carry the same
names, docstrings, field names, aliases and descriptions as the dataclasses: error locations
(``Regions["1"].Nodes[0].IPv4``) and the published JSON Schemas come from them. A test keeps both in step.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic.json_schema import SkipJsonSchema

from derptool.derpmap.limits import MAX_REGION_ID, coordinate_problem, is_ip, is_valid_hostname


def _canonical_keys(data: Any, model: type[BaseModel]) -> Any:
    """Rename the keys of *data* to *model*'s aliases, matching them case-insensitively like Go."""
    if not isinstance(data, Mapping):
        return data
    by_lower = {(f.alias or name).lower(): (f.alias or name) for name, f in model.model_fields.items()}
    out: dict[str, Any] = {}
    spelled: dict[str, str] = {}
    for key, value in data.items():
        if not isinstance(key, str):
            out[key] = value
            continue
        name = by_lower.get(key.lower(), key)
        if name in spelled and spelled[name] != key:
            raise ValueError(f'keys "{spelled[name]}" and "{key}" differ only in case; keep one of them')
        spelled[name] = key
        out[name] = value
    return out


def _float(v: Any) -> Any:
    """An int as a float (a JSON number without a fraction); anything else, or an int too large, as is."""
    if isinstance(v, int) and not isinstance(v, bool):
        try:
            return float(v)
        except OverflowError:
            return v
    return v


def _region_key(key: Any) -> Any:
    """Turn a decimal region key (``"1"``, or ``1`` from YAML) into an int; leave anything else as is."""
    if isinstance(key, bool):
        return key
    if isinstance(key, int):
        return key
    if isinstance(key, str) and key.isascii() and key.isdigit() and (key == "0" or not key.startswith("0")):
        return int(key)
    return key


class _Model(BaseModel):
    # defer_build: the validation schema is built when first used, not when this module is imported.
    model_config = ConfigDict(
        defer_build=True,
        populate_by_name=True,
        strict=True,
        allow_inf_nan=False,
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
    insecure_for_tests: bool = Field(False, alias="InsecureForTests", description="Skip TLS verification (tests only).")
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
            raise ValueError(f'IPv4 {v!r} is not an IPv4 address (or "none")') from None
        return v

    @field_validator("ipv6")
    @classmethod
    def _ipv6(cls, v: str) -> str:
        if v in ("", "none"):
            return v
        try:
            ipaddress.IPv6Address(v)
        except ValueError:
            raise ValueError(f'IPv6 {v!r} is not an IPv6 address (or "none")') from None
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

    coordinates_problem: SkipJsonSchema[str | None] = Field(None, exclude=True)
    """Why Latitude/Longitude cannot place the region (set by ``_keys`` only; the JSON cannot set it)."""

    @model_validator(mode="before")
    @classmethod
    def _keys(cls, data: Any) -> Any:
        data = _canonical_keys(data, cls)
        if isinstance(data, dict):
            data = {k: v for k, v in data.items() if k != "coordinates_problem"}
            if data.get("Nodes", []) is None:
                data["Nodes"] = []
            problems = []
            for alias, limit in (("Latitude", 90.0), ("Longitude", 180.0)):
                if alias not in data:
                    continue
                why = coordinate_problem(alias, data[alias], limit)
                if why:
                    problems.append(why)
                    data[alias] = 0.0  # the region stays usable; it is just not placed by its coordinates
                else:
                    data[alias] = float(data[alias])
            data["coordinates_problem"] = "; ".join(problems) or None
        return data

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

    @model_validator(mode="after")
    def _node_regions(self) -> DERPRegion:
        for i, node in enumerate(self.nodes):
            if node.region_id != self.region_id:
                raise ValueError(
                    f"Nodes[{i}] ({node.name}) has RegionID {node.region_id} but belongs to region "
                    f"{self.region_id}; set its RegionID to {self.region_id}"
                )
        return self


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
                "RegionScore": {_region_key(k): _float(v) for k, v in data["RegionScore"].items()},
            }
        return data


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
                raise ValueError(f'Regions["{key}"] has RegionID {region.region_id}; it must equal its key {key}')
        return self
