"""The command table loads one command module per run, and stays true to the modules."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from derptool.cli import app
from derptool.cli._app import COMMANDS

runner = CliRunner()


def _loaded_after(args: list[str]) -> set[str]:
    """derptool modules (and pydantic) imported by running the CLI with *args* in a fresh interpreter."""
    code = (
        "import sys, json\n"
        f"sys.argv = ['derptool', *{args!r}]\n"
        "from derptool.cli import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "mods = [m for m in sys.modules if m.startswith(('derptool.', 'pydantic'))]\n"
        "print(json.dumps(mods), file=sys.stderr)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    return set(json.loads(proc.stderr.strip().splitlines()[-1]))


def test_table_matches_what_the_modules_register() -> None:
    for module in {m for m, _ in COMMANDS.values()}:
        importlib.import_module(f"derptool.cli.{module}")
    registered = {c.name for c in app.registered_commands} | {g.name for g in app.registered_groups}
    assert registered == set(COMMANDS)


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_each_command_has_help(name: str) -> None:
    result = runner.invoke(app, [name, "--help"])
    assert result.exit_code == 0, result.output
    assert f"Usage: derptool {name}" in result.output


def test_root_help_lists_every_command_without_importing_them() -> None:
    loaded = _loaded_after(["--help"])
    glue = {"derptool.cli._app", "derptool.cli._interrupt", "derptool.cli._options"}  # the app, Ctrl-C, option types
    assert not {m for m in loaded if m.startswith("derptool.cli.") and m not in glue}
    assert not {m for m in loaded if m.startswith("pydantic")}
    out = subprocess.run([sys.executable, "-m", "derptool", "--help"], capture_output=True, text=True, timeout=60)
    for name in COMMANDS:
        assert f"  {name} " in out.stdout


def test_a_command_imports_only_its_own_module() -> None:
    loaded = _loaded_after(["omit", "--help"])
    modules = {m.rsplit(".", 1)[1] for m in loaded if m.startswith("derptool.cli.")}
    assert {m for m in modules if not m.startswith("_")} == {"maps"}  # the shared glue (_app, _errors...) may load
    assert "derptool.cli.latency" not in loaded and "derptool.net.netcheck" not in loaded


def test_unknown_command_is_one_usage_error() -> None:
    result = runner.invoke(app, ["nosuch"])
    assert result.exit_code == 2
    assert "No such command 'nosuch'" in result.output


def test_a_text_or_json_policy_diff_draws_nothing() -> None:
    """The page modules (and the country shapes under them) load only for --format html/png or --html."""
    args = ["policy", "diff", "examples/policies/general.hujson", "examples/policies/eu-only-derp.hujson"]
    args += ["-t", "examples/tailnet.json", "-m", "snapshot"]
    for fmt in ("json", "table"):
        done = subprocess.run(
            [sys.executable, "-m", "derptool", *args, "--format", fmt], capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0 and "derp" in done.stdout.lower(), done  # the diff ran, its DERP part too
        loaded = _loaded_after([*args, "--format", fmt])
        assert not {m for m in loaded if m.startswith(("derptool.report", "derptool.derpmap.countries"))}, fmt
