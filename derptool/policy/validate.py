"""Validate policy files: HuJSON syntax, shape (types, unknown keys), semantic checks, with positions."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from derptool._gc import collector_paused
from derptool._types import JsonPath, json_pointer
from derptool.fileio import read_file
from derptool.policy.checks import check_policy
from derptool.policy.problems import Finding, Problem, locate, value_offset
from derptool.policy.shape import check_shape, object_from_pairs, policy_spec

if TYPE_CHECKING:
    from derptool.hujson import HuJSONError
    from derptool.policy.engine.tailnet import Tailnet


class _Constant(ValueError):
    pass


def _reject_constant(name: str) -> Any:
    raise _Constant(name)


def decode(src: bytes) -> Any:
    """HuJSON *src* to plain data whose objects remember duplicate keys; raises ``HuJSONError``."""
    try:  # plain JSON (most policies that tools write) needs no HuJSON pass
        return json.loads(src.decode("utf-8"), object_pairs_hook=object_from_pairs, parse_constant=_reject_constant)
    except (ValueError, RecursionError):
        pass  # comments, trailing commas, or an error that HuJSON's parser describes
    # lazy: the HuJSON package costs more start-up than validating a plain JSON policy
    from derptool.hujson import parse, standardize

    std = standardize(src)  # raises HuJSONError with Go's message and position
    try:
        return json.loads(
            std.decode("utf-8", "replace"), object_pairs_hook=object_from_pairs, parse_constant=_reject_constant
        )
    except (ValueError, RecursionError):  # pragma: no cover - standardize accepted it, so this is unexpected
        parse(src)
        raise


def _syntax_error(err: ValueError) -> HuJSONError:
    """*err* when it is the ``HuJSONError`` :func:`decode` raises for a syntax error; anything else is raised
    again."""
    from derptool.hujson import HuJSONError  # lazy: as in decode (which loaded it to raise one)

    if not isinstance(err, HuJSONError):
        raise err
    return err


def findings(
    data: Any, tailnet: Tailnet | None = None, lines: dict[JsonPath, int] | None = None, file: str | None = None
) -> list[Finding]:
    """Shape and semantic findings for decoded policy *data*, with paths into *data* as written.

    With *tailnet*, a valid policy's ``tests`` and ``sshTests`` are run against it too; a failing test is
    an error starting with ``test(s) failed``. Without it only the tests that fail whatever the tailnet
    are reported (a destination that is not one host and one port, a test without source or checks).
    """
    canonical, shape = check_shape(data, policy_spec())
    out = list(shape.findings) + list(overflowing_numbers(data))
    for f in check_policy(canonical):
        out.append(Finding(shape.original_path(f.path), f.message, f.severity, f.at_key))
    if tailnet is not None and not any(f.severity == "error" for f in out) and isinstance(canonical, dict):
        # lazy: the engine is needed only with a tailnet, and importing it adds ~15 % to every validate run
        from derptool.policy.engine.compile import compile_policy
        from derptool.policy.engine.tests import run_tests

        report = run_tests(compile_policy(canonical, tailnet), lines, file)
        for failure in report.failures:
            out.append(Finding(shape.original_path(failure.path), failure.message))
    return out


def overflowing_numbers(data: Any) -> Iterator[Finding]:
    """A finding for every number in *data* too large for a float64 (``1e400``): Go's decoder refuses them."""
    stack: list[tuple[JsonPath, Any]] = [((), data)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, float) and not math.isfinite(value):
            yield Finding(path, "the number is out of range for a float64 (Go's JSON decoder refuses it)")
        elif isinstance(value, dict):
            stack.extend(((*path, k), v) for k, v in value.items())
        elif isinstance(value, list):
            stack.extend(((*path, i), v) for i, v in enumerate(value))


def count_tests(data: Any) -> int:
    """How many ``tests`` and ``sshTests`` entries decoded policy *data* has (any key case)."""
    if not isinstance(data, dict):
        return 0
    return sum(len(v) for k, v in data.items() if k.lower() in ("tests", "sshtests") and isinstance(v, list))


def validate_bytes(src: bytes, file: str = "<policy>", tailnet: Tailnet | None = None) -> list[Problem]:
    """All problems of one policy file's bytes, sorted by position.

    A HuJSON syntax error is one problem at its position (nothing else can be checked then). With
    *tailnet* the policy's tests are run against it (see :func:`findings`).
    """
    with collector_paused():  # decoded policies hold no cycles: collections while building them only cost time
        try:
            data = decode(src)
        except ValueError as err:
            syntax = _syntax_error(err)
            return [Problem(file, syntax.line or 1, syntax.column or 1, (), syntax.reason)]
        lines = None
        if tailnet is not None:
            from derptool.policy.engine.source import parse_policy  # lazy: as in findings

            lines = parse_policy(src, file).lines
        found = findings(data, tailnet, lines, file)
    if not found:
        return []
    from derptool.hujson import parse, position  # lazy: as in decode, needed only to place problems

    root = parse(src)
    problems = []
    for f in found:
        offset = value_offset(root, f.path, f.at_key)
        line, column = position(src, offset)
        message = f.message
        if f.also is not None:
            message += f" (the other is at line {position(src, value_offset(root, f.also, True))[0]})"
        problems.append(Problem(file, line, column, f.path, message, f.severity))
    problems.sort(key=lambda p: (p.line, p.column))
    return problems


def error_messages(src: bytes) -> list[str]:
    """The messages of *src*'s validation errors, without positions (no syntax tree is built): for comparing
    a policy before and after an edit."""
    try:
        data = decode(src)
    except ValueError as err:
        return [_syntax_error(err).reason]
    return [f.message for f in findings(data) if f.severity == "error"]


def validate_files(paths: Iterable[str | Path]) -> list[Problem]:
    """All problems of all files, in order (``-`` reads stdin).

    A file that cannot be read raises :class:`~derptool.errors.InputError` (exit 2).
    """
    out: list[Problem] = []
    for path in paths:
        snap = read_file(path)
        out.extend(validate_bytes(snap.data, str(path)))
    return out


__all__ = ["decode", "findings", "json_pointer", "locate", "validate_bytes", "validate_files"]
