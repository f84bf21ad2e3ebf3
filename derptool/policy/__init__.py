"""Tailscale policy files: models, semantic checks and validation with file positions.

``validate_bytes(src, file)`` and ``validate_files(paths)`` return :class:`Problem` values; nothing here
prints. :func:`policy_json_schema` and :func:`derpmap_json_schema` give the JSON Schemas of the models.
The names are imported on first use, so that the policy engine (:mod:`derptool.policy.engine`) starts
without loading the pydantic models it does not need.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from derptool._types import json_pointer
    from derptool.policy.models import Policy
    from derptool.policy.problems import Problem, Severity
    from derptool.policy.schema import derpmap_json_schema, policy_json_schema
    from derptool.policy.validate import validate_bytes, validate_files

_HOMES = {
    "Policy": "derptool.policy.models",
    "Problem": "derptool.policy.problems",
    "Severity": "derptool.policy.problems",
    "json_pointer": "derptool._types",
    "derpmap_json_schema": "derptool.policy.schema",
    "policy_json_schema": "derptool.policy.schema",
    "validate_bytes": "derptool.policy.validate",
    "validate_files": "derptool.policy.validate",
}


def __getattr__(name: str) -> Any:
    if name in _HOMES:
        return getattr(importlib.import_module(_HOMES[name]), name)
    raise AttributeError(f"module 'derptool.policy' has no attribute {name!r}")


__all__ = [
    "Policy",
    "Problem",
    "Severity",
    "derpmap_json_schema",
    "json_pointer",
    "policy_json_schema",
    "validate_bytes",
    "validate_files",
]
