"""Hostile command lines: unknown options, bad values and missing arguments are one usage line, exit 2."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.hostile import Files, run_one

USAGE = [
    (["map", "--bogus"], "No such option: --bogus"),
    (["map", "--format", "nope"], "'nope' is not one of"),
    (["latency", "--timeout", "x"], "--timeout"),
    (["nat", "--timeout", "x"], "--timeout"),
    (["check", "--timeout", "x", "h"], "--timeout"),
    (["fmt"], "Missing argument 'FILE'"),
    (["validate"], "Missing argument 'FILE'"),
    (["diff", "a"], "Missing argument 'NEW'"),
    (["omit", "--region"], "requires an argument"),
    (["region", "add"], "derptool region add: Missing option"),
    (["region", "add", "--id", "x"], "derptool region add:"),
    (["region", "nosuch"], "No such command"),
    (["grants"], "derptool grants"),
    (["nosuch"], "No such command 'nosuch'"),
    (["--bogus"], "No such option"),
    (["schema", "--out", "/dev/null"], "/dev/null"),
]


@pytest.mark.parametrize(("args", "mention"), USAGE, ids=[" ".join(a) for a, _ in USAGE])
def test_usage_errors_are_one_line(workdir: Path, args: list[str], mention: str) -> None:
    """Click's three-line block became one `derptool: error:` line, exit 2."""
    run_one(args, Files(workdir), 2, mention)
