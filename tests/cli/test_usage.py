"""The CLI's fit for its users: one-line usage errors, help text, durations, completion, disk full, packaging."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
import typer
from typer.testing import CliRunner

from derptool.cli import app
from derptool.cli._options import Duration, parse_duration
from derptool.errors import UsageError

runner = CliRunner()


@pytest.mark.parametrize("command", ["fmt", "validate", "check", "diff", "map", "region add", "omit"])
def test_help_has_no_python_placeholders(command: str) -> None:
    """Usage showed `{FILE}` (and `<list[str]>` before that); now `FILE...`."""
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
    """One --timeout convention (`5s`, `500ms` or plain seconds) for every command."""
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
    """Completion was off (add_completion=False)."""
    assert "--install-completion" in runner.invoke(app, ["--help"]).stdout
    env = dict(os.environ, _DERPTOOL_COMPLETE="complete_bash", COMP_WORDS="derptool va", COMP_CWORD="1")
    code = (
        "import sys; from derptool.cli import main; sys.argv = ['derptool']\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "print('LOADED', sorted(m for m in sys.modules if m.startswith('derptool.cli.') and m not in "
        "('derptool.cli._app', 'derptool.cli._interrupt', 'derptool.cli._options')))"
    )
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60).stdout
    assert "validate" in out
    assert "LOADED []" in out
