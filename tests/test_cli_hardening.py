"""The CLI's fit for its users: one-line usage errors, help text, durations, completion, disk full, packaging.

Issue 17, items 4, 14, 17, 20 and 22; each test failed before its fix.
"""

from __future__ import annotations

import importlib.metadata
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from derptool.cli import app
from derptool.cli._options import Duration, parse_duration
from derptool.errors import UsageError

REPO = Path(__file__).resolve().parent.parent
runner = CliRunner()


@pytest.mark.parametrize("command", ["fmt", "validate", "check", "diff", "map", "region add", "omit"])
def test_help_has_no_python_placeholders(command: str) -> None:
    """Item 17: usage showed `{FILE}` (and `<list[str]>` before that); now `FILE...`."""
    result = runner.invoke(app, [*command.split(), "--help"])
    assert result.exit_code == 0
    assert not re.search(r"\{[A-Z]+\}|<list\[|\[str\]|<int>|<float>|<text>", result.stdout), result.stdout


def test_usage_shows_variadic_arguments() -> None:
    assert "Usage: derptool fmt [OPTIONS] FILE..." in runner.invoke(app, ["fmt", "--help"]).stdout
    assert "Usage: derptool diff [OPTIONS] OLD NEW" in runner.invoke(app, ["diff", "--help"]).stdout


def test_no_arguments_still_shows_help() -> None:
    result = runner.invoke(app, [])
    assert "Usage: derptool" in result.output and "Commands" in result.output


@pytest.mark.parametrize(
    ("text", "seconds"), [("5s", 5.0), ("500ms", 0.5), ("5", 5.0), ("0.25", 0.25), ("2m", 120.0), (" 1.5s ", 1.5)]
)
def test_duration_convention(text: str, seconds: float) -> None:
    """Item 17: one --timeout convention (`5s`, `500ms` or plain seconds) for every command."""
    assert parse_duration(text, "--timeout") == seconds


@pytest.mark.parametrize("text", ["x", "0", "-1s", "5 parsecs", ""])
def test_duration_rejects(text: str) -> None:
    with pytest.raises(UsageError, match="--timeout"):
        parse_duration(text, "--timeout")


def test_duration_option_type_in_a_command() -> None:
    """The shared Click type: a value in seconds, or one usage line naming the option."""
    probe = typer.Typer()
    seen: list[float] = []

    @probe.command()
    def wait(timeout: float = typer.Option(3.0, "--timeout", click_type=Duration(0.1, 60))) -> None:
        seen.append(timeout)

    assert runner.invoke(probe, ["--timeout", "500ms"]).exit_code == 0 and seen == [0.5]
    assert runner.invoke(probe, ["--timeout", "7"]).exit_code == 0 and seen[-1] == 7.0
    bad = runner.invoke(probe, ["--timeout", "2h"])
    assert bad.exit_code == 2 and "outside 0.1s..60s" in bad.output


