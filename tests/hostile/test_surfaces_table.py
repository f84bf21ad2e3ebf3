"""docs/input-surfaces.md stays true: every test its table names exists, every row names one, and every module
of the hostile suite is named by some row."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "input-surfaces.md"
_REF = re.compile(r"`(tests/[\w/]+\.py)::(test_\w+)`")


def _rows() -> list[tuple[str, list[tuple[str, str]]]]:
    rows = []
    for line in DOC.read_text(encoding="utf-8").splitlines():
        if not line.startswith("| ") or line.startswith("| Surface") or line.startswith("|---"):
            continue
        cells = [c.strip() for c in line.strip("|").split(" | ")]
        rows.append((cells[0], _REF.findall(cells[-1])))
    return rows


def _functions(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {node.name for node in ast.walk(tree) if isinstance(node, ast.FunctionDef)}


ROWS = _rows()


def test_the_table_has_every_kind_of_surface() -> None:
    names = " ".join(name for name, _ in ROWS)
    for kind in ("Files", "Standard input", "URLs", "Environment", "Options", "Cache", "Network", "Signals"):
        assert kind in names


@pytest.mark.parametrize(("surface", "refs"), ROWS, ids=[name for name, _ in ROWS])
def test_every_row_names_tests_that_exist(surface: str, refs: list[tuple[str, str]]) -> None:
    assert refs, f"{surface}: no test named"
    for path, name in refs:
        file = ROOT / path
        assert file.is_file(), f"{surface}: {path} does not exist"
        assert name in _functions(file), f"{surface}: {path} has no {name}"


def test_every_hostile_module_is_in_the_table() -> None:
    named = {path for _, refs in ROWS for path, _ in refs}
    here = Path(__file__).resolve().parent
    for module in sorted(here.glob("test_*.py")):
        if module.name == Path(__file__).name:
            continue
        assert f"tests/hostile/{module.name}" in named, f"{module.name} is in no row of {DOC.name}"
