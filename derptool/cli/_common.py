"""Shared pieces of the CLI: the Typer app, error mapping and common options."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from derptool import __version__
from derptool.errors import DerptoolError

if TYPE_CHECKING:
    from collections.abc import Iterator

    from derptool.derpmap import DERPMap
    from derptool.derpmap.sources import LoadedMap
    from derptool.fileio import FileSnapshot
    from derptool.hujson import HuJSONError

app = typer.Typer(
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
