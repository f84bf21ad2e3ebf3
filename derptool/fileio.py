"""Reading user files (size cap, encoding, nesting and number limits) and the one atomic, identity-keeping write.

Reading: :func:`read_file` reads at most :data:`MAX_FILE_BYTES` (``/dev/zero`` or a huge file is refused, not
read), refuses text in UTF-16/UTF-32 or with a byte-order mark (Tailscale reads UTF-8 without one) unless asked
to keep it, and refuses documents nested deeper than :data:`MAX_DEPTH` or holding a number longer than
:data:`MAX_NUMBER_CHARS` (:func:`check_document_limits`). Every failure is an :class:`InputError`: one line.

Writing: :func:`atomic_write` writes a temporary file ``.NAME.derptool-PID-XXXX.tmp`` next to the target,
fsyncs it, gives it the target's owner, group, mode and extended attributes, and renames it over the target:
a crash leaves the old file or the new one, never a mix, and a temporary file left by a killed run is removed
by the next write to the same file. A symlink is written through (the link stays, its target changes).
Hard-linked files (unless ``force``), FIFOs, devices and read-only files are refused. With ``expect`` (the
snapshot the edit started from), the content is compared once more after the temporary file is on disk, and
the file's identity (inode, size, timestamps) once more immediately before the rename; what remains is the
few microseconds between that last ``stat`` and the ``rename``, as with any editor that saves by renaming.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import stat
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from derptool.errors import ConcurrentChangeError, InputError, LimitError

MAX_FILE_BYTES = 16 * 1024 * 1024
"""Largest user file read (policy, map, YAML): 16 MiB; Tailscale's own policy limit is far smaller."""
MAX_DEPTH = 10_000
"""Deepest nesting of arrays and objects accepted, as Go's ``encoding/json``."""
MAX_NUMBER_CHARS = 4_300
"""Longest number literal accepted: Python's limit for converting digits to an ``int``."""
MAX_ENTRIES = 100_000
"""Most object members plus array elements in one document (counted as the commas between them, so a
trailing comma counts too): past it, checks and edits would take minutes (docs/input-surfaces.md has the time
and memory bound at the limit), so the document is refused at once instead."""
STALE_TMP_SECONDS = 3600
"""A temporary file of a process that is gone, or older than this, is removed by the next write."""


@dataclass(frozen=True)
class FileSnapshot:
    """A file's bytes and the identity of what was read, to detect changes before writing back."""

    path: Path
    data: bytes
    mode: int | None
    identity: tuple[int, int, int, int, int] | None = None
    """``(st_dev, st_ino, st_size, st_mtime_ns, st_ctime_ns)`` when read (None for stdin)."""

    @property
    def name(self) -> str:
        """The path as the user gave it (``-`` for stdin)."""
        return str(self.path)


def _identity(st: os.stat_result) -> tuple[int, int, int, int, int]:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


# -- reading ---------------------------------------------------------------------------------------


def _read_capped(fh: BinaryIO, name: str, limit: int) -> bytes:
    read = fh.read
    chunks: list[bytes] = []
    total = 0
    while True:
        chunk = read(min(1 << 20, limit + 1 - total))
        if not chunk:
            break
        chunks.append(chunk)
        total += len(chunk)
        if total > limit:
            raise LimitError(f"{name}: larger than the {_mib(limit)} derptool reads; is it the right file?")
    return b"".join(chunks)


def _mib(n: int) -> str:
    return f"{n // (1024 * 1024)} MiB" if n >= 1024 * 1024 else f"{n} bytes"


def _os_error(p: object, err: OSError, verb: str = "cannot read") -> InputError:
    if err.errno == errno.ENOENT:
        return InputError(f"{p}: no such file")
    if err.errno == errno.EISDIR:
        return InputError(f"{p}: is a directory, expected a file")
    if err.errno in (errno.EACCES, errno.EPERM):
        return InputError(f"{p}: permission denied")
    return InputError(f"{p}: {verb}: {err.strerror or err}")


