"""A policy file as the engine reads it: canonical data plus the line of every rule."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from derptool.errors import InputError

Path = tuple[str | int, ...]
SECTIONS = ("acls", "grants", "ssh", "tests", "sshTests")


@dataclass(frozen=True)
class PolicySource:
    """Canonical policy data (documented key spelling), its file name, and the line of each rule."""

    data: dict[str, Any]
    file: str
    lines: dict[Path, int]

    def where(self, path: Path | None) -> str:
        """``file:line`` of a rule (``acls[2]`` style when the line is unknown)."""
        if not path:
            return f"{self.file} (no acls or grants: everything is allowed)"
        key = tuple(path[:2])
        line = self.lines.get(key)
        name = f"{path[0]}[{path[1]}]" if len(path) > 1 else str(path[0])
        return f"{self.file}:{line} {name}" if line else f"{self.file} {name}"


def parse_policy(src: bytes, file: str = "<policy>") -> PolicySource:
    """Decode a policy file; raises :class:`InputError` (with line and column) when it is not HuJSON."""
    from derptool.hujson import HuJSONError
    from derptool.policy.models import Policy
    from derptool.policy.shape import check_shape
    from derptool.policy.validate import decode, locate

    try:
        raw = decode(src)
    except HuJSONError as err:
        raise InputError(err.reason, file=file, line=err.line, column=err.column) from None
    if not isinstance(raw, dict):
        raise InputError("a policy is a JSON object", file=file, line=1, column=1)
    canonical, shape = check_shape(raw, Policy)
    data = dict(canonical) if isinstance(canonical, dict) else {}
    paths: list[Path] = []
    originals: dict[Path, Path] = {}
    for section in SECTIONS:
        items = data.get(section)
        if isinstance(items, list):
            for i in range(len(items)):
                canon: Path = (section, i)
                originals[canon] = shape.original_path(canon)
                paths.append(originals[canon])
    found = locate(src, paths)
    lines = {canon: found[orig][0] for canon, orig in originals.items()}
    return PolicySource(data, file, lines)


def load_policy(path: str) -> PolicySource:
    """Read and decode a policy file (``-`` is stdin)."""
    from derptool.fileio import read_file

    snap = read_file(path)
    return parse_policy(snap.data, str(path))


__all__ = ["PolicySource", "load_policy", "parse_policy"]
