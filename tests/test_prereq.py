"""The prerequisite rule: a missing part .ci/run installs skips on a developer's machine and fails under CI=true."""

from __future__ import annotations

import pytest

from tests.support import prereq
from tests.support.repo import GO_BIN


def test_nothing_missing_goes_on(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    prereq.need(None)


def test_missing_skips_outside_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="needs 'x'"):
        prereq.need("needs 'x'")


@pytest.mark.parametrize("value", ["true", "True"])
def test_missing_fails_under_ci(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("CI", value)
    with pytest.raises(pytest.fail.Exception, match=r"CI=true .*: needs 'x'"):
        prereq.need("needs 'x'")


def test_every_apt_package_line_is_read() -> None:
    lines = [
        line.split()
        for line in prereq.APT_PACKAGES.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert lines and all(len(fields) == 2 for fields in lines)
    assert prereq.apt_packages() == {cmd: pkg for cmd, pkg in lines}


def test_a_listed_command_names_its_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    assert prereq.missing_command("turnserver") == "needs 'turnserver' (Debian package coturn; .ci/run installs it)"


def test_a_command_ci_does_not_install_is_refused() -> None:
    """A test may only rely on a command .ci/apt-packages lists, so CI cannot silently lack it."""
    with pytest.raises(ValueError, match=r"not in \.ci/apt-packages"):
        prereq.missing_command("no-such-tool")


def test_a_go_peer_is_looked_for_where_the_build_puts_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    missing = prereq.missing_go_peer("no-such-peer")
    assert missing is not None and ".ci/build-go-peers" in missing and str(GO_BIN) in missing
    assert prereq.first_missing(None, missing, "later") == missing
    assert prereq.first_missing(None, None) is None
