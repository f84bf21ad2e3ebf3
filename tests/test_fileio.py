"""fileio: reading limits and the identity-keeping atomic write.

Each test names the promise it checks: symlinks, concurrent edits, kept metadata and kinds, full disks, size,
depth and number limits, encodings.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from derptool import fileio
from derptool.errors import ConcurrentChangeError, InputError, LimitError
from derptool.fileio import atomic_write, check_document_limits, read_file
from tests.support.prereq import missing_root, needs

needs_root = needs(missing_root("chown to another user, tmpfs mount"))


def test_symlink_is_written_through_and_kept(tmp_path: Path) -> None:
    """A symlinked policy stays a symlink; the file it points to gets the new content."""
    real = tmp_path / "real" / "policy.hujson"
    real.parent.mkdir()
    real.write_bytes(b"{}\n")
    link = tmp_path / "policy.hujson"
    link.symlink_to(Path("real") / "policy.hujson")
    snap = read_file(link)
    atomic_write(link, b'{"acls": []}\n', expect=snap)
    assert link.is_symlink() and os.readlink(link) == str(Path("real") / "policy.hujson")
    assert real.read_bytes() == b'{"acls": []}\n'
    assert not [p for p in real.parent.iterdir() if p.name != "policy.hujson"]


def test_dangling_symlink_is_refused(tmp_path: Path) -> None:
    link = tmp_path / "policy.hujson"
    link.symlink_to(tmp_path / "gone.hujson")
    with pytest.raises(InputError, match="does not exist"):
        atomic_write(link, b"{}")
    assert link.is_symlink() and not (tmp_path / "gone.hujson").exists()


def test_change_during_the_write_is_detected(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An edit that lands while the temporary file is written is not overwritten.

    The old code compared the content only before writing the temporary file, so this edit was lost.
    """
    p = tmp_path / "policy.hujson"
    p.write_bytes(b"{}\n")
    snap = read_file(p)
    real_fsync = os.fsync

    def other_editor_saves_during_fsync(fd: int) -> None:
        real_fsync(fd)
        if p.read_bytes() == b"{}\n":
            p.write_bytes(b'{"theirs": 1}\n')

    monkeypatch.setattr(os, "fsync", other_editor_saves_during_fsync)
    with pytest.raises(ConcurrentChangeError):
        atomic_write(p, b'{"ours": 1}\n', expect=snap)
    assert p.read_bytes() == b'{"theirs": 1}\n'
    assert [x.name for x in tmp_path.iterdir()] == ["policy.hujson"]


