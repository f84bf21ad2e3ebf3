"""Reading what a command is given: the ``--map`` narrowed by ``--region``, and the files named as arguments."""

from __future__ import annotations

from typing import TYPE_CHECKING

from derptool.cli._errors import report, warn
from derptool.errors import DerptoolError

if TYPE_CHECKING:
    from collections.abc import Iterator

    from derptool.derpmap import DERPMap
    from derptool.derpmap.sources import LoadedMap
    from derptool.fileio import FileSnapshot


def load_selected(map_spec: str, selectors: list[str] | None) -> tuple[LoadedMap, DERPMap]:
    """Load the map *map_spec* names and narrow it to the regions *selectors* match (all when none).

    Notices (fallback source, ambiguous selectors) go to stderr.
    """
    # lazy: the map sources and selectors are heavy, and every map command's --help imports this module
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


class InputFiles:
    """The files a command was given, read one by one; unreadable ones are reported on stderr and counted."""

    def __init__(self, names: list[str]) -> None:
        self.names = names
        self.unreadable = 0

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
