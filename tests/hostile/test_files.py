"""Hostile files replayed over every command that takes a policy or DERP map file.

Each case runs the CLI in-process and asserts: exactly one line on stderr, the documented exit code, no
traceback, and the user's files byte for byte (and kind: a FIFO stays a FIFO) as they were. Before the
hardening, 62 of the 213 attempts of the same matrix ended in a traceback or an out-of-memory crash and 35
printed Click's multi-line usage block.
"""

from __future__ import annotations

import os
import stat
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from derptool.cli import app
from tests.support.hostile import Files, run_one, runner

POLICY = b'{\n\t// keep me\n\t"acls": [{"action": "accept", "src": ["*"], "dst": ["*:*"]}],\n}\n'
BOMB = (
    b"a: &a [x, x, x, x, x, x, x, x, x]\n"
    + b"".join(b"%c: &%c [%s]\n" % (98 + i, 98 + i, b", ".join([b"*%c" % (97 + i)] * 9)) for i in range(8))
    + b"regions: *i\n"
)

# name -> (how to make it in a directory, the error line must mention this)
HOSTILE: dict[str, tuple[Callable[[Path], str], str]] = {}


def hostile(name: str, expect: str) -> Callable[[Callable[[Path], str]], Callable[[Path], str]]:
    def register(make: Callable[[Path], str]) -> Callable[[Path], str]:
        HOSTILE[name] = (make, expect)
        return make

    return register


def _write(d: Path, name: str, data: bytes) -> str:
    p = d / name
    p.write_bytes(data)
    return str(p)


hostile("missing", "no such file")(lambda d: str(d / "missing.hujson"))
hostile("directory", "is a directory")(lambda d: str(d / "adir"))
hostile("devzero", "larger than")(lambda d: "/dev/zero")
hostile("deep", "nested deeper")(
    lambda d: _write(d, "deep.hujson", b'{"acls": ' + b"[" * 100_000 + b"]" * 100_000 + b"}")
)
hostile("number", "5000 characters")(
    lambda d: _write(d, "num.hujson", b'{"randomizeClientPort": ' + b"9" * 5000 + b"}")
)
hostile("bom", "byte-order mark")(lambda d: _write(d, "bom.hujson", b"\xef\xbb\xbf" + POLICY))
hostile("utf16", "UTF-16")(lambda d: _write(d, "u16.hujson", POLICY.decode().encode("utf-16")))


@hostile("huge", "larger than the 16 MiB")
def _huge(d: Path) -> str:
    p = d / "huge.hujson"
    with open(p, "wb") as fh:
        fh.truncate(3 * 1024**3)  # sparse: costs no disk
    return str(p)


# Map-only inputs: YAML bombs and deep YAML go through the map reader.
MAP_ONLY: dict[str, tuple[Callable[[Path], str], str]] = {
    "alias-bomb": (lambda d: _write(d, "bomb.yaml", BOMB), "anchors or aliases"),
    "deep-yaml": (lambda d: _write(d, "deep.yaml", b"regions:\n" + b"- " * 12_000 + b"x\n"), "nested"),
    "snake-yaml": (
        lambda d: _write(d, "snake.yaml", b"regions:\n  900:\n    region_id: 900\n    regioncode: x\n    nodes: []\n"),
        "region_id",
    ),
}

READERS: dict[str, Callable[[str], list[str]]] = {
    "map --map": lambda f: ["map", "--map", f],
    "omit --map": lambda f: ["omit", "-r", "us", "--map", f],
    "latency --map": lambda f: ["latency", "--map", f],
    "nat --map": lambda f: ["nat", "--map", f],
    "check --map": lambda f: ["check", "900", "--map", f],
    "diff OLD": lambda f: ["diff", f, "snapshot"],
    "diff NEW": lambda f: ["diff", "snapshot", f],
    "validate": lambda f: ["validate", f],
    "fmt": lambda f: ["fmt", f],
    "fmt --check": lambda f: ["fmt", "--check", f],
}
EDITORS: dict[str, Callable[[str], list[str]]] = {
    "fmt --write": lambda f: ["fmt", "--write", f],
    "omit --apply": lambda f: ["omit", "-r", "us", "--map", "snapshot", "--apply", f],
    "grants --apply": lambda f: ["grants", "--src", "*", "--via", "tag:exit", "--apply", f],
    "region add --apply": lambda f: [
        "region",
        "add",
        "--id",
        "900",
        "--code",
        "x",
        "--node",
        "derp.example.test,ipv4=192.0.2.1",
        "--apply",
        f,
    ],
}
MAP_READERS = {k: v for k, v in READERS.items() if "--map" in k or k.startswith("diff")}


def _cases(
    commands: dict[str, Callable[[str], list[str]]], inputs: dict[str, tuple[Callable[[Path], str], str]]
) -> list[object]:
    out: list[object] = []
    for cname, mk in commands.items():
        for iname in inputs:
            if iname in ("bom", "utf16") and cname in MAP_READERS:
                continue  # a --map file in UTF-16 or with a BOM is decoded (tests/hostile/test_map_files.py)
            if iname == "directory" and cname.startswith("fmt"):
                continue  # fmt takes directories: the *.hujson files below them
            out.append(pytest.param(mk, iname, id=f"{cname}:{iname}"))
    return out


@pytest.mark.parametrize(("mkargs", "input_name"), _cases({**READERS, **EDITORS}, HOSTILE))
def test_hostile_file(workdir: Path, mkargs: Callable[[str], list[str]], input_name: str) -> None:
    make, mention = HOSTILE[input_name]
    run_one(mkargs(make(workdir)), Files(workdir), 2, mention)


