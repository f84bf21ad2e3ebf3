"""The Typer app of ``derptool``: its command table, whose modules load lazily, and its one-line usage errors.

Usage errors (an unknown option, a bad option value, a missing argument) reach the user as ONE line on stderr,
``derptool: error: <message> (see 'derptool CMD --help')``, exit 2; a full disk or a closed standard output
exits 2 too. Errors a command raises are mapped by :mod:`derptool.cli._errors`.
"""

from __future__ import annotations

import errno
import importlib
import os
import re
import sys
from typing import Annotated, Any

import typer
import typer.main as tm
from typer._click.core import Command
from typer._click.exceptions import ClickException, NoArgsIsHelpError, UsageError
from typer._click.shell_completion import CompletionItem
from typer.core import TyperArgument, TyperGroup

from derptool import __version__
from derptool.cli._options import finite_float_params

# Every command: its name, the module of derptool.cli that defines it, and its one-line help for
# ``derptool --help``. A command's module is imported only when that command runs (or shows its help), so
# start-up pays for one command, not all. tests/cli/test_lazy.py keeps this table true to the modules.
COMMANDS: dict[str, tuple[str, str]] = {
    "map": ("maps", "Show the DERP map: regions, their geography, nodes and flags."),
    "latency": ("latency", "Measure the latency to each DERP region, like tailscale netcheck."),
    "nat": ("nat", "Detect the NAT type by STUN to several DERP servers."),
    "omit": ("maps", "Remove DERP regions: a policy derpMap fragment, or an edit."),
    "grants": ("grants", "Send internet traffic only through exit nodes with a tag."),
    "impact": ("impact", "What removing DERP regions costs each site, from reports or Prometheus."),
    "region": ("region", "Self-hosted DERP regions for a policy or headscale."),
    "check": ("check", "Check a DERP server: DNS, STUN, TLS, HTTPS and the DERP handshake."),
    "watch": ("watch", "Live view of a Tailscale client's relayed vs direct traffic (any metrics)."),
    "diff": ("diff", "Compare two DERP maps: regions and nodes added, removed, changed."),
    "validate": ("validate", "Check tailnet policy files offline, as Tailscale does."),
    "fmt": ("fmt", "Format HuJSON policy files as Tailscale's hujson.Format does."),
    "policy": ("policy", "What a policy allows on a tailnet: compile, explain, egress."),
    "schema": ("validate", "Write the JSON Schemas of policy files and DERP maps."),
}


RECURSION_ROOM = 41_000
"""The recursion limit the CLI runs with: room to decode ``fileio.MAX_DEPTH`` (10 000) levels, 4 frames each."""


class OneLineUsageError(ClickException):
    """A usage error shown as one line, ``derptool: error: <message> (see 'derptool CMD --help')``, exit 2."""

    exit_code = 2

    def show(self, file: Any = None) -> None:
        print(f"derptool: error: {self.message}", file=sys.stderr)


def one_line(err: ClickException, path: str | None = None) -> OneLineUsageError:
    """*err* (Click's usage block: usage line, hint, message) as one line naming the command and its help.

    *path* is the command path to name when the error carries no context of its own.
    """
    message = " ".join(err.format_message().split()).rstrip(".")
    ctx = getattr(err, "ctx", None)
    path = ctx.command_path if ctx is not None else path
    if path:
        return OneLineUsageError(f"{path}: {message} (see '{path} --help')")
    return OneLineUsageError(message)


