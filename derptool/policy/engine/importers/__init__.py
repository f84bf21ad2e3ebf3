"""Tailnets from what control planes and clients print, each recognised by its shape.

:func:`import_tailnet` reads one or two files (or a directory) and returns an :class:`Imported`: the
canonical :class:`~derptool.policy.engine.tailnet.Tailnet` (every source goes through the one reader of
derptool's tailnet file, so duplicate names and addresses are refused the same way) plus notes about
what the source leaves out. One module per source:

- :mod:`.topology`: derptool's tailnet file (and a whole recorded case holding a ``topology``);
- :mod:`.status`: ``tailscale status --json`` (only the peers one client sees);
- :mod:`.headscale`: ``headscale nodes list --output json`` with ``headscale users list --output json``
  (two files, in either order, or a directory holding both);
- :mod:`.api`: Tailscale's API device list (``GET /api/v2/tailnet/-/devices?fields=all``).

A document of another shape, or a source missing its other half, is one :class:`TailnetError` naming
the file and the fix.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from derptool.fileio import read_file
from derptool.policy.engine.importers import api, headscale, status, topology
from derptool.policy.engine.importers._fields import decode
from derptool.policy.engine.tailnet import Tailnet, TailnetError, from_topology

MAX_DIRECTORY_ENTRIES = 64
"""The most entries a ``--tailnet`` directory may hold (it is meant for the two headscale lists)."""
SHAPES = (
    'derptool\'s tailnet file {"users", "nodes"}, `tailscale status --json`, headscale\'s '
    '`nodes list`/`users list --output json`, or the API\'s device list {"devices": [...]}'
)


@dataclass
class Imported:
    """A tailnet read from a source, what the source was, and notes about what it leaves out."""

    tailnet: Tailnet
    source: str
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _Document:
    file: str
    src: bytes
    data: Any

    @property
    def kind(self) -> str:
        d = self.data
        if status.looks_like(d):
            return "status"
        if api.looks_like(d):
            return "api"
        if headscale.looks_like_nodes(d):
            return "headscale-nodes"
        if headscale.looks_like_users(d):
            return "headscale-users"
        if isinstance(d, list) and not d:
            return "empty-list"
        if topology.looks_like(d):
            return "topology"
        return "unknown"


def _read(path: str) -> _Document:
    snap = read_file(path)
    return _Document(str(path), snap.data, decode(snap.data, str(path)))


def _unknown(doc: _Document) -> TailnetError:
    return TailnetError(f"not a tailnet: expected {SHAPES}", file=doc.file)


def _single(doc: _Document) -> Imported:
    kind = doc.kind
    if kind == "status":
        tn = from_topology(status.to_topology(doc.data, doc.file), file=doc.file)
        return Imported(tn, status.KIND, [status.PARTIAL_NOTE])
    if kind == "api":
        return Imported(from_topology(api.to_topology(doc.data, doc.file), file=doc.file), api.KIND)
    if kind in ("headscale-nodes", "headscale-users", "empty-list"):
        have = "users" if kind == "headscale-users" else "nodes"
        need = "nodes" if have == "users" else "users"
        raise TailnetError(
            f"headscale's {have} list alone: give `headscale {need} list --output json` too "
            f"(a second --tailnet file, or a directory holding both)",
            file=doc.file,
        )
    if kind == "topology":
        return Imported(topology.to_tailnet(doc.data, doc.file, doc.src), topology.KIND)
    raise _unknown(doc)


def _pair(a: _Document, b: _Document) -> Imported:
    kinds = (a.kind, b.kind)
    if "headscale-nodes" in kinds or "headscale-users" in kinds or kinds == ("empty-list", "empty-list"):
        if kinds[1] == "headscale-nodes" or kinds[0] == "headscale-users":
            a, b = b, a
            kinds = (kinds[1], kinds[0])
        if kinds[0] not in ("headscale-nodes", "empty-list") or kinds[1] not in ("headscale-users", "empty-list"):
            odd = a if kinds[0] not in ("headscale-nodes", "empty-list") else b
            raise TailnetError(
                "with two --tailnet files, one must be `headscale nodes list --output json` and the other "
                f"`headscale users list --output json`; this one is {odd.kind}",
                file=odd.file,
            )
        data = headscale.to_topology(a.data, a.file, b.data, b.file)
        return Imported(from_topology(data, file=a.file), "headscale's nodes and users lists")
    first = a if a.kind != "unknown" else b
    raise TailnetError(
        "two --tailnet files are headscale's nodes list and users list; give every other tailnet as one file",
        file=first.file,
    )


def _directory(path: Path) -> Imported:
    try:
        names = sorted(os.listdir(path))
    except OSError as err:
        raise TailnetError(f"cannot list the directory: {err.strerror or err}", file=str(path)) from None
    if len(names) > MAX_DIRECTORY_ENTRIES:
        raise TailnetError(
            f"{len(names)} entries; a --tailnet directory holds headscale's nodes and users lists "
            f"(at most {MAX_DIRECTORY_ENTRIES} entries)",
            file=str(path),
        )
    docs: dict[str, _Document] = {}
    for name in names:
        if not name.endswith(".json"):
            continue
        p = path / name
        try:
            st = os.stat(p)
        except OSError:
            continue
        if not stat.S_ISREG(st.st_mode):
            continue  # FIFOs, devices and directories are never opened
        doc = _read(str(p))
        kind = doc.kind
        if kind in ("headscale-nodes", "headscale-users"):
            if kind in docs:
                raise TailnetError(
                    f"two {kind.split('-')[1]} lists: {docs[kind].file} and {doc.file}; keep one", file=str(path)
                )
            docs[kind] = doc
    missing = [k for k in ("headscale-nodes", "headscale-users") if k not in docs]
    if missing:
        what = " and ".join(f"`headscale {k.split('-')[1]} list --output json`" for k in missing)
        raise TailnetError(f"the directory holds no {what} (save it there as a .json file)", file=str(path))
    return _pair(docs["headscale-nodes"], docs["headscale-users"])


def parse_tailnet(src: bytes, file: str = "<tailnet>") -> Tailnet:
    """A tailnet from the bytes of one document of any single-file shape (see the module docstring)."""
    return _single(_Document(file, src, decode(src, file))).tailnet


def import_tailnet(paths: str | Sequence[str]) -> Imported:
    """Read a tailnet from one file (``-`` is stdin), two files (headscale's lists) or a directory."""
    if isinstance(paths, str):
        paths = [paths]
    if not paths:
        raise TailnetError("no tailnet given", file="--tailnet")
    if len(paths) > 2:
        raise TailnetError("at most two --tailnet files (headscale's nodes list and users list)", file=str(paths[2]))
    if len(paths) == 1:
        p = Path(paths[0])
        if paths[0] != "-" and p.is_dir():
            return _directory(p)
        return _single(_read(paths[0]))
    if paths[0] == paths[1]:
        raise TailnetError("the same file given twice as --tailnet", file=str(paths[0]))
    return _pair(_read(paths[0]), _read(paths[1]))


def load_tailnet(paths: str | Sequence[str]) -> Tailnet:
    """The tailnet of :func:`import_tailnet`, without the notes."""
    return import_tailnet(paths).tailnet


__all__ = ["Imported", "import_tailnet", "load_tailnet", "parse_tailnet"]