@pytest.mark.parametrize(("mkargs", "input_name"), _cases(MAP_READERS, MAP_ONLY))
def test_hostile_map(workdir: Path, mkargs: Callable[[str], list[str]], input_name: str) -> None:
    make, mention = MAP_ONLY[input_name]
    run_one(mkargs(make(workdir)), Files(workdir), 2, mention)


@pytest.fixture
def fifo(workdir: Path) -> Iterator[Path]:
    """A FIFO with a writer that feeds it a broken document once a reader opens it; never left blocked."""
    path = workdir / "pipe.hujson"
    os.mkfifo(path)

    def feed() -> None:
        try:
            with open(path, "wb") as fh:
                fh.write(b"{ broken")
        except OSError:
            pass

    writer = threading.Thread(target=feed, daemon=True)
    writer.start()
    yield path
    if writer.is_alive():  # nobody read it: open it once so the writer finishes
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        writer.join(2)
        os.close(fd)


@pytest.mark.parametrize("name", list(EDITORS))
def test_fifo_is_never_replaced(fifo: Path, name: str) -> None:
    """Editing a FIFO: one line, exit 2, and it is still a FIFO (it became a regular file before)."""
    result = runner.invoke(app, EDITORS[name](str(fifo)))
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("derptool: error: "), lines
    assert result.exit_code == 2
    assert stat.S_ISFIFO(fifo.lstat().st_mode)


@pytest.mark.parametrize("name", [n for n in READERS if n != "validate"])
def test_fifo_is_read_like_a_file(fifo: Path, name: str) -> None:
    """Reading a FIFO (process substitution) works; its broken content is one error line."""
    result = runner.invoke(app, READERS[name](str(fifo)))
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("derptool: error: "), lines
    assert result.exit_code in (1, 2)


@pytest.mark.parametrize("name", list(EDITORS))
def test_read_only_and_hard_linked_policies_are_kept(workdir: Path, name: str) -> None:
    """Over every editor: refuse (exit 2), nothing changed."""
    ro = workdir / "ro.hujson"
    ro.write_bytes(POLICY.replace(b"\t", b"  "))  # unformatted, so fmt --write wants to write
    ro.chmod(0o444)
    run_one(EDITORS[name](str(ro)), Files(workdir), 2, "read-only")
    linked = workdir / "linked.hujson"
    linked.write_bytes(POLICY.replace(b"\t", b"  "))
    os.link(linked, workdir / "other-name.hujson")
    run_one(EDITORS[name](str(linked)), Files(workdir), 2, "hard links")


@pytest.mark.parametrize("name", list(EDITORS))
def test_symlinked_policy_is_written_through(workdir: Path, name: str) -> None:
    """Over every editor: the link stays, the target gets the edit."""
    real = workdir / "real.hujson"
    real.write_bytes(POLICY.replace(b"\t", b"  "))
    link = workdir / "policy.hujson"
    link.symlink_to("real.hujson")
    result = runner.invoke(app, EDITORS[name](str(link)))
    assert result.exit_code == 0, result.stderr
    assert link.is_symlink() and os.readlink(link) == "real.hujson"
    assert real.read_bytes() != POLICY.replace(b"\t", b"  ")


# -- key files, CA files and stdin: the same size-capped reader as every other file -----------------------------

KEY_FILE_COMMANDS = {
    "check --mesh-key-file": lambda p: ["check", "--mesh-key-file", p, "derp.invalid"],
    "check --ca-file": lambda p: ["check", "--ca-file", p, "derp.invalid"],
    "latency --ca-file": lambda p: ["latency", "--ca-file", p, "-m", "snapshot", "-r", "nyc"],
    "watch --ca-file": lambda p: ["watch", "--once", "--ca-file", p, "https://127.0.0.1:9/metrics"],
}


@pytest.mark.parametrize("mkargs", list(KEY_FILE_COMMANDS.values()), ids=list(KEY_FILE_COMMANDS))
@pytest.mark.parametrize(
    ("source", "mention"),
    [("/dev/zero", "larger than"), ("missing", "no such file"), ("adir", "is a directory")],
)
def test_key_and_ca_files_are_read_through_the_capped_reader(
    workdir: Path, mkargs: Callable[[str], list[str]], source: str, mention: str
) -> None:
    """``check --mesh-key-file /dev/zero`` read until MemoryError."""
    path = source if source.startswith("/") else str(workdir / source)
    result = runner.invoke(app, mkargs(path))
    errors = [line for line in result.stderr.splitlines() if line.startswith("derptool: error:")]
    assert result.exit_code == 2, result.stderr
    assert len(errors) == 1 and mention in errors[0], result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("args", "data", "mention"),
    [
        (["validate", "-"], b" " * (16 * 1024 * 1024 + 1), "larger than"),
        (["map", "-m", "-"], b'{"Regions": {' + b'"1": null,' * 100_001 + b"}}", "object members"),
        (["fmt", "-"], b"[" * 10_001 + b"]" * 10_001, "nested deeper"),
    ],
    ids=["over 16 MiB", "past the entry limit", "past the depth limit"],
)
def test_stdin_is_held_to_the_file_limits(args: list[str], data: bytes, mention: str) -> None:
    result = runner.invoke(app, args, input=data)
    errors = [line for line in result.stderr.splitlines() if line.startswith("derptool: error:")]
    assert result.exit_code == 2, result.stderr
    assert len(errors) == 1 and mention in errors[0], result.stderr
