"""The policy's own ``tests`` and ``sshTests``: which pass before and fail after, and the reverse.

Every test of either file is run against both compiled policies, so a test the change deletes still shows
what the change breaks. Tests are matched by content; a test present in both files is reported at its
place in the new one.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from derptool.policy.engine.diff.view import PolicyView

SECTIONS = ("tests", "sshTests")


@dataclass(frozen=True, order=True)
class TestChange:
    """A test whose verdict changes: where it is written and the failure on the side where it fails."""

    section: str
    index: int
    side: str  # "new" when the test is in the new file, else "old"
    message: str

    @property
    def name(self) -> str:
        """``tests[2]``."""
        return f"{self.section}[{self.index}]"

    def to_json(self) -> dict[str, Any]:
        """``{"test", "file", "message"}`` (``file``: ``old`` or ``new``)."""
        return {"test": self.name, "file": self.side, "message": self.message}


def _tests(policy: Mapping[str, Any], section: str) -> list[Any]:
    value = policy.get(section)
    return [t for t in value if isinstance(t, Mapping)] if isinstance(value, list) else []


def diff_tests(
    old: PolicyView, new: PolicyView, old_policy: Mapping[str, Any], new_policy: Mapping[str, Any]
) -> tuple[list[TestChange], list[TestChange]]:
    """``(newly failing, newly passing)`` tests."""
    union: dict[str, list[Any]] = {}
    where: dict[tuple[str, int], tuple[int, str]] = {}
    for section in SECTIONS:
        tests = list(_tests(new_policy, section))
        seen = {json.dumps(t, sort_keys=True) for t in tests}
        for i in range(len(tests)):
            where[(section, i)] = (i, "new")
        for j, t in enumerate(_tests(old_policy, section)):
            if json.dumps(t, sort_keys=True) not in seen:
                where[(section, len(tests))] = (j, "old")
                tests.append(t)
        union[section] = tests
    if not union["tests"] and not union["sshTests"]:
        return [], []
    before = old.failing_tests(union["tests"], union["sshTests"])
    after = new.failing_tests(union["tests"], union["sshTests"])
    failing, passing = [], []
    for key in sorted(where):
        index, side = where[key]
        fixed = f"{key[0]}[{key[1]}]"
        named = f"{key[0]}[{index}]" + (" of the old file" if side == "old" else "")
        if key in after and key not in before:
            failing.append(TestChange(key[0], index, side, after[key].replace(fixed, named, 1)))
        elif key in before and key not in after:
            passing.append(TestChange(key[0], index, side, before[key].replace(fixed, named, 1)))
    return failing, passing


__all__ = ["TestChange", "diff_tests"]
