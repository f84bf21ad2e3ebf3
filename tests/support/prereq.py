"""Prerequisites of the tests that use real parts, and the one rule for when one is missing.

``.ci/run`` installs some prerequisites: root (CI runs as root), the Debian packages listed in
``.ci/apt-packages`` and the Go peers that ``.ci/build-go-peers`` builds. A test missing one of them skips on a
developer's machine, but under ``CI=true`` it fails: a broken install or build must not remove the proofs
that need it while pytest exits 0. Conditions ``.ci/run`` cannot provide (no IPv6 on the host, a file
system without extended attributes) skip everywhere, through :func:`pytest.skip` directly.

Use :func:`need` inside a test or fixture, or :func:`needs` as a mark (``pytestmark = needs(...)``, or a
decorator). Both take the reason a prerequisite is missing, or None when everything is there, from the
``missing_*`` functions here.
"""

from __future__ import annotations

import os
import shutil

import pytest

from tests.support.repo import GO_BIN, REPO

APT_PACKAGES = REPO / ".ci" / "apt-packages"
MARK = "prerequisite"
"""The mark :func:`needs` sets; ``tests/conftest.py`` applies :func:`need` to it before each test."""


def in_ci() -> bool:
    """True under ``CI=true`` (GitHub Actions and most CI services set it)."""
    return os.environ.get("CI", "").lower() == "true"


def need(missing: str | None) -> None:
    """Go on when *missing* is None; otherwise skip, or fail under ``CI=true``, saying what is missing."""
    if missing is None:
        return
    if in_ci():
        pytest.fail(f"CI=true and a prerequisite .ci/run installs is missing: {missing}", pytrace=False)
    pytest.skip(missing)


def needs(missing: str | None) -> pytest.MarkDecorator:
    """The mark form of :func:`need`, checked when each marked test starts."""
    mark: pytest.MarkDecorator = getattr(pytest.mark, MARK)(missing)
    return mark


def apt_packages() -> dict[str, str]:
    """``.ci/apt-packages``: the command each Debian package provides, mapped to the package."""
    table: dict[str, str] = {}
    for line in APT_PACKAGES.read_text(encoding="utf-8").splitlines():
        fields = line.split("#", 1)[0].split()
        if len(fields) == 2:
            table[fields[0]] = fields[1]
    return table


def missing_command(command: str) -> str | None:
    """Why *command* cannot run here, or None; it must be one that ``.ci/apt-packages`` installs."""
    package = apt_packages().get(command)
    if package is None:
        raise ValueError(f"{command!r} is not in .ci/apt-packages: add it there, so that CI installs it")
    if shutil.which(command) is not None:
        return None
    return f"needs {command!r} (Debian package {package}; .ci/run installs it)"


def missing_root(why: str) -> str | None:
    """None when running as root; otherwise a reason naming what root is needed for (*why*)."""
    return None if os.geteuid() == 0 else f"needs root ({why})"


def go_peer(name: str) -> str | None:
    """The path of the Go peer *name*: ``tests/support/go/bin/<name>``, else one on PATH, else None."""
    local = GO_BIN / name
    if local.is_file() and os.access(local, os.X_OK):
        return str(local)
    return shutil.which(name)


def missing_go_peer(name: str) -> str | None:
    """Why the Go peer *name* cannot run here, or None."""
    if go_peer(name) is not None:
        return None
    return f"needs the Go peer {name!r}: run .ci/build-go-peers (it builds every peer into {GO_BIN})"


def first_missing(*reasons: str | None) -> str | None:
    """The first reason that is not None (several prerequisites, one message)."""
    return next((r for r in reasons if r is not None), None)
