"""Hostile output targets: a full standard output or a full disk is one error line, exit 2, nothing lost."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from derptool.cli import app
from tests.support.prereq import missing_root, needs

runner = CliRunner()


def test_stdout_on_a_full_device_is_one_line() -> None:
    """`derptool map > /dev/full` is one error line and exit 2 (not a traceback, not exit 120)."""
    if not os.path.exists("/dev/full"):
        pytest.skip("needs /dev/full")
    with open("/dev/full", "w") as full:
        proc = subprocess.run(
            [sys.executable, "-m", "derptool", "map", "--map", "snapshot"],
            stdout=full,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
        )
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("derptool: error: cannot write")


@needs(missing_root("mounts a small tmpfs to fill"))
@pytest.mark.parametrize("command", ["fmt", "schema"])
def test_disk_full_on_write_commands(tmp_path: Path, command: str) -> None:
    """`fmt --write` and `schema --out` on a full disk: one line, exit 2, original intact."""
    mnt = tmp_path / "tiny"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=12k", "tmpfs", str(mnt)], capture_output=True).returncode:
        pytest.skip("cannot mount tmpfs here")
    try:
        policy = mnt / "policy.hujson"
        original = b'{"acls": [' + b'{"action": "accept", "src": ["*"], "dst": ["*:*"]},' * 100 + b"]}"
        policy.write_bytes(original)
        (mnt / "filler").write_bytes(b"x" * 4096)
        args = ["fmt", "--write", str(policy)] if command == "fmt" else ["schema", "--out", str(mnt)]
        result = runner.invoke(app, args)
        assert result.exit_code == 2, result.output
        lines = result.stderr.splitlines()
        assert len(lines) == 1 and "No space left on device" in lines[0], lines
        assert policy.read_bytes() == original
        assert sorted(p.name for p in mnt.iterdir()) == ["filler", "policy.hujson"]
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)