class _SubGroup(TyperGroup):
    """A command group whose subcommands' usage errors are one line naming the full command path (``region``)."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except NoArgsIsHelpError:
            raise
        except UsageError as err:
            sub = ctx.invoked_subcommand
            raise one_line(err, f"{ctx.command_path} {sub}" if sub else ctx.command_path) from None


class LazyGroup(_SubGroup):
    """The root command group: lists :data:`COMMANDS` without importing them; imports one when it is used.

    It also turns Click's three-line usage errors into one line (:class:`OneLineUsageError`), raises the
    interpreter's recursion limit for the documented nesting depth, and reports a failing standard output
    (a full disk, ``/dev/full``) as one line.
    """

    def list_commands(self, ctx: Any) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        found = self.commands.get(cmd_name)
        if found is None and cmd_name in COMMANDS:
            importlib.import_module(f"derptool.cli.{COMMANDS[cmd_name][0]}")
            found = _build(cmd_name)
            if found is not None:
                self.commands[cmd_name] = found
        if found is not None:
            _plain_arguments(found)  # also for commands Typer built itself (modules imported earlier)
        return found

    def format_commands(self, ctx: Any, formatter: Any) -> None:
        with formatter.section("Commands"):
            formatter.write_dl([(name, text) for name, (_, text) in COMMANDS.items()])

    def shell_complete(self, ctx: Any, incomplete: str) -> list[Any]:
        """Complete command names from :data:`COMMANDS` (importing none of them) and the root options."""
        items = [CompletionItem(name, help=text) for name, (_, text) in COMMANDS.items() if name.startswith(incomplete)]
        return items + [i for i in Command.shell_complete(self, ctx, incomplete) if i.value.startswith("-")]

    def make_context(self, info_name: str | None, args: list[str], parent: Any = None, **extra: Any) -> Any:
        try:
            return super().make_context(info_name, args, parent=parent, **extra)
        except NoArgsIsHelpError:
            raise
        except UsageError as err:
            raise one_line(err) from None

    def main(self, *args: Any, **kwargs: Any) -> Any:
        sys.setrecursionlimit(max(sys.getrecursionlimit(), RECURSION_ROOM))
        try:
            return super().main(*args, **kwargs)
        except SystemExit as done:
            code = done.code
        if not _flush_stdout():
            code = 2
        sys.exit(code)


def _flush_stdout() -> bool:
    """Flush standard output; on failure (disk full, ``/dev/full``) print one line and keep Python quiet."""
    try:
        sys.stdout.flush()
    except OSError as err:
        if err.errno == errno.EPIPE:
            _silence_stdout()
            return True
        print(f"derptool: error: cannot write the output: {err.strerror or err}", file=sys.stderr)
        _silence_stdout()
        return False
    return True


def _silence_stdout() -> None:
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):
        pass


class _PlainArgument(TyperArgument):
    """An argument shown in usage lines as ``FILE...`` / ``[FILE]`` / ``FILE``, not Typer's ``{FILE}``."""

    def make_metavar(self, ctx: Any, *, usage: bool = False) -> str:
        var = self.metavar or (self.name or "").upper()
        var = re.sub(r"^[\[{](.*)[\]}]$", r"\1", var)
        if self.nargs != 1 and not var.endswith("..."):
            var += "..."
        return var if self.required or not usage else f"[{var}]"


def _plain_arguments(command: Any) -> None:
    """Give every argument of *command* (and of its subcommands) the plain usage metavar; sub-groups report
    usage errors with their full path."""
    if type(command) is TyperGroup:
        command.__class__ = _SubGroup
    finite_float_params(command)
    for param in getattr(command, "params", []):
        if type(param) is TyperArgument:
            param.__class__ = _PlainArgument
    for sub in getattr(command, "commands", {}).values():
        _plain_arguments(sub)


def _build(name: str) -> Any:
    """The click command for *name*, from what its module registered on :data:`app`."""
    for command in app.registered_commands:
        if command.name == name:
            return tm.get_command_from_info(
                command, pretty_exceptions_short=app.pretty_exceptions_short, rich_markup_mode=app.rich_markup_mode
            )
    for group in app.registered_groups:
        if group.name == name:
            return tm.get_group_from_info(
                group,
                pretty_exceptions_short=app.pretty_exceptions_short,
                rich_markup_mode=app.rich_markup_mode,
                suggest_commands=app.suggest_commands,
            )
    return None


app = typer.Typer(
    cls=LazyGroup,
    name="derptool",
    help="Measure, geofence and self-host Tailscale DERP relays; write and validate tailnet policy files.",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"derptool {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version_callback, is_eager=True, help="Print the version and exit."),
    ] = False,
) -> None:
    """Measure, geofence and self-host Tailscale DERP relays; write and validate tailnet policy files."""
