"""Shared pieces of the CLI: the Typer app (whose command modules load lazily), error mapping, common options."""

from __future__ import annotations

import functools
import importlib
import sys
from collections.abc import Callable
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from typer.core import TyperGroup

from derptool import __version__
from derptool.errors import DerptoolError

if TYPE_CHECKING:
    from collections.abc import Iterator

    from derptool.derpmap import DERPMap
    from derptool.derpmap.sources import LoadedMap
    from derptool.fileio import FileSnapshot
    from derptool.hujson import HuJSONError

# Every command: its name, the module of derptool.cli that defines it, and its one-line help for
# ``derptool --help``. A command's module is imported only when that command runs (or shows its help), so
# start-up pays for one command, not all. tests/test_cli_lazy.py keeps this table true to the modules.
COMMANDS: dict[str, tuple[str, str]] = {
    "map": ("maps", "Show the DERP map: regions, their geography, nodes and flags."),
    "latency": ("latency", "Measure the latency to each DERP region, like tailscale netcheck."),
    "nat": ("nat", "Detect the NAT type by STUN to several DERP servers."),
    "omit": ("maps", "Remove DERP regions: a policy derpMap fragment, or an edit."),
    "grants": ("grants", "Send internet traffic only through exit nodes with a tag."),
    "impact": ("impact", "What removing DERP regions costs each site, from reports or Prometheus."),
    "region": ("region", "Self-hosted DERP regions for a policy or headscale."),
    "check": ("check", "Check a DERP server: DNS, STUN, TLS, HTTPS and the DERP handshake."),
    "diff": ("diff", "Compare two DERP maps: regions and nodes added, removed, changed."),
    "validate": ("validate", "Check tailnet policy files offline, as Tailscale does."),
    "fmt": ("fmt", "Format HuJSON policy files as Tailscale's hujson.Format does."),
    "policy": ("policy", "What a policy allows on a tailnet: compile, explain, egress."),
    "schema": ("validate", "Write the JSON Schemas of policy files and DERP maps."),
}


class LazyGroup(TyperGroup):
    """The root command group: lists :data:`COMMANDS` without importing them; imports one when it is used."""

    def list_commands(self, ctx: Any) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        found = self.commands.get(cmd_name)
        if found is None and cmd_name in COMMANDS:
            importlib.import_module(f"derptool.cli.{COMMANDS[cmd_name][0]}")
            found = _build(cmd_name)
            if found is not None:
                self.commands[cmd_name] = found
        return found

    def format_commands(self, ctx: Any, formatter: Any) -> None:
        with formatter.section("Commands"):
            formatter.write_dl([(name, text) for name, (_, text) in COMMANDS.items()])


def _build(name: str) -> Any:
    """The click command for *name*, from what its module registered on :data:`app`."""
    import typer.main as tm

    for command in app.registered_commands:
        if command.name == name:
            return tm.get_command_from_info(
                command, pretty_exceptions_short=app.pretty_exceptions_short, rich_markup_mode=app.rich_markup_mode)
    for group in app.registered_groups:
        if group.name == name:
            return tm.get_group_from_info(
                group, pretty_exceptions_short=app.pretty_exceptions_short, rich_markup_mode=app.rich_markup_mode,
                suggest_commands=app.suggest_commands)
    return None


app = typer.Typer(
    cls=LazyGroup,
    name="derptool",
    help="Measure, geofence and self-host Tailscale DERP relays; write and validate tailnet policy files.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)

F = TypeVar("F", bound=Callable[..., Any])


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


def warn(message: str) -> None:
    """Print a one-line notice on stderr."""
    print(f"derptool: {message}", file=sys.stderr)


def report(err: DerptoolError | HuJSONError) -> None:
    """Print *err* as one ``derptool: error:`` line on stderr."""
    print(f"derptool: error: {err}", file=sys.stderr)


def fail(err: DerptoolError | HuJSONError) -> typer.Exit:
    """Print *err* as one line on stderr and return the ``typer.Exit`` to raise (a HuJSON error is bad input: 2)."""
    report(err)
    return typer.Exit(err.exit_code if isinstance(err, DerptoolError) else 2)


def handle_errors(func: F) -> F:
    """Decorate a command so that a :class:`DerptoolError` becomes one line and its exit code."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except DerptoolError as err:
            raise fail(err) from None
        except ValueError as err:
            from derptool.hujson import HuJSONError

            if isinstance(err, HuJSONError):
                raise fail(err) from None
            raise
        except KeyboardInterrupt:
            print("derptool: interrupted", file=sys.stderr)
            raise typer.Exit(130) from None
        except BrokenPipeError:
            raise typer.Exit(0) from None

    return wrapper  # type: ignore[return-value]


class MapFormat(StrEnum):
    """Output formats for DERP-map shaped output."""

    table = "table"
    json = "json"


MapOption = Annotated[
    str,
    typer.Option(
        "--map",
        "-m",
        envvar="DERPTOOL_MAP",
        metavar="MAP",
        help="DERP map: 'default' (live, cached, bundled fallback), 'snapshot', a file (DERP map JSON, "
        "policy HuJSON, headscale YAML), an http(s) URL, or '-' for stdin.",
        show_default=True,
    ),
]


def load_selected(map_spec: str, selectors: list[str] | None) -> tuple[LoadedMap, DERPMap]:
    """Load the map *map_spec* names and narrow it to the regions *selectors* match (all when none).

    Notices (fallback source, ambiguous selectors) go to stderr.
    """
    from derptool.derpmap.geo import resolve
    from derptool.derpmap.sources import load_map

    loaded = load_map(map_spec, notice=warn)
    dmap = loaded.derp_map
    if selectors:
        res = resolve(selectors, dmap)
        for note in res.notes:
            warn(note)
        dmap = dmap.subset(res.region_ids)
    return loaded, dmap


RegionOption = Annotated[
    list[str] | None,
    typer.Option(
        "--region",
        "-r",
        metavar="SEL",
        help="Only these regions: ID, code, ISO country, 'eu', continent name, 'all' (repeatable, or comma-separated).",
    ),
]

CaFileOption = Annotated[
    str | None,
    typer.Option(
        "--ca-file",
        metavar="PEM",
        envvar="DERPTOOL_CA_FILE",
        help="Also trust the CA certificates in this PEM file for TLS.",
    ),
]


class InputFiles:
    """The files a command was given, read one by one; unreadable ones are reported on stderr and counted."""

    def __init__(self, names: list[str]) -> None:
        self.names = names
        self.unreadable = 0

    def __iter__(self) -> Iterator[tuple[str, FileSnapshot]]:
        from derptool.fileio import read_file

        for name in self.names:
            try:
                snap = read_file(name)
            except DerptoolError as err:
                report(err)
                self.unreadable += 1
                continue
            yield ("<stdin>" if name == "-" else name), snap
