"""Reading site reports from files and directories (the I/O edge of :mod:`derptool.fleet`).

A directory stands for the regular files directly in it (sorted; names starting with ``.`` skipped). A file
that cannot be read or is not a report costs one line in :attr:`LoadedReports.problems` and is skipped.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from derptool.errors import DerptoolError
from derptool.fileio import read_file
from derptool.fleet.reports import SiteReport, parse_report, site_name


@dataclass
class LoadedReports:
    """The usable reports, and one line for each file that was skipped."""

    reports: list[SiteReport] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


MAX_DIRECTORY_FILES = 10_000
"""Most report files read from one directory argument."""


def expand(paths: Iterable[str]) -> tuple[list[str], list[str]]:
    """The report files *paths* name (directories replaced by their files), and problems with the paths."""
    files: list[str] = []
    problems: list[str] = []
    for path in paths:
        p = Path(path)
        if path != "-" and p.is_dir():
            try:
                inside = sorted(str(c) for c in p.iterdir() if c.is_file() and not c.name.startswith("."))
            except OSError as err:
                problems.append(f"{path}: cannot list the directory: {err.strerror or err}")
                continue
            if len(inside) > MAX_DIRECTORY_FILES:
                problems.append(f"{path}: holds {len(inside)} files, more than the {MAX_DIRECTORY_FILES} read")
                continue
            if not inside:
                problems.append(f"{path}: directory holds no report files")
            files.extend(inside)
        else:
            files.append(path)
    return files, problems


def load_reports(paths: Iterable[str]) -> LoadedReports:
    """Read the reports in *paths* (files, directories, ``-`` for stdin), skipping what is not usable.

    Two reports for the same site (same file name in two directories) are a problem: the second is skipped.
    """
    files, problems = expand(paths)
    out = LoadedReports(problems=problems)
    seen: dict[str, str] = {}
    for name in files:
        try:
            report = parse_report(read_file(name).data, file="<stdin>" if name == "-" else name, site=site_name(name))
        except DerptoolError as err:
            out.problems.append(str(err))
            continue
        if report.site in seen:
            out.problems.append(
                f"{name}: site {report.site!r} already comes from {seen[report.site]}; skipped "
                "(the site is the file name: rename one of them)"
            )
            continue
        seen[report.site] = name
        out.reports.append(report)
        out.notes.extend(report.notes)
    return out
