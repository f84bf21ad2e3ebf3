"""``validate`` and ``fmt`` take files, directories (recursively: *.hujson and *.json) and globs alike."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from derptool.cli import app
from derptool.cli._inputs import expand_paths

runner = CliRunner()
GOOD = '{\n\t"acls": [{"action": "accept", "src": ["*"], "dst": ["*:*"]}],\n}\n'
UGLY = '{"acls":[{"action":"accept","src":["*"],"dst":["*:*"]}]}'


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """policies/{a.hujson, b.json, notes.txt, sub/c.hujson, .git/d.json} and a file outside."""
    root = tmp_path / "policies"
    (root / "sub").mkdir(parents=True)
    (root / ".git").mkdir()
    (root / "a.hujson").write_text(UGLY)
    (root / "b.json").write_text(UGLY)
    (root / "notes.txt").write_text("not a policy")
    (root / "sub" / "c.hujson").write_text(UGLY)
    (root / ".git" / "d.json").write_text("{")
    (tmp_path / "lone.hujson").write_text(UGLY)
    return root


def _expand(names: list[str]) -> tuple[list[str], list[str]]:
    empty: list[str] = []
    return expand_paths(names, empty.append), empty


def test_directory_is_its_policy_files_recursively(tree: Path) -> None:
    files, empty = _expand([str(tree)])
    assert files == [str(tree / "a.hujson"), str(tree / "b.json"), str(tree / "sub" / "c.hujson")] and not empty


def test_globs_and_files_in_order_each_once(tree: Path) -> None:
    lone = str(tree.parent / "lone.hujson")
    files, _ = _expand([lone, str(tree / "*.hujson"), str(tree / "**" / "*.hujson"), lone, "-"])
    assert files == [lone, str(tree / "a.hujson"), str(tree / "sub" / "c.hujson"), "-"]


def test_a_glob_matching_a_directory_expands_it(tree: Path) -> None:
    files, _ = _expand([str(tree / "su*")])
    assert files == [str(tree / "sub" / "c.hujson")]


def test_missing_names_stay_and_empty_folders_are_reported(tree: Path) -> None:
    (tree / "empty").mkdir()
    files, empty = _expand([str(tree / "nope.hujson"), str(tree / "nope*.hujson"), str(tree / "empty")])
    assert files == [str(tree / "nope.hujson"), str(tree / "nope*.hujson")]
    assert empty == [str(tree / "empty")]


@pytest.mark.parametrize("how", ["dir", "glob"])
def test_validate_and_fmt_read_the_same_files(tree: Path, how: str) -> None:
    arg = str(tree) if how == "dir" else str(tree / "**" / "*.*json")
    listed = runner.invoke(app, ["fmt", "--check", arg])
    assert listed.exit_code == 1
    assert listed.stdout.splitlines() == [str(tree / "a.hujson"), str(tree / "b.json"), str(tree / "sub" / "c.hujson")]
    valid = runner.invoke(app, ["validate", arg])
    assert valid.exit_code == 0, valid.output
    assert "no problems in 3 files" in valid.stderr


def test_validate_reports_each_file_of_a_directory(tree: Path) -> None:
    (tree / "sub" / "bad.hujson").write_text('{"acls": [{"action": "deny", "src": ["*"], "dst": ["*:*"]}]}')
    result = runner.invoke(app, ["validate", str(tree)])
    assert result.exit_code == 1
    assert result.stdout.startswith(f"{tree / 'sub' / 'bad.hujson'}:1:")


def test_empty_directory_is_unreadable_input(tmp_path: Path) -> None:
    for command in (["validate"], ["fmt", "--check"]):
        result = runner.invoke(app, [*command, str(tmp_path)])
        assert result.exit_code == 2
        assert result.stderr == f"derptool: error: {tmp_path}: no *.hujson or *.json files in it\n"


def test_fmt_write_formats_a_whole_directory(tree: Path) -> None:
    result = runner.invoke(app, ["fmt", "--write", str(tree)])
    assert result.exit_code == 0, result.output
    assert runner.invoke(app, ["fmt", "--check", str(tree)]).exit_code == 0
    assert (tree / "notes.txt").read_text() == "not a policy" and (tree / ".git" / "d.json").read_text() == "{"
