"""A policy file as the engine reads it: canonical data plus the line of every rule."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from derptool._types import JsonPath
from derptool.errors import InputError
from derptool.fileio import read_file
from derptool.policy.problems import locate
from derptool.policy.shape import check_shape, policy_spec

SECTIONS = ("acls", "grants", "ssh", "tests", "sshTests")


@dataclass
class PolicySource:
    """Canonical policy data (documented key spelling), its file name, and the line of each rule."""

    data: dict[str, Any]
    file: str
    src: bytes = b""
    originals: dict[JsonPath, JsonPath] = field(default_factory=dict)

    @cached_property
    def lines(self) -> dict[JsonPath, int]:
        """The line of each rule, ``(section, index)`` -> line (found when first asked for)."""
        found = locate(self.src, list(self.originals.values()))
        return {canon: found[orig][0] for canon, orig in self.originals.items()}

    def where(self, path: JsonPath | None) -> str:
        """``file:line`` of a rule (``acls[2]`` style when the line is unknown)."""
        if not path:
            return f"{self.file} (no acls or grants: everything is allowed)"
        key = tuple(path[:2])
        line = self.lines.get(key)
        name = f"{path[0]}[{path[1]}]" if len(path) > 1 else str(path[0])
        return f"{self.file}:{line} {name}" if line else f"{self.file} {name}"


def parse_policy(src: bytes, file: str = "<policy>") -> PolicySource:
    """Decode a policy file; raises :class:`InputError` (with line and column) when it is not HuJSON.

    The data is canonicalised by :func:`~derptool.policy.shape.check_shape` (member names matched as Tailscale
    matches them, ``null`` members dropped) but not validated: ``derptool validate`` reports what is wrong, and a
    value of the wrong type is left out of what the engine reads.
    """
    try:
        raw = json.loads(src)  # plain JSON: no need for the HuJSON parser
    except ValueError:
        # lazy: importing hujson costs more start-up than the whole engine, and plain JSON needs none
        from derptool.hujson import HuJSONError, standardize

        try:
            raw = json.loads(standardize(src).decode("utf-8", "replace"))
        except HuJSONError as err:
            raise InputError(err.reason, file=file, line=err.line, column=err.column) from None
        except ValueError as err:
            raise InputError(f"not JSON: {err}", file=file) from None
    if not isinstance(raw, dict):
        raise InputError("a policy is a JSON object", file=file, line=1, column=1)
    data, shape = check_shape(raw, policy_spec())
    originals: dict[JsonPath, JsonPath] = {}
    for section in SECTIONS:
        items = data.get(section)
        if isinstance(items, list):
            for i in range(len(items)):
                originals[(section, i)] = shape.original_path((section, i))
    return PolicySource(data, file, src, originals)


def load_policy(path: str) -> PolicySource:
    """Read and decode a policy file (``-`` is stdin)."""
    snap = read_file(path)
    return parse_policy(snap.data, str(path))


__all__ = ["PolicySource", "load_policy", "parse_policy"]
