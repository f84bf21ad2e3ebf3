"""The I/O around ``--apply FILE``: read, edit (a pure library call), show a diff or write atomically."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from derptool.cli._errors import warn
from derptool.cli._output import unified_diff
from derptool.errors import InputError, UsageError

if TYPE_CHECKING:  # the types only: a command without --apply imports neither
    from derptool.edit.document import ApplyResult, Editor
    from derptool.fileio import FileSnapshot


def edit_diff(old: bytes, new: bytes, name: str) -> str:
    """The ``--diff`` of an edit: ``a/NAME`` and ``b/NAME`` headers (the bare path when it is absolute)."""
    prefix = ("", "") if name.startswith("/") else ("a/", "b/")
    return unified_diff(old, new, f"{prefix[0]}{name}", f"{prefix[1]}{name}")


def refuse_stdin(path: Path) -> None:
    """``--apply -`` makes no sense: there is no file to write back."""
    if str(path) == "-":
        raise UsageError("--apply needs the path of a policy file to edit in place, not '-' (stdin)")


def require_apply(apply: Path | None, **flags: bool) -> None:
    """Options such as ``--diff`` and ``--replace`` make sense only with ``--apply FILE``."""
    for name, given in flags.items():
        if given and apply is None:
            raise UsageError(f"--{name} needs --apply FILE (the policy file to edit)")


def read_policy(path: Path) -> FileSnapshot:
    """Read the policy file ``--apply`` names (stdin refused)."""
    from derptool.fileio import read_file  # lazy: fileio (hashlib) is not needed for --help

    refuse_stdin(path)
    return read_file(path)


def run_apply(path: Path, edit: Editor, *, diff: bool) -> None:
    """Read the policy file *path*, run *edit* on it and show or write the result (:func:`show_or_write`)."""
    snap = read_policy(path)
    show_or_write(path, snap, edit(snap.data, str(path)), diff=diff)


def show_or_write(path: Path, snap: FileSnapshot, result: ApplyResult, *, diff: bool) -> None:
    """Warn the result's notes, then print a diff (``diff``) or write the file back atomically.

    *snap* is the file as read for the edit: the write is refused (exit 1) when the file changed on disk
    since, and (exit 2) when the edit would add a validation error.
    """
    from derptool.edit.document import refuse_new_errors  # lazy: the validator is heavy
    from derptool.fileio import atomic_write  # lazy: fileio (hashlib) is not needed for --help

    if result.changed:
        refuse_new_errors(snap.data, result.new_bytes, str(path))
    for note in result.notes:
        warn(note)
    if diff:
        text = edit_diff(snap.data, result.new_bytes, str(path))
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
