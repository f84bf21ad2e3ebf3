"""The DERP map: tailcfg's types (:mod:`.model`), where maps come from (:mod:`.sources`), headscale's YAML
(:mod:`.headscale`), region geography and selectors (:mod:`.geo`) and map comparison (:mod:`.diff`).

The package re-exports the model, so ``from derptool.derpmap import DERPMap`` reads as the domain does.
"""

from derptool.derpmap.model import (
    CUSTOM_REGION_IDS,
    DEFAULT_DERP_PORT,
    DEFAULT_STUN_PORT,
    MAX_REGION_ID,
    DERPHomeParams,
    DERPMap,
    DERPNode,
    DERPRegion,
    MapProblem,
    format_location,
    is_ip,
    is_valid_hostname,
    merge,
    problems_from_validation,
    semantic_problems,
)
from derptool.derpmap.parse import parse_derpmap

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
    "parse_derpmap",
    "problems_from_validation",
    "semantic_problems",
]
