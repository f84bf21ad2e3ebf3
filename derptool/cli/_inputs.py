"""Reading what a command is given: the ``--map`` narrowed by ``--region``, and the files named as arguments."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING

from typer._click.globals import get_current_context

from derptool.cli._errors import report, warn
from derptool.errors import DerptoolError, InputError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from derptool.derpmap import DERPMap
    from derptool.derpmap.sources import LoadedMap
    from derptool.fileio import FileSnapshot


def load_cli_map(map_spec: str, *, require_live: bool = False) -> LoadedMap:
    """Load the map *map_spec* names, notices on stderr; ``--refresh`` (when the command has it) retries the
    live map now."""
    from derptool.cli._options import REFRESH
    from derptool.derpmap.sources import load_map  # lazy: the map sources are heavy

    ctx = get_current_context(silent=True)
    refresh = bool(ctx is not None and ctx.meta.get(REFRESH))
    return load_map(map_spec, notice=warn, require_live=require_live, refresh=refresh)


def load_selected(map_spec: str, selectors: list[str] | None) -> tuple[LoadedMap, DERPMap]:
    """Load the map *map_spec* names and narrow it to the regions *selectors* match (all when none).

    Notices (fallback source, ambiguous selectors) go to stderr.
    """
    loaded = load_cli_map(map_spec)
    dmap = loaded.derp_map
    if selectors:
        # lazy: the selectors are heavy, and every map command's --help imports this module
        from derptool.derpmap.geo import resolve

        res = resolve(selectors, dmap)
        for note in res.notes:
            warn(note)
        dmap = dmap.subset(res.region_ids)
    return loaded, dmap


POLICY_SUFFIXES = (".hujson", ".json")
"""The files a directory given to ``validate`` or ``fmt`` stands for (searched recursively)."""
_GLOB = re.compile(r"[*?[]")


def expand_paths(names: list[str], empty: Callable[[str], None]) -> list[str]:
    """The files *names* stand for, in order, each once: a file (or ``-``) as given; a directory for the
    ``*.hujson`` and ``*.json`` files below it (recursively, hidden folders skipped, sorted); a glob
    (``policies/*.hujson``, ``**`` across folders) for what it matches, sorted, directories expanded again.

    A name that is none of these (a missing file, a glob that matches nothing) stays, so that reading it
    reports why; *empty* is called with each directory (or glob) that holds no policy file.
    """
    out: list[str] = []
    for name in names:
        path = Path(name)
        if name == "-" or path.is_file() or (not path.is_dir() and not _GLOB.search(name)):
            out.append(name)
            continue
        if path.is_dir():
            found = _policy_files(path)
        else:
            import glob  # lazy: only a pattern needs it

            matches = sorted(glob.glob(name, recursive=True))
            if not matches:
                out.append(name)  # reading it says it does not exist
                continue
            found = []
            for match in matches:
                found += _policy_files(Path(match)) if Path(match).is_dir() else [match]
        if not found:
            empty(name)
        out += found
    return list(dict.fromkeys(out))


def _policy_files(folder: Path) -> list[str]:
    found = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        found += [os.path.join(root, f) for f in files if f.endswith(POLICY_SUFFIXES)]
    return sorted(found)


class InputFiles:
    """The files a command was given, read one by one; unreadable ones are reported on stderr and counted.

    With *expand*, directories and globs stand for the policy files in them (:func:`expand_paths`); one
    that holds none counts as unreadable.
    """

    def __init__(self, names: list[str], *, expand: bool = False) -> None:
        self.unreadable = 0
        self.names = expand_paths(names, self._empty) if expand else names

    def _empty(self, name: str) -> None:
        report(InputError(f"{name}: no *.hujson or *.json files in it"))
        self.unreadable += 1

    def __iter__(self) -> Iterator[tuple[str, FileSnapshot]]:
        from derptool.fileio import read_file  # lazy: fileio (hashlib) is not needed for --help

        for name in self.names:
            try:
                snap = read_file(name)
            except DerptoolError as err:
                report(err)
                self.unreadable += 1
                continue
            yield ("<stdin>" if name == "-" else name), snap
