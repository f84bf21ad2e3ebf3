"""Fixtures of the hostile-input tests."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """A scratch directory holding one subdirectory (``adir``), for inputs that are directories."""
    (tmp_path / "adir").mkdir()
    return tmp_path
