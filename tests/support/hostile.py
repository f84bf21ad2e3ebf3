"""Running a command on hostile input: one error line, the documented exit code, the user's files unchanged."""

from __future__ import annotations

import hashlib
import stat
from dataclasses import dataclass
from pathlib import Path

from typer.testing import CliRunner

from derptool.cli import app

runner = CliRunner()


@dataclass
class Files:
    """Every file in a directory, by content and kind, to prove nothing was changed."""

    root: Path

    def state(self) -> dict[str, tuple[str, str]]:
        out: dict[str, tuple[str, str]] = {}
        for p in sorted(self.root.rglob("*")):
            st = p.lstat()
            if stat.S_ISREG(st.st_mode) and st.st_size < 1 << 20:
                out[p.name] = ("file", hashlib.sha256(p.read_bytes()).hexdigest())
            elif stat.S_ISREG(st.st_mode):
                out[p.name] = ("file", str(st.st_size))
            else:
                out[p.name] = (stat.filemode(st.st_mode)[0], "")
        return out


def run_one(args: list[str], files: Files, exit_code: int, mention: str) -> None:
    """Run ``derptool ARGS`` in-process: one ``derptool: error:`` line naming *mention*, *exit_code*, no file
    under *files* changed."""
    before = files.state()
    result = runner.invoke(app, args)
    lines = result.stderr.splitlines()
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        f"{args}: {type(result.exception).__name__}: {result.exception}"
    )
    assert "Traceback" not in result.stderr
    assert len(lines) == 1, f"{args}: {lines}"
    assert lines[0].startswith("derptool: error: "), lines[0]
    assert mention in lines[0], lines[0]
    assert result.exit_code == exit_code, f"{args}: exit {result.exit_code}: {lines[0]}"
    assert files.state() == before, f"{args} changed the user's files"
