"""``derptool fmt`` through Typer's runner and as a real process; the library function directly."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from derptool import hujson
from derptool.cli import app
from derptool.cli.fmt import format_document
from tests.support import repo

runner = CliRunner()
EXAMPLES = sorted(repo.EXAMPLES.glob("*.hujson"))

UGLY = '// policy\n{"groups": {"group:a": ["x@example.com",],},\n  "acls": [ ], }'
PRETTY = '// policy\n{\n\t"groups": {"group:a": ["x@example.com"]},\n\t"acls":   [],\n}\n'
SYNTAX = '{\n  "acls": [\n    {"action": "accept" "src": []}\n  ]\n}\n'


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    out = {}
    for name, text in (("ugly", UGLY), ("pretty", PRETTY), ("syntax", SYNTAX)):
        path = tmp_path / f"{name}.hujson"
        path.write_text(text)
        out[name] = path
    return out


def test_library_function() -> None:
    res = format_document(UGLY.encode(), "p.hujson")
    assert res.changed and res.formatted == PRETTY.encode() and res.error is None
    assert res.diff().startswith("--- p.hujson.orig\n+++ p.hujson\n")
    same = format_document(PRETTY.encode(), "p.hujson")
    assert not same.changed and same.diff() == ""
    bad = format_document(SYNTAX.encode(), "p.hujson")
    assert bad.formatted is None and not bad.changed and bad.error is not None
    assert str(bad.error) == "p.hujson:3:25: invalid character '\"' after object value (expecting ',' or '}')"


def test_prints_formatted(files: dict[str, Path]) -> None:
    result = runner.invoke(app, ["fmt", str(files["ugly"])])
    assert result.exit_code == 0
    assert result.stdout == PRETTY
    assert files["ugly"].read_text() == UGLY  # untouched


def test_several_files_are_concatenated(files: dict[str, Path]) -> None:
    result = runner.invoke(app, ["fmt", str(files["ugly"]), str(files["pretty"])])
    assert result.exit_code == 0 and result.stdout == PRETTY + PRETTY


def test_write_rewrites_in_place_keeping_mode(files: dict[str, Path]) -> None:
    path = files["ugly"]
    os.chmod(path, 0o640)
    result = runner.invoke(app, ["fmt", "--write", str(path)])
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    assert path.read_text() == PRETTY
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".")]  # no temp file left


def test_write_leaves_formatted_files_untouched(files: dict[str, Path]) -> None:
    path = files["pretty"]
    ino, mtime = path.stat().st_ino, path.stat().st_mtime_ns
    result = runner.invoke(app, ["fmt", "-w", str(path)])
    assert result.exit_code == 0
    assert (path.stat().st_ino, path.stat().st_mtime_ns) == (ino, mtime)


def test_write_refuses_stdin() -> None:
    result = runner.invoke(app, ["fmt", "--write", "-"], input="{}")
    assert result.exit_code == 2
    assert "derptool: error: --write cannot be used with stdin" in result.stderr


def test_check(files: dict[str, Path]) -> None:
    result = runner.invoke(app, ["fmt", "--check", str(files["ugly"]), str(files["pretty"])])
    assert result.exit_code == 1
    assert result.stdout == f"{files['ugly']}\n"
    assert files["ugly"].read_text() == UGLY
    result = runner.invoke(app, ["fmt", "--check", str(files["pretty"])])
    assert result.exit_code == 0 and result.stdout == ""


def test_check_counts_syntax_error_as_problem(files: dict[str, Path]) -> None:
    result = runner.invoke(app, ["fmt", "--check", str(files["syntax"]), str(files["pretty"])])
    assert result.exit_code == 1
    assert result.stderr == (
        f"derptool: error: {files['syntax']}:3:25: invalid character '\"' after object value (expecting ',' or '}}')\n"
    )


def test_syntax_error_without_check_exits_2(files: dict[str, Path]) -> None:
    result = runner.invoke(app, ["fmt", str(files["syntax"])])
    assert result.exit_code == 2
    assert result.stderr.startswith(f"derptool: error: {files['syntax']}:3:25: invalid character")
    assert len(result.stderr.splitlines()) == 1


def test_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.hujson"
    for args in (["fmt", str(missing)], ["fmt", "--check", str(missing)]):
        result = runner.invoke(app, args)
        assert result.exit_code == 2
        assert result.stderr == f"derptool: error: {missing}: no such file\n"


def test_stdin() -> None:
    result = runner.invoke(app, ["fmt", "-"], input=UGLY)
    assert result.exit_code == 0 and result.stdout == PRETTY
    result = runner.invoke(app, ["fmt", "-"], input="[1,\n")
    assert result.exit_code == 2
    assert result.stderr == "derptool: error: <stdin>:2:1: parsing value: unexpected EOF\n"


def test_diff(files: dict[str, Path]) -> None:
    result = runner.invoke(app, ["fmt", "--diff", str(files["ugly"]), str(files["pretty"])])
    assert result.exit_code == 0
    assert result.stdout.startswith(f"--- {files['ugly']}.orig\n+++ {files['ugly']}\n@@ ")
    assert '-  "acls": [ ], }\n' in result.stdout and '+\t"acls":   [],\n' in result.stdout
    result = runner.invoke(app, ["fmt", "--check", "--diff", str(files["ugly"])])
    assert result.exit_code == 1 and result.stdout.startswith("---")


def test_examples_are_formatted_idempotently() -> None:
    assert len(EXAMPLES) >= 3
    for path in EXAMPLES:
        src = path.read_bytes()
        out = hujson.format(src)
        assert hujson.format(out) == out, path
        assert hujson.loads(out) == hujson.loads(src), path
        assert hujson.parse(src).pack() == src


def test_console_script(files: dict[str, Path]) -> None:
    exe = Path(sys.executable).with_name("derptool")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "derptool"]
    proc = subprocess.run(
        [*cmd, "fmt", "--check", str(files["ugly"])], capture_output=True, text=True, check=False, timeout=60
    )
    assert proc.returncode == 1 and proc.stdout == f"{files['ugly']}\n"
    proc = subprocess.run([*cmd, "fmt", "-"], input=UGLY, capture_output=True, text=True, check=False, timeout=60)
    assert proc.returncode == 0 and proc.stdout == PRETTY


def test_directory_means_hujson_files_below(files: dict[str, Path]) -> None:
    sub = files["ugly"].parent / "sub"
    sub.mkdir()
    (sub / "deep.hujson").write_text(UGLY)
    (sub / "ignored.json").write_text(UGLY)
    result = runner.invoke(app, ["fmt", "--check", str(files["ugly"].parent)])
    assert result.exit_code == 1
    assert result.stdout.splitlines() == [str(sub / "deep.hujson"), str(files["ugly"])]
    assert "syntax.hujson:3:25" in result.stderr


def test_list_short_flag_lists_like_hujsonfmt(files: dict[str, Path]) -> None:
    result = runner.invoke(app, ["fmt", "-l", str(files["ugly"]), str(files["pretty"])])
    assert result.exit_code == 0  # hujsonfmt -l lists and succeeds; --check is the failing variant
    assert result.stdout == f"{files['ugly']}\n"
    assert files["ugly"].read_text() == UGLY
    result = runner.invoke(app, ["fmt", "--list", str(files["pretty"])])
    assert result.exit_code == 0 and result.stdout == ""


def test_list_and_write_refused(files: dict[str, Path]) -> None:
    result = runner.invoke(app, ["fmt", "-l", "-w", str(files["ugly"])])
    assert result.exit_code == 2 and "--write and --list" in result.stderr


def test_minify_and_standardize(files: dict[str, Path]) -> None:
    result = runner.invoke(app, ["fmt", "-m", str(files["ugly"])])
    assert result.exit_code == 0
    assert result.stdout == hujson.minimize(UGLY).decode() == '{"groups":{"group:a":["x@example.com"]},"acls":[]}'
    result = runner.invoke(app, ["fmt", "--standardize", str(files["ugly"])])
    assert result.exit_code == 0
    assert result.stdout == hujson.standardize(UGLY).decode()
    assert len(result.stdout) == len(UGLY) and "//" not in result.stdout
    result = runner.invoke(app, ["fmt", "-m", "-s", str(files["ugly"])])
    assert result.exit_code == 2 and "--minify and --standardize" in result.stderr


def test_minify_with_write_check_and_list(files: dict[str, Path]) -> None:
    path = files["pretty"]
    result = runner.invoke(app, ["fmt", "-s", "-l", str(path)])
    assert result.exit_code == 0 and result.stdout == f"{path}\n"  # has a trailing comma: differs
    result = runner.invoke(app, ["fmt", "--minify", "--check", str(path)])
    assert result.exit_code == 1
    result = runner.invoke(app, ["fmt", "-m", "-w", str(path)])
    assert result.exit_code == 0 and path.read_bytes() == hujson.minimize(PRETTY)
    result = runner.invoke(app, ["fmt", "-m", "--check", str(path)])
    assert result.exit_code == 0 and result.stdout == ""


def test_minify_syntax_error(files: dict[str, Path]) -> None:
    result = runner.invoke(app, ["fmt", "-m", str(files["syntax"])])
    assert result.exit_code == 2
    assert "syntax.hujson:3:25: invalid character" in result.stderr
