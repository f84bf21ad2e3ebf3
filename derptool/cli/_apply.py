"""The I/O around ``--apply FILE``: read, edit (a pure library call), show a diff or write atomically."""

from __future__ import annotations

import difflib
from pathlib import Path

import typer

from derptool.apply import Editor
from derptool.cli._common import warn


def unified_diff(old: bytes, new: bytes, name: str) -> str:
    """A unified diff of two versions of a file (empty when they are equal)."""
    a = old.decode("utf-8", "replace").splitlines(keepends=True)
    b = new.decode("utf-8", "replace").splitlines(keepends=True)
    prefix = ("", "") if name.startswith("/") else ("a/", "b/")
    lines = list(difflib.unified_diff(a, b, fromfile=f"{prefix[0]}{name}", tofile=f"{prefix[1]}{name}"))
    return "".join(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n" for line in lines)


def refuse_stdin(path: Path) -> None:
    """``--apply -`` makes no sense: there is no file to write back."""
    if str(path) == "-":
        from derptool.errors import UsageError

        raise UsageError("--apply needs the path of a policy file to edit in place, not '-' (stdin)")


def run_apply(path: Path, edit: Editor, *, diff: bool) -> None:
    """Apply *edit* to the policy file *path*: print a diff (``diff``) or write it back atomically.

    The write is refused (exit 1) when the file changed on disk since it was read.
    """
    from derptool.errors import InputError
    from derptool.fileio import atomic_write, read_file

    refuse_stdin(path)
    snap = read_file(path)
    result = edit(snap.data, str(path))
    for note in result.notes:
        warn(note)
    if diff:
        text = unified_diff(snap.data, result.new_bytes, str(path))
        if text:
            typer.echo(text, nl=False)
        warn(f"{result.summary} (--diff: nothing written)" if result.changed else result.summary)
        return
    if not result.changed:
        typer.echo(f"{result.summary}; file not written")
        return
    try:
        atomic_write(path, result.new_bytes, expect=snap)
    except OSError as err:
        raise InputError(f"{path}: cannot write: {err.strerror or err}; the file was left unchanged") from None
    typer.echo(f"{result.summary}; written")
