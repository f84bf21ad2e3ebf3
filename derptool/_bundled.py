"""The data files shipped inside the package (``derptool/data/``), read through the package's own loader.

This is what :func:`pkgutil.get_data` does, without importing :mod:`importlib.resources` (with ``tempfile``,
``zipfile`` and ``random`` under it: some 4 ms of every ``latency`` start-up). It works wherever the package
loads from, a directory or a zip archive.
"""

from __future__ import annotations

import os

import derptool


def data_bytes(name: str) -> bytes:
    """The bytes of ``derptool/data/<name>``."""
    path = os.path.join(os.path.dirname(derptool.__file__ or ""), "data", name)
    get_data = getattr(derptool.__spec__.loader, "get_data", None)
    if get_data is None:  # a loader without get_data (none of the standard ones): read the file itself
        with open(path, "rb") as fh:
            return fh.read()
    return bytes(get_data(path))


def data_text(name: str) -> str:
    """The text (UTF-8) of ``derptool/data/<name>``."""
    return data_bytes(name).decode("utf-8")