def test_change_just_before_the_rename_is_detected(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The last look at the file (its identity) is taken immediately before the rename."""
    p = tmp_path / "policy.hujson"
    p.write_bytes(b"{}\n")
    snap = read_file(p)
    real = fileio._recheck_content

    def then_someone_saves(target: Path, display: Path, expect: fileio.FileSnapshot) -> tuple[int, ...]:
        seen = real(target, display, expect)
        p.write_bytes(b'{"theirs": 22}\n')
        return seen

    monkeypatch.setattr(fileio, "_recheck_content", then_someone_saves)
    with pytest.raises(ConcurrentChangeError):
        atomic_write(p, b'{"ours": 1}\n', expect=snap)
    assert p.read_bytes() == b'{"theirs": 22}\n'


def test_mode_and_xattrs_are_kept(tmp_path: Path) -> None:
    """Mode and extended attributes survive the rewrite."""
    p = tmp_path / "policy.hujson"
    p.write_bytes(b"{}\n")
    p.chmod(0o640)
    try:
        os.setxattr(p, "user.derptool-test", b"keep me")
    except OSError as err:
        pytest.skip(f"this file system has no user extended attributes ({err.strerror})")
    atomic_write(p, b"[]\n", expect=read_file(p))
    assert stat.S_IMODE(p.stat().st_mode) == 0o640
    assert os.getxattr(p, "user.derptool-test") == b"keep me"
    assert p.read_bytes() == b"[]\n"


@needs_root
def test_owner_and_group_are_kept_as_root(tmp_path: Path) -> None:
    """As root, a 0600 file owned by another user stays theirs."""
    p = tmp_path / "policy.hujson"
    p.write_bytes(b"{}\n")
    p.chmod(0o600)
    os.chown(p, 65534, 65533)
    atomic_write(p, b"[]\n", expect=read_file(p))
    st = p.stat()
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (65534, 65533, 0o600)


def test_hard_linked_file_is_refused_unless_forced(tmp_path: Path) -> None:
    """A rewrite would split a hard link; refuse unless forced."""
    p = tmp_path / "policy.hujson"
    p.write_bytes(b"{}\n")
    other = tmp_path / "other-name.hujson"
    os.link(p, other)
    with pytest.raises(InputError, match="2 hard links") as info:
        atomic_write(p, b"[]\n", expect=read_file(p))
    assert info.value.exit_code == 2
    assert p.read_bytes() == other.read_bytes() == b"{}\n" and p.stat().st_ino == other.stat().st_ino
    atomic_write(p, b"[]\n", expect=read_file(p), force=True)
    assert p.read_bytes() == b"[]\n" and other.read_bytes() == b"{}\n"


def test_fifo_is_refused_and_stays_a_fifo(tmp_path: Path) -> None:
    """A FIFO is not replaced by a regular file."""
    fifo = tmp_path / "policy.hujson"
    os.mkfifo(fifo)
    with pytest.raises(InputError, match="FIFO"):
        atomic_write(fifo, b"{}\n")
    assert stat.S_ISFIFO(fifo.lstat().st_mode)


def test_read_only_file_is_refused_even_for_root(tmp_path: Path) -> None:
    """A 0444 file is not rewritten (root's write access does not count)."""
    p = tmp_path / "policy.hujson"
    p.write_bytes(b"{}\n")
    p.chmod(0o444)
    with pytest.raises(InputError, match="read-only"):
        atomic_write(p, b"[]\n", expect=read_file(p))
    assert p.read_bytes() == b"{}\n" and stat.S_IMODE(p.stat().st_mode) == 0o444


def test_stale_temporary_file_is_named_and_cleaned(tmp_path: Path) -> None:
    """A temporary file a killed run left behind is obviously derptool's and goes on the next write."""
    p = tmp_path / "policy.hujson"
    p.write_bytes(b"{}\n")
    proc = subprocess.Popen(["true"])
    proc.wait()  # a pid that is gone
    stale = tmp_path / f".policy.hujson.derptool-{proc.pid}-abcd.tmp"
    stale.write_bytes(b"half")
    someone_elses = tmp_path / ".policy.hujson.swp"
    someone_elses.write_bytes(b"vim")
    atomic_write(p, b"[]\n", expect=read_file(p))
    assert sorted(x.name for x in tmp_path.iterdir()) == [".policy.hujson.swp", "policy.hujson"]


@contextlib.contextmanager
def tiny_filesystem(tmp_path: Path, size: str = "64k") -> Iterator[Path]:
    mnt = tmp_path / "tiny"
    mnt.mkdir()
    if (
        shutil.which("mount") is None
        or subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mnt)], capture_output=True
        ).returncode
    ):
        pytest.skip("needs root and a tmpfs mount (a small full file system)")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


@needs_root
def test_disk_full_is_one_error_and_keeps_the_original(tmp_path: Path) -> None:
    """ENOSPC while writing is an InputError (exit 2); the original and the directory stay as they were."""
    with tiny_filesystem(tmp_path) as mnt:
        p = mnt / "policy.hujson"
        p.write_bytes(b"{}\n")
        with pytest.raises(InputError, match="No space left") as info:
            atomic_write(p, b" " * 200_000, expect=read_file(p))
        assert info.value.exit_code == 2
        assert p.read_bytes() == b"{}\n"
        assert [x.name for x in mnt.iterdir()] == ["policy.hujson"]


def test_missing_directory_is_an_input_error(tmp_path: Path) -> None:
    """No OSError leaks out of fileio."""
    with pytest.raises(InputError, match="cannot write"):
        atomic_write(tmp_path / "no" / "such" / "dir" / "f.json", b"{}")


def test_size_cap_stops_reading(tmp_path: Path) -> None:
    """A huge (sparse) file is refused by its size; /dev/zero after reading the cap."""
    huge = tmp_path / "huge.json"
    with open(huge, "wb") as fh:
        fh.truncate(fileio.MAX_FILE_BYTES + 1)
    with pytest.raises(LimitError, match="larger than the 16 MiB"):
        read_file(huge)
    with pytest.raises(LimitError, match="larger than"):
        read_file("/dev/zero", limit=1024)


def test_fifo_with_a_writer_is_read(tmp_path: Path) -> None:
    """Reading (not writing) a FIFO is fine: `derptool validate <(curl ...)` gives one."""
    fifo = tmp_path / "in"
    os.mkfifo(fifo)

    def feed() -> None:
        with open(fifo, "wb") as fh:
            fh.write(b'{"acls": []}')

    t = threading.Thread(target=feed)
    t.start()
    assert read_file(fifo).data == b'{"acls": []}'
    t.join()


