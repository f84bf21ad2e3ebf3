"""The DERP map dataclasses and their pydantic mirrors (validation only) stay in step; pydantic loads lazily."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from typing import Any

import pytest
from pydantic import ValidationError

from derptool.derpmap import DERPHomeParams, DERPMap, DERPNode, DERPRegion, _validation
from derptool.derpmap.model import _Model

CLASSES = (DERPNode, DERPRegion, DERPHomeParams, DERPMap)


def _default(f: dataclasses.Field[object]) -> object:
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return None if f.default is dataclasses.MISSING else f.default


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_mirror_has_the_same_fields_names_and_defaults(cls: type[_Model]) -> None:
    mirror = getattr(_validation, cls.__name__)
    assert mirror.__doc__ == cls.__doc__
    # Fields with a tailcfg name; a derived field (coordinates_problem) has none on either side.
    ours = {
        f.name: (f.metadata["alias"], _default(f))
        for f in dataclasses.fields(cls)  # type: ignore[arg-type]
        if "alias" in f.metadata
    }
    theirs = {
        name: (info.alias, None if info.is_required() else info.get_default(call_default_factory=True))
        for name, info in mirror.model_fields.items()
        if info.alias is not None
    }
    assert ours == theirs
    assert list(cls.ALIASES) == [n for n, info in mirror.model_fields.items() if info.alias is not None]
    derived = {f.name for f in dataclasses.fields(cls) if "alias" not in f.metadata}  # type: ignore[arg-type]
    assert derived == {n for n, info in mirror.model_fields.items() if info.alias is None}


def test_constructors_take_field_or_tailcfg_names() -> None:
    region = DERPMap.model_validate({"Regions": {"900": {"RegionID": 900, "RegionCode": "x", "RegionName": "X"}}})
    r900 = region.regions[900]
    assert isinstance(r900, DERPRegion)
    home = DERPHomeParams(RegionScore={900: 0.5})
    assert home == DERPHomeParams({900: 0.5}) == DERPHomeParams(region_score={900: 0.5})
    by_alias = DERPMap(HomeParams=home, Regions={900: r900, 1: None}, omitDefaultRegions=True)
    by_name = DERPMap(home_params=home, regions={900: r900, 1: None}, omit_default_regions=True)
    assert by_alias == by_name
    assert by_alias.to_data()["omitDefaultRegions"] is True
    assert DERPMap() == DERPMap(Regions={}) and DERPMap().regions == {} and DERPMap().home_params is None
    assert DERPMap().regions is not DERPMap().regions


def test_model_validate_reads_any_case_and_returns_the_dataclass() -> None:
    node = DERPNode.model_validate({"name": "a", "regionid": 900, "hostname": "h.test", "stunport": -1})
    assert type(node) is DERPNode
    assert (node.name, node.effective_stun_port) == ("a", None)
    with pytest.raises(ValidationError):
        DERPNode.model_validate({"Name": "a", "RegionID": 900, "HostName": "h.test", "STUNPort": "1"})


def test_policy_model_embeds_the_dataclass_map() -> None:
    from derptool.policy.models import Policy

    regions: dict[str, Any] = {"1": None, "900": {"RegionID": 900, "RegionCode": "x", "RegionName": "X"}}
    policy = Policy.model_validate({"derpMap": {"Regions": regions}})
    assert type(policy.derp_map) is DERPMap
    assert policy.derp_map.is_overlay and policy.derp_map.regions[1] is None
    with pytest.raises(ValidationError, match="RegionID 901"):
        Policy.model_validate({"derpMap": {"Regions": {"900": {**regions["900"], "RegionID": 901}}}})


def test_omit_on_the_bundled_snapshot_imports_no_pydantic() -> None:
    code = (
        "import sys, json\n"
        "sys.argv = ['derptool', 'omit', '--region', 'us', '--map', 'snapshot']\n"
        "from derptool.cli import main\n"
        "try:\n    main()\nexcept SystemExit as e:\n    code = e.code\n"
        "print(json.dumps([m for m in sys.modules if m.startswith('pydantic')]), file=sys.stderr)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert '"RegionID"' in proc.stdout or "Regions" in proc.stdout, proc.stdout + proc.stderr
    assert json.loads(proc.stderr.strip().splitlines()[-1]) == []
