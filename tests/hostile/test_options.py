"""Hostile command lines: unknown options, bad values and missing arguments are one usage line, exit 2."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer.main
from typer._click.core import Context

from derptool.cli._app import COMMANDS, app
from derptool.cli._options import Duration, FiniteFloat, parse_duration
from derptool.errors import UsageError
from tests.hostile.harness import assert_refused, run
from tests.support.hostile import Files, run_one

NOT_FINITE = ["nan", "NaN", "inf", "-inf", "Infinity", "1e999", "-1e400", " nan ", "\uff11", "1_0"]
"""Values a float option must refuse: not finite, overflowing, or digits Python's float() alone would take."""
BAD_DURATIONS = ["inf", "nan", "1e300", "9" * 400, "99999999999h", "-1s", "0", "0ms", "5 parsecs", "\uff15s", ""]


USAGE = [
    (["map", "--bogus"], "No such option: --bogus"),
    (["map", "--format", "nope"], "'nope' is not one of"),
    (["latency", "--timeout", "x"], "--timeout"),
    (["nat", "--timeout", "x"], "--timeout"),
    (["check", "--timeout", "x", "h"], "--timeout"),
    (["fmt"], "Missing argument 'FILE'"),
    (["validate"], "Missing argument 'FILE'"),
    (["diff", "a"], "Missing argument 'NEW'"),
    (["omit", "--region"], "requires an argument"),
    (["region", "add"], "derptool region add: Missing option"),
    (["region", "add", "--id", "x"], "derptool region add:"),
    (["region", "nosuch"], "No such command"),
    (["grants"], "derptool grants"),
    (["nosuch"], "No such command 'nosuch'"),
    (["--bogus"], "No such option"),
    (["schema", "--out", "/dev/null"], "/dev/null"),
]


@pytest.mark.parametrize(("args", "mention"), USAGE, ids=[" ".join(a) for a, _ in USAGE])
def test_usage_errors_are_one_line(workdir: Path, args: list[str], mention: str) -> None:
    """Click's three-line block became one `derptool: error:` line, exit 2."""
    run_one(args, Files(workdir), 2, mention)


# -- every float option and duration, found by walking the CLI; selectors ------------------------------------------


def _commands() -> Iterator[tuple[list[str], Any]]:
    root = typer.main.get_command(app)
    ctx = Context(root)
    stack = [([name], root.get_command(ctx, name)) for name in COMMANDS]  # type: ignore[attr-defined]
    while stack:
        path, cmd = stack.pop()
        yield path, cmd
        for sub_name, sub in getattr(cmd, "commands", {}).items():
            stack.append(([*path, sub_name], sub))


def _options(kind: type) -> list[tuple[list[str], str]]:
    found = []
    for path, cmd in _commands():
        for param in cmd.params:
            if isinstance(param.type, kind) and param.opts and param.opts[0].startswith("--"):
                found.append((path, param.opts[0]))
    return sorted(found)


FLOAT_OPTIONS = _options(FiniteFloat)
DURATION_OPTIONS = _options(Duration)
STRING_DURATIONS = [(["latency"], "--every"), (["latency"], "--timeout"), (["check"], "--every")]
"""Durations taken as text and parsed by the command (they also accept a plain number of seconds)."""


def test_the_walk_finds_the_options_it_must() -> None:
    assert (["watch"], "--interval") in FLOAT_OPTIONS
    assert (["impact"], "--max-increase") in FLOAT_OPTIONS
    assert (["check"], "--timeout") in DURATION_OPTIONS
    assert len(FLOAT_OPTIONS) >= 5


@pytest.mark.parametrize("value", NOT_FINITE)
@pytest.mark.parametrize(("path", "option"), FLOAT_OPTIONS, ids=[" ".join(p) + " " + o for p, o in FLOAT_OPTIONS])
def test_float_options_refuse_what_is_not_a_finite_number(path: list[str], option: str, value: str) -> None:
    line = assert_refused(run([*path, option, value]), 2, option)
    assert "number" in line or "range" in line, line


@pytest.mark.parametrize("value", BAD_DURATIONS)
@pytest.mark.parametrize(
    ("path", "option"),
    DURATION_OPTIONS + STRING_DURATIONS,
    ids=[" ".join(p) + " " + o for p, o in DURATION_OPTIONS + STRING_DURATIONS],
)
def test_durations_refuse_what_is_no_duration_in_range(path: list[str], option: str, value: str) -> None:
    args = [*path, option, value]
    if path == ["latency"]:
        args += ["-m", "snapshot", "-r", "nyc"]
    if path == ["check"]:
        args += ["derp.invalid"]
    assert_refused(run(args), 2, option)


def test_a_duration_has_a_ceiling_even_without_one_of_its_own() -> None:
    assert parse_duration("30d" if False else "720h", "--every") == 720 * 3600.0
    with pytest.raises(UsageError, match="outside"):
        parse_duration("721h", "--every")


def test_max_increase_nan_no_longer_disables_the_gate(tmp_path: Any) -> None:
    """``--max-increase nan`` compared false with every increase: the CI gate passed whatever happened."""
    assert_refused(run(["impact", "--max-increase", "nan", "--region", "nyc", "-m", "snapshot", "x"]), 2)


@pytest.mark.parametrize("selector", [",,,", " , ", ",", ",,\t,", "\uff11", "id:\uff11", "", "   "])
@pytest.mark.parametrize("command", ["omit", "map", "impact"])
def test_selectors_that_select_nothing_are_usage_errors(command: str, selector: str) -> None:
    args = [command, "--region", selector, "-m", "snapshot"]
    if command == "impact":
        args.append("no-report.json")
    assert_refused(run(args), 2)
