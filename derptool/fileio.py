"""Reading user files and writing them back atomically.

A write goes to a temporary file in the same directory, is flushed and fsync'ed, takes the original's
permission bits, and replaces the original with one ``rename``: a crash at any point leaves either the
old file or the new one, never a mix. A write is refused when the file changed on disk since it was read.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import stat
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from derptool.errors import ConcurrentChangeError, InputError


@dataclass(frozen=True)
class FileSnapshot:
    """A file's bytes and the identity of what was read, to detect changes before writing back."""

    path: Path
    data: bytes
    sha256: str
    mode: int | None

    @property
    def name(self) -> str:
        """The path as the user gave it (``-`` for stdin)."""
        return str(self.path)


def read_file(path: str | Path) -> FileSnapshot:
    """Read *path* (``-`` for stdin) or raise :class:`InputError` with one clear line."""
    if str(path) == "-":
        data = sys.stdin.buffer.read()
        return FileSnapshot(Path("-"), data, hashlib.sha256(data).hexdigest(), None)
    p = Path(path)
    try:
        data = p.read_bytes()
        mode = stat.S_IMODE(p.stat().st_mode)
    except FileNotFoundError:
        raise InputError(f"{p}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"{p}: is a directory, expected a file") from None
    except PermissionError:
        raise InputError(f"{p}: permission denied") from None
    except OSError as err:
        raise InputError(f"{p}: cannot read: {err.strerror or err}") from None
    return FileSnapshot(p, data, hashlib.sha256(data).hexdigest(), mode)


def atomic_write(path: str | Path, data: bytes, *, expect: FileSnapshot | None = None) -> None:
    """Replace *path* with *data* atomically, keeping its mode.

    With *expect*, the write is refused (:class:`ConcurrentChangeError`) when the file's content is no
    longer what was read. Errors (read-only directory, missing directory) raise :class:`InputError`.
    """
    p = Path(path)
    if expect is not None:
        try:
            current = p.read_bytes()
        except OSError:
            current = None
        if current is None or hashlib.sha256(current).hexdigest() != expect.sha256:
            raise ConcurrentChangeError(
                f"{p}: the file changed on disk since it was read; nothing was written, run again"
            )
    mode = expect.mode if expect is not None else None
    if mode is None:
        try:
            mode = stat.S_IMODE(p.stat().st_mode)
        except OSError:
            mode = 0o644
    directory = p.parent if str(p.parent) else Path(".")
    if p.exists() and not os.access(p, os.W_OK):
        raise InputError(f"{p}: the file is read-only; nothing was written")
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=directory)
    except OSError as err:
        raise InputError(f"{p}: cannot write in {directory}: {err.strerror or err}") from None
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp_name, mode)
        os.replace(tmp_name, p)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp_name)
        raise
    try:
        dir_fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)
