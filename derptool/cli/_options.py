"""Option types the commands share: durations (``--timeout``, ``--every``), ``--map``, ``--region``, ``--ca-file``.

A duration is ``500ms``, ``5s``, ``2m``, ``1h`` or plain seconds, and arrives in the command as seconds (float).
"""

from __future__ import annotations

import math
import re
from typing import Annotated, Any

import typer
from typer._click.exceptions import UsageError as ClickUsageError
from typer._click.types import ParamType

from derptool.errors import DerptoolError, UsageError

MAX_DURATION = 30 * 86400.0
"""Longest duration any option accepts when it names no bound of its own: 30 days."""

_DURATION = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*(ms|s|m|h)?\s*$")
_UNIT = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


def parse_duration(
    text: str, option: str = "duration", *, low: float | None = None, high: float | None = None
) -> float:
    """Seconds from ``500ms``, ``5s``, ``2m``, ``1h`` or plain seconds (``5``, ``0.5``); :class:`UsageError`
    (one line naming *option*) when it is not a positive duration or lies outside ``[low, high]`` seconds."""
    m = _DURATION.match(text) if text.isascii() else None
    value = float(m.group(1)) * _UNIT[m.group(2)] if m else 0.0
    if not m or not value > 0:
        raise UsageError(f"{option}: {text!r} is not a positive duration (examples: 500ms, 5s, 2m, or seconds: 5)")
    lo, hi = 0.0 if low is None else low, MAX_DURATION if high is None else high
    if not lo <= value <= hi:
        raise UsageError(f"{option}: {text} is outside {_span(lo)}..{_span(hi)}")
    return value


def _span(seconds: float) -> str:
    if seconds >= 86400 and seconds % 86400 == 0:
        return f"{seconds / 86400:g} days"
    return f"{seconds:g}s"


class Duration(ParamType):
    """A Click type for durations (see :func:`parse_duration`): the option's value arrives as seconds (float)."""

    name = "duration"

    def __init__(self, low: float | None = None, high: float | None = None) -> None:
        self.low, self.high = low, high

    def get_metavar(self, param: Any, ctx: Any = None) -> str:
        return "DURATION"

    def convert(self, value: Any, param: Any, ctx: Any) -> float:
        if isinstance(value, int | float):
            value = str(value)
        option = param.opts[0] if param is not None and param.opts else "duration"
        try:
            return parse_duration(str(value), option, low=self.low, high=self.high)
        except DerptoolError as err:
            raise ClickUsageError(
                f"invalid value for {option}: {err.message.removeprefix(option + ': ')}", ctx
            ) from None


_DECIMAL = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
"""A plain decimal number (no ``_`` separators, no other digits than ASCII ones, no ``nan``/``inf``)."""


class FiniteFloat(ParamType):
    """Click's float type, refusing ``nan``, ``inf``, numbers that overflow to it and anything but plain decimal
    digits (``1_0``, full-width digits); keeps a range's bounds.

    The CLI gives every float option this type (:func:`finite_float_params`), so no option can take a value
    that compares false with everything (``--max-increase nan`` would disable a gate) or overflows a sleep.
    """

    name = "float"

    def __init__(self, wrapped: Any) -> None:
        self.wrapped = wrapped

    def get_metavar(self, param: Any, ctx: Any = None) -> str | None:
        got: str | None = self.wrapped.get_metavar(param, ctx)
        return got

    def _allowed(self) -> str:
        low, high = getattr(self.wrapped, "min", None), getattr(self.wrapped, "max", None)
        if low is not None and high is not None:
            return f"a number from {low:g} to {high:g}"
        if low is not None:
            return f"a finite number of at least {low:g}"
        if high is not None:
            return f"a finite number of at most {high:g}"
        return "a finite number"

    def convert(self, value: Any, param: Any, ctx: Any) -> Any:
        if isinstance(value, str):
            text = value.strip()
            number = float(text) if _DECIMAL.fullmatch(text) else math.nan
            if not math.isfinite(number):
                option = param.opts[0] if param is not None and param.opts else "value"
                raise ClickUsageError(f"invalid value for {option}: {value!r} is not {self._allowed()}", ctx)
        elif isinstance(value, float) and not math.isfinite(value):
            raise ClickUsageError(f"{value!r} is not {self._allowed()}", ctx)
        return self.wrapped.convert(value, param, ctx)


def finite_float_params(command: Any) -> None:
    """Give every float option and argument of *command* the :class:`FiniteFloat` type (idempotent)."""
    from typer._click.types import FloatParamType

    for param in getattr(command, "params", []):
        if isinstance(param.type, FloatParamType):
            param.type = FiniteFloat(param.type)


def timeout_option(default_help: str, *, low: float = 0.1, high: float = 120.0, short: bool = True) -> Any:
    """A ``--timeout DURATION`` option (``5s``, ``500ms``, plain seconds) whose value is seconds (float)::

    timeout: Annotated[float, timeout_option("Time to wait for each network step.")] = 5.0
    """
    names = ("--timeout", "-t") if short else ("--timeout",)
    return typer.Option(
        *names,
        click_type=Duration(low, high),
        metavar="DURATION",
        help=f"{default_help} A duration: 500ms, 5s, 2m, or plain seconds.",
    )


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