def read_file(path: str | Path, *, limit: int = MAX_FILE_BYTES, raw: bool = False) -> FileSnapshot:
    """Read *path* (``-`` for stdin) or raise :class:`InputError` with one clear line.

    At most *limit* bytes are read. Unless *raw* (the caller decodes and checks the bytes itself), text that is
    not plain UTF-8 (a byte-order mark, UTF-16, UTF-32) is refused with a line naming its encoding, and so is a
    document past the nesting and number limits (:func:`check_document_limits`).
    """
    if str(path) == "-":
        data = _read_capped(sys.stdin.buffer, "<stdin>", limit)
        snap = FileSnapshot(Path("-"), data, None)
        name = "<stdin>"
    else:
        p = Path(path)
        try:
            with open(p, "rb") as fh:
                st = os.fstat(fh.fileno())
                if stat.S_ISDIR(st.st_mode):
                    raise InputError(f"{p}: is a directory, expected a file")
                if stat.S_ISREG(st.st_mode) and st.st_size > limit:
                    raise LimitError(
                        f"{p}: {st.st_size} bytes, larger than the {_mib(limit)} derptool reads; is it the right file?"
                    )
                data = _read_capped(fh, str(p), limit)
        except OSError as err:
            raise _os_error(p, err) from None
        snap = FileSnapshot(
            p,
            data,
            stat.S_IMODE(st.st_mode),
            _identity(st) if stat.S_ISREG(st.st_mode) else None,
        )
        name = str(p)
    if not raw:
        problem = encoding_problem(snap.data)
        if problem is not None:
            raise InputError(f"{name}: {problem}")
        check_document_limits(snap.data, name)
    return snap