@pytest.mark.parametrize(
    ("doc", "where"),
    [
        (b"[" * 10_001 + b"]" * 10_001, "1:10001"),
        (b'{"a": // [[[[ in a comment\n' + b"[" * 10_001, "2:10000"),  # the "{" is level 1
    ],
)
def test_depth_limit_like_go(doc: bytes, where: str) -> None:
    """Nesting deeper than 10 000 (Go's encoding/json) is refused with a location."""
    with pytest.raises(LimitError, match="10000 levels") as info:
        check_document_limits(doc, "f.json")
    assert str(info.value).startswith(f"f.json:{where}:")


def test_depth_at_the_limit_and_brackets_in_strings_pass() -> None:
    check_document_limits(b"[" * 10_000 + b"]" * 10_000, "ok.json")
    check_document_limits(b'["' + b"[" * 20_000 + b'"]', "ok.json")


def _depth(doc: bytes) -> int:
    """The deepest nesting of *doc* outside strings, by a plain scan (no escapes or comments in these docs)."""
    depth = deepest = 0
    in_string = False
    for b in doc:
        if b == ord('"'):
            in_string = not in_string
        elif not in_string and b in b"[{":
            depth += 1
            deepest = max(deepest, depth)
        elif not in_string and b in b"]}":
            depth -= 1
    return deepest


@pytest.mark.parametrize(
    "doc",
    [
        b'{"a": ["b", "c"], "d": {"e": "f"}}',
        b'{"a": "[[[", "b": [["]]"]]}',  # brackets inside strings, among bracket-free strings
        b'["x", "y"]' * 3 + b'[["[", "]"], [[[]]]]',
        b'{"k": [' + b'"s", ' * 50 + b'[[["deep"]]]]}',
        b'["{", [["}"]], "", [[]], ""]',
    ],
)
def test_quick_nesting_check_agrees_with_a_plain_scan(doc: bytes) -> None:
    """The C-speed nesting check answers "shallow" exactly when a plain scan finds the nesting within the
    limit, whether or not strings hold brackets."""
    deepest = _depth(doc)
    for limit in range(max(1, deepest - 2), deepest + 3):
        assert fileio._shallow(doc, limit) == (deepest <= limit), (doc, limit)


def test_number_length_limit() -> None:
    """A 5 000-digit number is one located error, not a ValueError from int()."""
    with pytest.raises(LimitError, match="5000 characters") as info:
        check_document_limits(b'{\n  "n": ' + b"9" * 5000 + b"}", "n.json")
    assert str(info.value).startswith("n.json:2:8:")
    check_document_limits(b'{"s": "' + b"9" * 5000 + b'"}', "ok.json")  # digits in a string are text


@pytest.mark.parametrize(
    ("data", "name"),
    [
        (b"\xef\xbb\xbf{}", "byte-order mark"),
        ('{"acls": []}'.encode("utf-16"), "UTF-16 LE"),
        ('{"acls": []}'.encode("utf-16-be"), "UTF-16 BE"),
        ('{"acls": []}'.encode("utf-32"), "UTF-32 LE"),
    ],
)
def test_encodings_are_named(tmp_path: Path, data: bytes, name: str) -> None:
    """A BOM or UTF-16/32 text is named, not reported as a syntax error at 1:1."""
    p = tmp_path / "policy.hujson"
    p.write_bytes(data)
    with pytest.raises(InputError, match=name):
        read_file(p)
    assert fileio.to_utf8(data).lstrip(b"{").startswith((b"}", b'"acls'))


@pytest.mark.parametrize("chunk", [1, 7, 64, 1 << 20])
def test_nesting_check_reads_brackets_in_pieces_alike(chunk: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Pieces cut at line ends, never inside a block comment: the brackets are those of the whole text."""
    from derptool import fileio

    text = (
        b'{\n "a": ["[{", /* a comment [[[\n that runs on {{ over lines */ 1],\n'
        b' // a line comment ]]]\n "b": {"c": "x\\"]"}, # hash {\n "d": [[[], {}]]\n}\n'
    ) * 5
    plain = b'{\n "a": ["[{", 1],\n "b": {"c": "}"},\n "d": [[[], {}]]\n}\n' * 5
    whole = {t: fileio._STRING_OR_COMMENT.sub(b"", t).translate(fileio._BRACKETS_AS_SQUARE, fileio._NOT_BRACKETS)
             for t in (text, plain)}  # fmt: skip
    monkeypatch.setattr(fileio, "_CHUNK", chunk)
    for t in (text, plain):
        assert fileio._brackets(t) == whole[t]
    deep = b"[\n" * 60 + b"]\n" * 60
    assert fileio._shallow(deep, 60) and not fileio._shallow(deep, 59)