def test_completion_is_enabled_and_lists_commands_without_importing_them() -> None:
    """Item 20: completion was off (add_completion=False)."""
    assert "--install-completion" in runner.invoke(app, ["--help"]).stdout
    env = dict(os.environ, _DERPTOOL_COMPLETE="complete_bash", COMP_WORDS="derptool va", COMP_CWORD="1")
    code = (
        "import sys; from derptool.cli import main; sys.argv = ['derptool']\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "print('LOADED', sorted(m for m in sys.modules if m.startswith('derptool.cli.') and m not in "
        "('derptool.cli._app',)))"
    )
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60).stdout
    assert "validate" in out
    assert "LOADED []" in out


def test_stdout_on_a_full_device_is_one_line() -> None:
    """Item 4: `derptool map > /dev/full` was a traceback and exit 120."""
    if not os.path.exists("/dev/full"):
        pytest.skip("needs /dev/full")
    with open("/dev/full", "w") as full:
        proc = subprocess.run(
            [sys.executable, "-m", "derptool", "map", "--map", "snapshot"],
            stdout=full,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
        )
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("derptool: error: cannot write")


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root (mounts a small tmpfs to fill)")
@pytest.mark.parametrize("command", ["fmt", "schema"])
def test_disk_full_on_write_commands(tmp_path: Path, command: str) -> None:
    """Item 4: `fmt --write` and `schema --out` on a full disk: one line, exit 2, original intact."""
    mnt = tmp_path / "tiny"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=12k", "tmpfs", str(mnt)], capture_output=True).returncode:
        pytest.skip("cannot mount tmpfs here")
    try:
        policy = mnt / "policy.hujson"
        original = b'{"acls": [' + b'{"action": "accept", "src": ["*"], "dst": ["*:*"]},' * 100 + b"]}"
        policy.write_bytes(original)
        (mnt / "filler").write_bytes(b"x" * 4096)
        args = ["fmt", "--write", str(policy)] if command == "fmt" else ["schema", "--out", str(mnt)]
        result = runner.invoke(app, args)
        assert result.exit_code == 2, result.output
        lines = result.stderr.splitlines()
        assert len(lines) == 1 and "No space left on device" in lines[0], lines
        assert policy.read_bytes() == original
        assert sorted(p.name for p in mnt.iterdir()) == ["filler", "policy.hujson"]
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_precommit_validate_hook_skips_schemas() -> None:
    """Item 14: the hook's pattern matched schemas/policy.schema.json (8 bogus errors)."""
    import yaml

    hooks = {h["id"]: h for h in yaml.safe_load((REPO / ".pre-commit-hooks.yaml").read_text())}
    hook = hooks["derptool-validate"]

    def selected(path: str) -> bool:  # pre-commit: re.search on files, then not on exclude
        return bool(re.search(hook["files"], path)) and not re.search(hook.get("exclude", "^$"), path)

    assert selected("policy.hujson") and selected("tailscale/acls.json") and selected("my-policy.json")
    assert not selected("schemas/policy.schema.json")
    assert not selected("editor/policy.schema.json")
    assert not selected("package.json")


def test_changelog_names_the_release_tag() -> None:
    """Item 14: there was no tag for `rev:`; the changelog names the one to make for this version."""
    version = importlib.metadata.version("derptool")
    assert f"## v{version}" in (REPO / "CHANGELOG.md").read_text()
    assert f"rev: v{version}" in (REPO / "README.md").read_text()


def test_license_and_metadata() -> None:
    """Item 20: LICENSE with the headscale notice, SPDX license, classifiers, no placeholder URLs."""
    text = (REPO / "LICENSE").read_text()
    assert text.startswith("BSD 3-Clause License") and "Copyright (c) 2020, Juan Font" in text
    import tomllib

    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert project["license"] == "BSD-3-Clause" and project["license-files"] == ["LICENSE"]
    assert any(c.startswith("Programming Language :: Python :: 3.11") for c in project["classifiers"])
    assert not any(c.startswith("License ::") for c in project["classifiers"])  # PEP 639: the SPDX field says it
    for url in project.get("urls", {}).values():
        assert "<" not in url and "example" not in url


def test_readme_claims() -> None:
    """Item 22: install from the repository in CI, exact verdict counts, complete metrics, copy an example."""
    readme = (REPO / "README.md").read_text()
    assert "- run: pip install derptool\n" not in readme and "git+" in readme
    assert "409 compared, 28 of the 437" in readme
    metrics_source = (REPO / "derptool" / "net" / "netcheck" / "prometheus.py").read_text()
    for name in set(re.findall(r'"(derptool_[a-z0-9_]+)"', metrics_source)):
        assert f"`{name}`" in readme, name
    assert "cp examples/policies/" in readme
    assert "### Limits" in readme and "10 000 levels" in readme


def test_recursion_room_matches_the_depth_limit() -> None:
    from derptool import fileio
    from derptool.cli._app import RECURSION_ROOM

    assert RECURSION_ROOM == 4 * fileio.MAX_DEPTH + 1000