def read_regular(path: str | Path, *, limit: int = MAX_FILE_BYTES) -> bytes:
    """The bytes of *path* when it is a regular file of at most *limit* bytes, else :class:`InputError`.

    For files derptool finds rather than the user names (the cache): a FIFO, device or socket is refused
    without blocking (the file is opened non-blocking and checked before any read).
    """
    p = Path(path)
    try:
        fd = os.open(p, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as err:
        raise _os_error(p, err) from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise InputError(f"{p}: not a regular file (a FIFO, device, socket or directory); not read")
        if st.st_size > limit:
            raise LimitError(f"{p}: {st.st_size} bytes, larger than the {_mib(limit)} derptool reads")
        with os.fdopen(fd, "rb", closefd=False) as fh:
            return _read_capped(fh, str(p), limit)
    except OSError as err:
        raise _os_error(p, err) from None
    finally:
        os.close(fd)


# -- encoding --------------------------------------------------------------------------------------

_BOMS = (
    (b"\x00\x00\xfe\xff", "UTF-32 BE"),
    (b"\xff\xfe\x00\x00", "UTF-32 LE"),
    (b"\xef\xbb\xbf", "UTF-8 with a byte-order mark"),
    (b"\xfe\xff", "UTF-16 BE"),
    (b"\xff\xfe", "UTF-16 LE"),
)


def sniff_encoding(data: bytes) -> str | None:
    """The name of *data*'s encoding when it is not plain UTF-8 (by byte-order mark, or by the zero bytes of
    UTF-16/32 text without one); None for plain UTF-8 (or anything else)."""
    for bom, name in _BOMS:
        if data.startswith(bom):
            return name
    head = data[:4]
    if len(head) == 4:
        if head[0] == 0 and head[1] == 0 and head[2] == 0 and head[3]:
            return "UTF-32 BE"
        if head[0] and head[1] == 0 and head[2] == 0 and head[3] == 0:
            return "UTF-32 LE"
    if len(head) >= 2:
        if head[0] == 0 and head[1]:
            return "UTF-16 BE"
        if head[0] and head[1] == 0:
            return "UTF-16 LE"
    return None


def encoding_problem(data: bytes) -> str | None:
    """A one-line description of why *data* is not UTF-8 as Tailscale reads it, with the fix; None when it is."""
    enc = sniff_encoding(data)
    if enc is None:
        return None
    if enc.startswith("UTF-8"):
        return (
            "starts with a UTF-8 byte-order mark, which Tailscale does not accept; remove it "
            "(e.g. sed -i '1s/^\\xEF\\xBB\\xBF//' FILE)"
        )
    return f"is {enc} text; derptool and Tailscale read UTF-8: convert it (e.g. iconv -f {enc.split()[0]} -t UTF-8)"


def to_utf8(data: bytes) -> bytes:
    """*data* as UTF-8 without a byte-order mark (UTF-16/32 and BOMs detected by :func:`sniff_encoding`)."""
    enc = sniff_encoding(data)
    if enc is None:
        return data
    codec = {
        "UTF-8 with a byte-order mark": "utf-8-sig",
        "UTF-16 BE": "utf-16-be",
        "UTF-16 LE": "utf-16-le",
        "UTF-32 BE": "utf-32-be",
        "UTF-32 LE": "utf-32-le",
    }[enc]
    for bom, _ in _BOMS:
        if data.startswith(bom) and not codec.startswith("utf-8"):
            data = data[len(bom) :]
            break
    try:
        return data.decode(codec).encode("utf-8")
    except UnicodeDecodeError as err:
        raise InputError(f"looks like {enc} text but is not valid {enc}: {err.reason}") from None


# -- nesting and number limits ---------------------------------------------------------------------

_TOKEN = re.compile(rb'"(?:[^"\\\n]|\\.)*"?|//[^\n]*|/\*(?:[^*]|\*(?!/))*(?:\*/)?|#[^\n]*|[\[\]{},]|-?[0-9][0-9.eE+-]*')
_NUMBER_CHARS_AS_ZERO = bytes(0x30 if b in b"0123456789.eE+-" else 0x20 for b in range(256))


def _line_col(data: bytes, offset: int) -> tuple[int, int]:
    line = data.count(b"\n", 0, offset) + 1
    return line, offset - (data.rfind(b"\n", 0, offset) + 1) + 1


_STRING_OR_COMMENT = re.compile(rb'"[^"\\\n]*(?:\\.[^"\\\n]*)*"?|//[^\n]*|/\*(?:[^*]|\*(?!/))*(?:\*/)?|#[^\n]*')
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_NOT_BRACKETS_OR_QUOTES = bytes(b for b in range(256) if b not in b'[]{}"')
_BRACKETS_AS_SQUARE = bytes.maketrans(b"{}", b"[]")


_CHUNK = 1 << 20


def _brackets(data: bytes) -> bytes:
    """The brackets of *data* outside strings and comments, ``{}`` read as ``[]``.

    The text is read in pieces of about :data:`_CHUNK` bytes cut after a line end (a string or a line comment
    ends at one) and never inside a block comment, so the memory this takes is a few times a piece, not a few
    times the file (a 10 MB policy has a million strings).
    """
    plain = not (b"\\" in data or b"//" in data or b"/*" in data or b"#" in data)
    out = []
    start = 0
    while start < len(data):
        end = _cut(data, start + _CHUNK)
        while not plain and _open_comment(data, start, end):
            close = data.find(b"*/", end)
            end = len(data) if close < 0 else _cut(data, close + 2)
        piece = data[start:end]
        start = end
        if plain and piece.count(b'"') % 2 == 0:  # no escapes, no comments: quotes open and close strings in turn
            # Of brackets and quotes only, removing "" pairs left to right leaves no quote exactly when no string
            # holds a bracket (such a string keeps its opening quote): what is left is then outside strings.
            kept = piece.translate(_BRACKETS_AS_SQUARE, _NOT_BRACKETS_OR_QUOTES).replace(b'""', b"")
            if b'"' not in kept:
                out.append(kept)
                continue
            text = b"".join(piece.split(b'"')[0::2])
        else:
            text = _STRING_OR_COMMENT.sub(b"", piece)
        out.append(text.translate(_BRACKETS_AS_SQUARE, _NOT_BRACKETS))
    return b"".join(out)


def _cut(data: bytes, at: int) -> int:
    """The offset just after the first line end at or after *at* (the end of *data* when there is none)."""
    nl = data.find(b"\n", at)
    return len(data) if nl < 0 else nl + 1


def _open_comment(data: bytes, start: int, end: int) -> bool:
    """Whether a block comment may still be open at *end* (a ``/*`` after the last ``*/``; one inside a string
    or a line comment only makes the piece longer)."""
    return data.rfind(b"/*", start, end) > data.rfind(b"*/", start, end)


def _shallow(data: bytes, max_depth: int) -> bool:
    """Whether *data* surely nests no deeper than *max_depth*, found at C speed: with strings and comments
    gone, only brackets kept and every innermost ``[]`` pair removed once per level, nothing may be left
    after *max_depth* rounds. False means "maybe deeper" (or unbalanced): the token scan decides."""
    brackets = _brackets(data)
    for _ in range(max_depth):
        if not brackets:
            return True
        shorter = brackets.replace(b"[]", b"")
        if len(shorter) == len(brackets):
            return False
        brackets = shorter
    return not brackets


def check_document_limits(
    data: bytes,
    name: str,
    *,
    max_depth: int = MAX_DEPTH,
    max_number: int = MAX_NUMBER_CHARS,
    max_entries: int = MAX_ENTRIES,
) -> None:
    """Raise :class:`LimitError` (``name:line:col: ...``) when *data* (JSON, HuJSON or YAML flow style) nests
    arrays and objects deeper than *max_depth*, holds a number longer than *max_number* characters, or more than
    *max_entries* object members and array elements (:data:`MAX_ENTRIES`).

    Brackets and digits inside strings and comments do not count. The full scan runs only when a cheap count
    shows the limit could be passed, so ordinary files cost a few ``bytes.count`` calls.
    """
    maybe_deep = data.count(b"[") + data.count(b"{") > max_depth and not _shallow(data, max_depth)
    maybe_long = max_number == MAX_NUMBER_CHARS and b"0" * (max_number + 1) in data.translate(_NUMBER_CHARS_AS_ZERO)
    maybe_many = data.count(b",") > max_entries
    if not (maybe_deep or maybe_long or maybe_many or max_number != MAX_NUMBER_CHARS):
        return
    depth = 0
    entries = 0
    for m in _TOKEN.finditer(data):
        tok = m.group()
        first = tok[:1]
        if first == b",":
            entries += 1
            if entries > max_entries:
                line, col = _line_col(data, m.start())
                raise LimitError(
                    f"more than the {max_entries} object members and array elements derptool reads in one "
                    "document (checks and edits of more would take minutes); split the file, or is it the "
                    "right file?",
                    file=name,
                    line=line,
                    column=col,
                )
        elif first in (b"[", b"{"):
            depth += 1
            if depth > max_depth:
                line, col = _line_col(data, m.start())
                raise LimitError(
                    f"nested deeper than the {max_depth} levels derptool reads (as Go's encoding/json)",
                    file=name,
                    line=line,
                    column=col,
                )
        elif first in (b"]", b"}"):
            depth = max(0, depth - 1)
        elif (first.isdigit() or first == b"-") and len(tok) > max_number:
            line, col = _line_col(data, m.start())
            raise LimitError(
                f"a number of {len(tok)} characters; derptool reads numbers of at most {max_number}",
                file=name,
                line=line,
                column=col,
            )


@contextlib.contextmanager
def room_for_depth() -> Iterator[None]:
    """Raise the interpreter's recursion limit, for the block, enough to decode :data:`MAX_DEPTH` levels."""
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(max(old, 4 * MAX_DEPTH + 1000))
    try:
        yield
    finally:
        sys.setrecursionlimit(old)


# -- writing ---------------------------------------------------------------------------------------


def _tmp_prefix(name: str) -> str:
    return f".{name}.derptool-"


def _clean_stale(directory: Path, name: str) -> None:
    """Remove temporary files a killed earlier write to *name* left behind."""
    prefix = _tmp_prefix(name)
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return
    now = time.time()
    for entry in entries:
        if not (entry.name.startswith(prefix) and entry.name.endswith(".tmp")):
            continue
        pid_text = entry.name[len(prefix) :].split("-", 1)[0]
        alive = False
        if pid_text.isdigit() and int(pid_text) != os.getpid():
            try:
                os.kill(int(pid_text), 0)
                alive = True
            except ProcessLookupError:
                alive = False
            except OSError:
                alive = True
        try:
            old = now - entry.stat(follow_symlinks=False).st_mtime > STALE_TMP_SECONDS
            if not alive or old:
                os.unlink(entry.path)
        except OSError:
            pass


def _resolve_target(p: Path) -> Path:
    """The file to replace: *p* itself, or the file its symlink chain points to (the links stay)."""
    if not p.is_symlink():
        return p
    target = Path(os.path.realpath(p))
    if not target.exists():
        raise InputError(f"{p}: a symlink to {target}, which does not exist; nothing was written")
    return target


def _refuse_kind(p: Path, st: os.stat_result, *, force: bool) -> None:
    if stat.S_ISDIR(st.st_mode):
        raise InputError(f"{p}: is a directory, expected a file; nothing was written")
    if stat.S_ISFIFO(st.st_mode):
        raise InputError(f"{p}: is a FIFO (named pipe), not a file that can be rewritten; nothing was written")
    if not stat.S_ISREG(st.st_mode):
        raise InputError(f"{p}: is a device or socket, not a regular file; nothing was written")
    if st.st_nlink > 1 and not force:
        raise InputError(
            f"{p}: has {st.st_nlink} hard links, which a rewrite would separate; nothing was written "
            "(edit a copy, or force the write)"
        )
    if not st.st_mode & 0o222 or not os.access(p, os.W_OK):
        raise InputError(f"{p}: the file is read-only; nothing was written")


def _copy_identity(fd: int, target: Path, st: os.stat_result) -> None:
    """Give the temporary file *fd* the owner, group, mode and extended attributes of *target*."""
    if (st.st_uid, st.st_gid) != (os.geteuid(), os.getegid()):
        try:
            os.fchown(fd, st.st_uid, st.st_gid)
        except PermissionError:
            raise InputError(
                f"{target}: owned by another user or group, which a rewrite by this user cannot keep; "
                "nothing was written"
            ) from None
    os.fchmod(fd, stat.S_IMODE(st.st_mode))
    if not hasattr(os, "listxattr"):
        return
    try:
        names = os.listxattr(target)
    except OSError as err:
        if err.errno in (errno.ENOTSUP, errno.EOPNOTSUPP):
            return
        raise
    for attr in names:
        try:
            os.setxattr(fd, attr, os.getxattr(target, attr))
        except OSError as err:
            raise InputError(
                f"{target}: cannot keep its extended attribute {attr} ({err.strerror}); nothing was written"
            ) from None


def _changed(p: Path) -> ConcurrentChangeError:
    return ConcurrentChangeError(f"{p}: the file changed on disk since it was read; nothing was written, run again")


def _recheck_content(target: Path, display: Path, expect: FileSnapshot) -> tuple[int, int, int, int, int]:
    """Compare *target*'s content with *expect*; return the identity it had while read."""
    try:
        with open(target, "rb") as fh:
            st = os.fstat(fh.fileno())
            current = _read_capped(fh, str(target), max(MAX_FILE_BYTES, len(expect.data)))
    except (OSError, InputError):
        raise _changed(display) from None
    if current != expect.data:
        raise _changed(display)
    return _identity(st)


def atomic_write(path: str | Path, data: bytes, *, expect: FileSnapshot | None = None, force: bool = False) -> None:
    """Replace *path* with *data* atomically, keeping the file's identity (see the module docstring).

    With *expect*, the write is refused (:class:`ConcurrentChangeError`, exit 1) when the file is no longer
    what was read. *force* allows replacing a hard-linked file (the other names keep the old content). Every
    other failure (read-only, FIFO, disk full, missing directory) is an :class:`InputError` (exit 2) and
    leaves the original untouched.
    """
    display = Path(path)
    target = _resolve_target(display)
    try:
        st: os.stat_result | None = os.stat(target)
    except FileNotFoundError:
        st = None
    except OSError as err:
        raise _os_error(display, err, "cannot write") from None
    if st is not None:
        _refuse_kind(display, st, force=force)
    if expect is not None and st is None:
        raise _changed(display)  # removed since it was read
    directory = target.parent if str(target.parent) else Path(".")
    _clean_stale(directory, target.name)
    tmp = directory / f"{_tmp_prefix(target.name)}{os.getpid()}-{os.urandom(4).hex()}.tmp"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    except OSError as err:
        raise InputError(
            f"{display}: cannot write in {directory}: {err.strerror or err}; nothing was written"
        ) from None
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            if st is not None:
                _copy_identity(fd, target, st)
            else:
                umask = os.umask(0)
                os.umask(umask)
                os.fchmod(fd, 0o666 & ~umask)
            os.fsync(fd)
        finally:
            os.close(fd)
        if expect is not None:
            seen = _recheck_content(target, display, expect)
            # the last look, immediately before the rename: the file is still the one just compared
            try:
                now = _identity(os.stat(target))
            except OSError:
                raise _changed(display) from None
            if now != seen:
                raise _changed(display)
        os.replace(tmp, target)
    except BaseException as err:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(err, OSError):
            raise InputError(f"{display}: cannot write: {err.strerror or err}; the file was left unchanged") from None
        raise
    _fsync_dir(directory)


def _fsync_dir(directory: Path) -> None:
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
