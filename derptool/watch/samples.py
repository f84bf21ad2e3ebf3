"""Prometheus text exposition parsed into a :class:`Snapshot`, and what changed between two snapshots.

Parsing is ``prometheus_client``'s own text parser; a series is a metric sample name plus its labels, named
as the endpoint exposed it (the parser appends ``_total`` to a counter declared without it, as OpenMetrics
names counters; :func:`parse_snapshot` undoes that so ``derp_bytes_sent`` stays ``derp_bytes_sent``).
Rates are per second over the time between the scrapes. A counter that went down was reset (the process
restarted): its rate counts from zero, as Prometheus's ``rate()`` does.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from derptool.errors import ProtocolError

Labels = tuple[tuple[str, str], ...]
SeriesKey = tuple[str, Labels]

_COUNTER_KINDS = {"counter", "histogram", "summary", "gaugehistogram"}
_COUNTER_DECLARED = re.compile(r"^[ \t]*#[ \t]*TYPE[ \t]+(\S+)[ \t]+counter[ \t]*$", re.MULTILINE)


@dataclass(frozen=True)
class Sample:
    """One series' value and the type its metric family declared (``counter``, ``gauge``, ``unknown``...)."""

    value: float
    kind: str


@dataclass(frozen=True)
class Snapshot:
    """Every series of one scrape, and when it was taken (seconds on a monotonic clock)."""

    taken: float
    series: dict[SeriesKey, Sample]

    def value(self, name: str, **labels: str) -> float | None:
        """The value of the series *name* with exactly *labels*, or ``None``."""
        sample = self.series.get((name, tuple(sorted(labels.items()))))
        return None if sample is None else sample.value

    def with_name(self, name: str) -> dict[Labels, float]:
        """Every series called *name*, by labels."""
        return {labels: s.value for (n, labels), s in self.series.items() if n == name}


def parse_snapshot(text: str, *, taken: float, source: str = "scrape") -> Snapshot:
    """Parse Prometheus text exposition; :class:`ProtocolError` (naming *source*) when it is not that."""
    series: dict[SeriesKey, Sample] = {}
    declared = set(_COUNTER_DECLARED.findall(text))
    try:
        for family in text_string_to_metric_families(text):
            bare = family.type == "counter" and family.name in declared and f"{family.name}_total" not in declared
            for s in family.samples:
                name = s.name.removesuffix("_total") if bare else s.name
                series[(name, tuple(sorted(s.labels.items())))] = Sample(float(s.value), family.type)
    except (ValueError, IndexError, KeyError, TypeError) as err:
        raise ProtocolError(f"{source}: not Prometheus text exposition format ({err})") from None
    return Snapshot(taken, series)


@dataclass(frozen=True)
class SeriesChange:
    """How one series moved between two scrapes."""

    name: str
    labels: dict[str, str]
    kind: str
    value: float
    delta: float
    per_s: float
    reset: bool = False
    """A counter went down (its process restarted); ``per_s`` counts from zero."""

    @property
    def selector(self) -> str:
        """``name{label="value",...}`` as Prometheus writes a series."""
        if not self.labels:
            return self.name
        inner = ",".join(f'{k}="{v}"' for k, v in self.labels.items())
        return f"{self.name}{{{inner}}}"

    def to_data(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "series": self.selector,
            "name": self.name,
            "labels": self.labels,
            "type": self.kind,
            "value": self.value,
            "delta": self.delta,
            "per_s": self.per_s,
            "reset": self.reset,
        }


def changes(
    before: Snapshot,
    after: Snapshot,
    *,
    match: re.Pattern[str] | None = None,
    exclude: re.Pattern[str] | None = None,
    only_changed: bool = True,
) -> list[SeriesChange]:
    """Series of *after* whose value differs from *before* (all of them unless *only_changed*), sorted.

    *match* keeps series whose ``name{labels}`` text it finds (``re.search``), and *exclude* then drops
    those whose text it finds. A series new in *after* changed from nothing: its delta is its value.
    """
    dt = after.taken - before.taken
    out: list[SeriesChange] = []
    for key in sorted(after.series):
        name, labels = key
        now = after.series[key]
        old = before.series.get(key)
        prev = old.value if old is not None else 0.0
        if only_changed and old is not None and old.value == now.value:
            continue
        change = _change(name, labels, now, prev, dt)
        if match is not None and not match.search(change.selector):
            continue
        if exclude is not None and exclude.search(change.selector):
            continue
        out.append(change)
    return out


def _change(name: str, labels: Labels, now: Sample, prev: float, dt: float) -> SeriesChange:
    delta = now.value - prev
    reset = now.kind in _COUNTER_KINDS and delta < 0
    moved = now.value if reset else delta
    per_s = moved / dt if dt > 0 else 0.0
    return SeriesChange(name, dict(labels), now.kind, now.value, delta, per_s, reset)


def counter_rate(before: Snapshot, after: Snapshot, name: str, labels: Iterable[tuple[str, str]]) -> float:
    """Per-second increase of one counter between the snapshots (0 when absent; resets count from zero)."""
    key = (name, tuple(sorted(labels)))
    now = after.series.get(key)
    if now is None:
        return 0.0
    old = before.series.get(key)
    change = _change(name, key[1], now, old.value if old is not None else 0.0, after.taken - before.taken)
    return change.per_s
