"""JSON Schemas (draft 2020-12) generated from the models, with deterministic output."""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel

DIALECT = "https://json-schema.org/draft/2020-12/schema"
SCHEMA_BASE = "https://github.com/derptool/derptool/schemas/"


def _schema(model: type[BaseModel], *, title: str, description: str, file: str) -> dict[str, Any]:
    body = model.model_json_schema(by_alias=True, mode="validation")
    body.pop("title", None)
    body.pop("description", None)
    out: dict[str, Any] = {
        "$schema": DIALECT,
        "$id": SCHEMA_BASE + file,
        "title": title,
        "description": description,
    }
    out.update(body)
    return out


def policy_json_schema() -> dict[str, Any]:
    """The schema of a tailnet policy file (``policy.hujson``; editors read HuJSON as JSONC)."""
    from derptool.policy.models import Policy

    return _schema(
        Policy,
        title="Tailscale policy file",
        description="Tailnet policy file (policy.hujson) as Tailscale's control plane accepts it. Member names "
        "are matched case-insensitively by the server; the schema lists the documented spelling. Semantic "
        "rules (selectors, ports, declared tags) are checked by `derptool validate`.",
        file="policy.schema.json",
    )


def derpmap_json_schema() -> dict[str, Any]:
    """The schema of a DERP map (``tailcfg.DERPMap``), as served or as a policy ``derpMap``."""
    from derptool.derpmap import DERPMap

    return _schema(
        DERPMap,
        title="Tailscale DERP map",
        description="DERP map with tailcfg names (tailcfg.DERPMap). In a policy file's derpMap a region may be "
        "null to remove it from the default map.",
        file="derpmap.schema.json",
    )


def dumps(schema: dict[str, Any]) -> str:
    """Stable text of a schema: sorted keys, two-space indent, final newline."""
    return json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def schema_files() -> dict[str, str]:
    """File name to text for every schema derptool publishes."""
    return {
        "policy.schema.json": dumps(policy_json_schema()),
        "derpmap.schema.json": dumps(derpmap_json_schema()),
    }
