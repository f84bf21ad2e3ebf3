"""One vocabulary across commands: one meaning per short option, one name per concept, durations shown alike,
old spellings kept as hidden aliases, exit codes in every --help, region selectors completed by the shell."""

from __future__ import annotations

import http.server
import os
import re
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.core import TyperGroup
from typer.main import get_command
from typer.testing import CliRunner

from derptool import __version__
from derptool.cli import app
from derptool.cli._app import COMMANDS
from derptool.cli._options import complete_region
from tests.support.repo import REPO

runner = CliRunner()


def _all_commands() -> list[tuple[str, Any]]:
    """Every command and subcommand: (path, click command), through the lazy table."""
    root = get_command(app)
    ctx = root.make_context("derptool", ["--help"], resilient_parsing=True)
    out: list[tuple[str, Any]] = []

    def walk(path: str, command: Any) -> None:
        out.append((path, command))
        if isinstance(command, TyperGroup):
            for name in command.list_commands(ctx):
                walk(f"{path} {name}", command.get_command(ctx, name))

    for name in COMMANDS:
        walk(name, root.get_command(ctx, name))  # type: ignore[attr-defined]
    return out


COMMAND_PATHS = [path for path, _ in _all_commands()]


def test_one_meaning_per_short_option() -> None:
    meanings: dict[str, set[str]] = {}
    for path, command in _all_commands():
        for param in getattr(command, "params", []):
            if getattr(param, "hidden", False):
                continue
            shorts = [o for o in param.opts if re.fullmatch(r"-[A-Za-z]", o)]
            longs = [o for o in param.opts if o.startswith("--")]
            for short in shorts:
                meanings.setdefault(short, set()).update(longs or [f"{path}:{param.name}"])
    clashes = {short: longs for short, longs in meanings.items() if len(longs) > 1}
    assert not clashes, clashes
    assert meanings["-t"] == {"--tailnet"} and meanings["-m"] == {"--map"} and meanings["-f"] == {"--format"}


@pytest.mark.parametrize("path", COMMAND_PATHS)
def test_every_help_lists_its_exit_codes(path: str) -> None:
    result = runner.invoke(app, [*path.split(), "--help"], terminal_width=100)
    assert result.exit_code == 0, result.output
    text = " ".join(result.stdout.split())
    found = re.search(r"Exit status: (.*?)(Arguments|Options|Commands):", text)
    assert found, f"{path} --help names no exit status:\n{result.stdout}"
    codes = set(re.findall(r"(?<![\w.-])([0-3])(?![\w.])", found.group(1)))
    assert {"0", "2"} <= codes, (path, found.group(1))


@pytest.mark.parametrize("path", COMMAND_PATHS)
def test_durations_show_their_defaults_as_durations(path: str) -> None:
    text = " ".join(runner.invoke(app, [*path.split(), "--help"], terminal_width=200).stdout.split())
    for option in re.split(r" (?=--?[a-z][\w-]* )", text):
        if " DURATION " in option and "[default: " in option:
            default = option.split("[default: ")[1].split("]")[0]
            assert re.fullmatch(r"\d+(ms|s|m|h)", default), (path, option)
    assert "SECONDS" not in text, path


def test_version_short_option() -> None:
    for flag in ("-V", "--version"):
        result = runner.invoke(app, [flag])
        assert result.exit_code == 0 and result.stdout == f"derptool {__version__}\n"


@pytest.mark.parametrize(
    ("argv", "fix"),
    [
        (["check", "-t", "2s", "127.0.0.1"], "give --timeout DURATION"),
        (["nat", "-t", "2s", "--map", "snapshot"], "give --timeout DURATION"),
        (["fmt", "-m", "policy.hujson"], "give --minify"),
    ],
)
def test_a_short_option_that_changed_meaning_names_the_long_one(argv: list[str], fix: str) -> None:
    result = runner.invoke(app, argv)
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1 and fix in result.stderr and "in every command now" in result.stderr


def test_validate_format_text_is_a_hidden_alias_of_table(tmp_path: Path) -> None:
    policy = tmp_path / "policy.hujson"
    policy.write_text('{"acls": [{"action": "accept", "src": ["nobody@"], "dst": ["*:22"]}]}')
    table = runner.invoke(app, ["validate", "--format", "table", str(policy)])
    text = runner.invoke(app, ["validate", "--format", "text", str(policy)])
    assert table.exit_code == text.exit_code and table.stdout == text.stdout and table.stderr == text.stderr
    assert "table" in runner.invoke(app, ["validate", "--help"]).stdout
    assert "text" not in re.sub(r"^Usage.*$", "", runner.invoke(app, ["validate", "--help"]).stdout, flags=re.M)


class _Metrics(http.server.BaseHTTPRequestHandler):
    hits = 0

    def do_GET(self) -> None:
        type(self).hits += 1
        body = f"# TYPE demo_total counter\ndemo_total {type(self).hits}\n".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def metrics_url() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Metrics)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/metrics"
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize(
    "spelling", [["--every", "100ms"], ["--interval", "0.1"], ["-i", "0.1"], ["--interval", "100ms"]]
)
def test_watch_every_and_its_old_spellings(metrics_url: str, spelling: list[str]) -> None:
    result = runner.invoke(app, ["watch", metrics_url, "--once", "--format", "json", *spelling])
    assert result.exit_code == 0, result.output
    assert '"demo_total' in result.stdout


def test_watch_help_shows_every_not_interval() -> None:
    text = runner.invoke(app, ["watch", "--help"], terminal_width=200).stdout
    assert "--every DURATION" in text and "[default: 2s]" in text
    assert "--interval" not in text and "-i," not in text


def test_region_completion_from_the_snapshot() -> None:
    words = dict(complete_region("fr"))
    assert "fra" in words and words["fra"].startswith("region 4") and "fr" in words  # code and country
    assert dict(complete_region("eu")) == {
        "eu": "the member states of the European Union",
        "europe": "continent Europe",
    }
    assert "north-america" in dict(complete_region("north"))
    assert dict(complete_region("4"))["4"].startswith("region fra")
    assert [w for w, _ in complete_region("us,fr")] == ["us,fr", "us,fra"]  # the last item of a list


def test_shell_completion_calls_the_region_completer() -> None:
    script = Path(os.path.dirname(os.path.realpath(os.sys.executable))) / "derptool"  # type: ignore[attr-defined]
    argv = [str(script)] if script.exists() else ["derptool"]
    for words, expect in (("derptool latency --region fr", "fra"), ("derptool omit --keep north", "north-america")):
        env = dict(os.environ, _DERPTOOL_COMPLETE="complete_bash", COMP_WORDS=words, COMP_CWORD="3")
        done = subprocess.run(argv, env=env, capture_output=True, text=True, cwd=REPO, timeout=60)
        assert expect in done.stdout.split(), (words, done.stdout, done.stderr)
