"""A real Prometheus server for tests: Debian's ``prometheus`` on loopback, its own config and storage.

Standard library only. ``PrometheusServer(tmp, targets)`` writes a config scraping *targets* (each with its own
target labels) every second, optionally backfills history with ``promtool tsdb create-blocks-from openmetrics``
before the start, starts the server on a free loopback port and waits for ``/-/ready``; ``stop`` ends it.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from tests.support.ports import free_port
from tests.support.prereq import first_missing, missing_command


def missing() -> str | None:
    """Why a Prometheus test cannot run here, or None when it can."""
    return first_missing(missing_command("prometheus"), missing_command("promtool"))


@dataclass
class Target:
    """One scrape target: ``host:port`` and the labels Prometheus attaches to its series."""

    address: str
    labels: dict[str, str] = field(default_factory=dict)


@dataclass
class Sample:
    """One backfilled sample: metric labels, value and Unix time (seconds)."""

    labels: dict[str, str]
    value: float
    timestamp: float


def openmetrics(metric: str, samples: list[Sample]) -> str:
    """*samples* of a gauge as OpenMetrics text, grouped by series and sorted by time (as promtool wants)."""
    series: dict[tuple[tuple[str, str], ...], list[Sample]] = {}
    for s in samples:
        series.setdefault(tuple(sorted(s.labels.items())), []).append(s)
    lines = [f"# TYPE {metric} gauge"]
    for key, items in series.items():
        labels = ",".join(f'{k}="{v}"' for k, v in key)
        for s in sorted(items, key=lambda x: x.timestamp):
            lines.append(f"{metric}{{{labels}}} {s.value!r} {s.timestamp:.3f}")
    lines.append("# EOF")
    return "\n".join(lines) + "\n"


class PrometheusServer:
    """Prometheus on 127.0.0.1 scraping *targets* every second, with storage under *workdir*."""

    def __init__(
        self, workdir: Path, targets: list[Target], *, backfill: str | None = None, interval: str = "1s"
    ) -> None:
        self.workdir = workdir
        self.targets = targets
        self.backfill = backfill
        self.interval = interval
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = workdir / "prometheus.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _config(self) -> str:
        static = [{"targets": [t.address], "labels": t.labels} for t in self.targets]
        config = {
            "global": {"scrape_interval": self.interval, "scrape_timeout": self.interval, "evaluation_interval": "1m"},
            "scrape_configs": [{"job_name": "derptool", "static_configs": static}] if static else [],
        }
        return json.dumps(config, indent=2)  # JSON is YAML

    def start(self, timeout: float = 30.0) -> PrometheusServer:
        data = self.workdir / "data"
        data.mkdir(parents=True, exist_ok=True)
        if self.backfill is not None:
            source = self.workdir / "backfill.om"
            source.write_text(self.backfill)
            subprocess.run(
                ["promtool", "tsdb", "create-blocks-from", "openmetrics", "-q", str(source), str(data)],
                check=True,
                capture_output=True,
                timeout=60,
            )
        config = self.workdir / "prometheus.yml"
        config.write_text(self._config())
        self.port = free_port()
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen(
                [
                    "prometheus",
                    f"--config.file={config}",
                    f"--storage.tsdb.path={data}",
                    f"--web.listen-address=127.0.0.1:{self.port}",
                    "--log.level=warn",
                    "--storage.tsdb.retention.time=30d",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"prometheus exited ({self.proc.returncode}): {self.log.read_text()[-2000:]}")
            with contextlib.suppress(OSError), urllib.request.urlopen(f"{self.url}/-/ready", timeout=1) as resp:
                if resp.status == 200:
                    return self
            time.sleep(0.05)
        self.stop()
        raise RuntimeError("prometheus did not become ready in time")

    def query(self, promql: str) -> list[dict[str, Any]]:
        """The instant vector *promql* evaluates to now."""
        url = f"{self.url}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
        with urllib.request.urlopen(url, timeout=5) as resp:
            return json.load(resp)["data"]["result"]  # type: ignore[no-any-return]

    def wait_for(self, promql: str, count: int, timeout: float = 20.0) -> list[dict[str, Any]]:
        """Poll *promql* until it returns at least *count* series (bounded by *timeout*)."""
        deadline = time.monotonic() + timeout
        result: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            result = self.query(promql)
            if len(result) >= count:
                return result
            time.sleep(0.1)
        raise TimeoutError(f"{promql!r} gave {len(result)} series, wanted {count}: {self.log.read_text()[-1000:]}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def __enter__(self) -> PrometheusServer:
        return self.start()

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()
