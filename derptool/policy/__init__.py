"""Tailscale policy files: models, semantic checks and validation with file positions.

``validate_bytes(src, file)`` and ``validate_files(paths)`` return :class:`Problem` values; nothing here
prints. :func:`policy_json_schema` and :func:`derpmap_json_schema` give the JSON Schemas of the models.
"""

from __future__ import annotations

from derptool.policy.models import Policy
from derptool.policy.problems import Problem, Severity, json_pointer
from derptool.policy.schema import derpmap_json_schema, policy_json_schema
from derptool.policy.validate import validate_bytes, validate_files

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
