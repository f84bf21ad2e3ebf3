"""``derptool validate`` and ``derptool schema`` through Typer's runner and as a real process."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from derptool.cli import app
from tests.support import repo

runner = CliRunner()
EXAMPLES = sorted(repo.EXAMPLES.glob("*.hujson"))

VALID = '// ok\n{"grants": [{"src": ["*"], "dst": ["*"], "ip": ["*"]},],}\n'
INVALID = '{\n  "acls": [\n    {"action": "deny", "src": ["*"], "dst": ["*:*"]},\n  ],\n}\n'
WARNING_ONLY = (
    '{"ssh": [{"action": "check", "src": ["*"], "dst": ["autogroup:self"], "users": ["root"], "checkPeriod": "30s"}]}'
)
WARN_COL = WARNING_ONLY.index('"30s"') + 1  # the column of the checkPeriod value
SYNTAX = '{\n  "acls": [\n    {"action": "accept" "src": []}\n  ]\n}\n'


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    out = {}
    for name, text in (("valid", VALID), ("invalid", INVALID), ("warning", WARNING_ONLY), ("syntax", SYNTAX)):
        path = tmp_path / f"{name}.hujson"
        path.write_text(text)
        out[name] = path
    return out


def test_valid_file_exits_0(files: dict[str, Path]) -> None:
    result = runner.invoke(app, ["validate", str(files["valid"])])
    assert result.exit_code == 0
    assert result.stdout == ""
    assert "no problems in 1 file" in result.stderr


def test_invalid_file_text_format(files: dict[str, Path]) -> None:
    result = runner.invoke(app, ["validate", str(files["invalid"])])
    assert result.exit_code == 1
    assert result.stdout == f'{files["invalid"]}:3:16: error: action="deny" is not supported\n'
    assert "1 error in 1 file" in result.stderr


def test_json_format_contract(files: dict[str, Path]) -> None:
    result = runner.invoke(app, ["validate", "--format", "json", str(files["invalid"]), str(files["warning"])])
    assert result.exit_code == 1
    data = json.loads(result.stdout)
    assert data == [
        {
            "file": str(files["invalid"]),
            "line": 3,
            "column": 16,
            "severity": "error",
            "path": "/acls/0/action",
            "message": 'action="deny" is not supported',
        },
        {
            "file": str(files["warning"]),
            "line": 1,
            "column": WARN_COL,
            "severity": "warning",
            "path": "/ssh/0/checkPeriod",
            "message": "checkPeriod 30s is below the documented minimum of 1m",
        },
    ]


def test_json_format_empty_list_when_valid(files: dict[str, Path]) -> None:
    result = runner.invoke(app, ["validate", "-f", "json", str(files["valid"])])
    assert result.exit_code == 0
    assert json.loads(result.stdout) == []


def test_github_format(files: dict[str, Path]) -> None:
    result = runner.invoke(app, ["validate", "--format", "github", str(files["invalid"]), str(files["warning"])])
    assert result.exit_code == 1
    assert result.stdout.splitlines() == [
        f'::error file={files["invalid"]},line=3,col=16::action="deny" is not supported',
        f"::warning file={files['warning']},line=1,col={WARN_COL}::"
        "checkPeriod 30s is below the documented minimum of 1m",
    ]


def test_github_format_escapes() -> None:
    from derptool.cli.validate import problems_github

    line = problems_github(
        [{"file": "a,b:c.hujson", "line": 1, "column": 2, "severity": "error", "message": "100% bad\nnext"}]
    )
    assert line == "::error file=a%2Cb%3Ac.hujson,line=1,col=2::100%25 bad%0Anext"


def test_warnings_pass_unless_strict(files: dict[str, Path]) -> None:
    assert runner.invoke(app, ["validate", str(files["warning"])]).exit_code == 0
    result = runner.invoke(app, ["validate", "--strict", str(files["warning"])])
    assert result.exit_code == 1
    assert "warning: checkPeriod 30s" in result.stdout


def test_syntax_error_is_a_problem_with_position(files: dict[str, Path]) -> None:
    result = runner.invoke(app, ["validate", str(files["syntax"])])
    assert result.exit_code == 1
    assert result.stdout.startswith(f"{files['syntax']}:3:25: error: invalid character '\"' after object value")
    assert "Traceback" not in result.output


def test_all_files_are_reported(files: dict[str, Path]) -> None:
    result = runner.invoke(app, ["validate", *map(str, files.values())])
    assert result.exit_code == 1
    reported = {line.split(":")[0] for line in result.stdout.splitlines()}
    assert reported == {str(files["invalid"]), str(files["warning"]), str(files["syntax"])}
    assert "2 errors, 1 warning in 4 files" in result.stderr


def test_unreadable_file_exits_2_after_checking_the_others(files: dict[str, Path], tmp_path: Path) -> None:
    result = runner.invoke(app, ["validate", str(tmp_path / "missing.hujson"), str(files["invalid"])])
    assert result.exit_code == 2
    assert f"derptool: error: {tmp_path / 'missing.hujson'}: no such file" in result.stderr
    assert 'action="deny" is not supported' in result.stdout
    assert runner.invoke(app, ["validate", str(tmp_path)]).exit_code == 2  # a directory


def test_stdin() -> None:
    result = runner.invoke(app, ["validate", "-"], input=INVALID)
    assert result.exit_code == 1
    assert result.stdout.startswith("<stdin>:3:16: error:")


def test_usage_errors_exit_2(files: dict[str, Path]) -> None:
    assert runner.invoke(app, ["validate"]).exit_code == 2
    assert runner.invoke(app, ["validate", "--format", "xml", str(files["valid"])]).exit_code == 2


@pytest.mark.parametrize("example", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_examples_are_valid_and_warning_free(example: Path) -> None:
    result = runner.invoke(app, ["validate", "--strict", str(example)])
    assert result.exit_code == 0, result.stdout
    assert "//" in example.read_text()  # commented HuJSON


def test_examples_cover_the_real_cases() -> None:
    from derptool import hujson
    from derptool.derpmap.sources import load_snapshot

    names = {p.name for p in EXAMPLES}
    assert {"eu-only-derp.hujson", "self-hosted-derp.hujson", "regional-exit-nodes.hujson", "general.hujson"} <= names
    eu = hujson.loads((EXAMPLES[0].parent / "eu-only-derp.hujson").read_bytes())
    removed = {int(k) for k, v in eu["derpMap"]["Regions"].items() if v is None}
    snapshot = load_snapshot().derp_map
    eu_codes = {"fra", "ams", "par", "mad", "waw", "nue", "hel"}
    assert removed == {r.region_id for r in snapshot.region_list() if r.region_code not in eu_codes}
    selfhosted = hujson.loads((EXAMPLES[0].parent / "self-hosted-derp.hujson").read_bytes())["derpMap"]
    assert selfhosted["OmitDefaultRegions"] is True
    assert all(900 <= int(k) <= 999 for k in selfhosted["Regions"])
    grants = hujson.loads((EXAMPLES[0].parent / "regional-exit-nodes.hujson").read_bytes())["grants"]
    assert any(g["dst"] == ["autogroup:internet"] and g.get("via") for g in grants)


def test_schema_command_writes_and_checks(tmp_path: Path) -> None:
    out = tmp_path / "s"
    result = runner.invoke(app, ["schema", "--out", str(out)])
    assert result.exit_code == 0
    assert sorted(p.name for p in out.iterdir()) == ["derpmap.schema.json", "policy.schema.json"]
    assert runner.invoke(app, ["schema", "--out", str(out), "--check"]).exit_code == 0
    (out / "policy.schema.json").write_text("{}")
    stale = runner.invoke(app, ["schema", "--out", str(out), "--check"])
    assert stale.exit_code == 1
    assert "policy.schema.json is missing or stale" in stale.stderr
    again = runner.invoke(app, ["schema", "--out", str(out)])
    assert again.stdout == f"wrote {out / 'policy.schema.json'}\n"  # only the changed file is rewritten


def _console() -> list[str]:
    exe = shutil.which("derptool", path=os.path.dirname(sys.executable))
    return [exe] if exe else [sys.executable, "-m", "derptool"]


def test_real_process_exit_codes(files: dict[str, Path], tmp_path: Path) -> None:
    cmd = _console()
    ok = subprocess.run([*cmd, "validate", str(files["valid"])], capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0, ok.stderr
    bad = subprocess.run(
        [*cmd, "validate", "-f", "github", "-"], input=INVALID, capture_output=True, text=True, timeout=60
    )
    assert bad.returncode == 1
    assert bad.stdout == '::error file=<stdin>,line=3,col=16::action="deny" is not supported\n'
    missing = subprocess.run([*cmd, "validate", str(tmp_path / "nope")], capture_output=True, text=True, timeout=60)
    assert missing.returncode == 2
    assert "Traceback" not in missing.stderr


def test_missing_file_gives_one_error_line_and_no_summary(tmp_path: Path) -> None:
    """A missing file is one error line and exit 2, not also "no problems in 0 files"."""
    missing = tmp_path / "missing.hujson"
    result = runner.invoke(app, ["validate", str(missing)])
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [f"derptool: error: {missing}: no such file"]
    assert result.stdout == ""


def test_summary_counts_read_files_and_names_the_unread(files: dict[str, Path], tmp_path: Path) -> None:
    """With one file read and one missing, the summary says both, truthfully."""
    result = runner.invoke(app, ["validate", str(tmp_path / "missing.hujson"), str(files["valid"])])
    assert result.exit_code == 2
    assert result.stderr.splitlines()[-1] == "derptool: no problems in 1 file; 1 file not read"


MULTIBYTE = '{\n\t"groups": {"group:crème": ["zoë@example.com"]}, "acls": [{"action": "deny", "src": ["*"]}],\n}\n'


def test_github_columns_count_characters_not_bytes(tmp_path: Path) -> None:
    """GitHub counts annotation columns in characters; UTF-8 before the problem must not
    shift the annotation (text and json keep byte columns, as Go's hujson counts them)."""
    policy = tmp_path / "p.hujson"
    policy.write_text(MULTIBYTE, encoding="utf-8")
    line = MULTIBYTE.split("\n")[1]
    chars = line.index('"deny"') + 1
    octets = len(line[: line.index('"deny"')].encode()) + 1
    assert octets == chars + 2  # è and ë take two bytes each
    gh = runner.invoke(app, ["validate", "-f", "github", str(policy)])
    assert gh.exit_code == 1
    assert f'::error file={policy},line=2,col={chars}::action="deny" is not supported' in gh.stdout.splitlines()
    as_json = json.loads(runner.invoke(app, ["validate", "-f", "json", str(policy)]).stdout)
    assert [p["column"] for p in as_json if "deny" in p["message"]] == [octets]


def test_character_columns_keeps_problems_it_cannot_place() -> None:
    """Unknown files, lines past the end and column 1 are left as they are."""
    from derptool.cli.validate import character_columns

    problems = [
        {"file": "a", "line": 1, "column": 5},
        {"file": "b", "line": 9, "column": 4},
        {"file": "a", "line": 2, "column": 1},
        {"file": "a", "line": 2, "column": 4},
    ]
    out = character_columns(problems, {"a": "ééé!\n€x".encode()})
    assert [p["column"] for p in out] == [3, 4, 1, 2]
