"""The example policies are what the tools produce: formatted like hujson.Format and valid."""

from __future__ import annotations

from pathlib import Path

import pytest

from derptool import hujson
from derptool.policy import validate_bytes
from tests.support import repo

EXAMPLES = sorted(repo.EXAMPLES.glob("*.hujson"))


def test_there_are_examples() -> None:
    assert len(EXAMPLES) >= 3


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_is_formatted_and_valid(path: Path) -> None:
    src = path.read_bytes()
    assert hujson.format(src) == src, f"run: derptool fmt --write {path}"
    assert [p for p in validate_bytes(src, str(path)) if p.severity == "error"] == []
