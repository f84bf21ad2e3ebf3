"""Drive the Go peer ``netcheckpeer`` (Tailscale's own netcheck, ``tests/support/go/cmd/netcheckpeer``).

:class:`LoopbackRegions` serves a map of N regions x 3 STUN-only nodes on 127.x.y.z addresses from the
project's delay responder (a separate process that logs the delay it really applied to each answer).

One process answers many requests, so the netcheck client keeps its history between rounds::

    with GoNetcheck() as go:
        report, wall_ms = go.report("map.json", full=True, enough=30)
        report["RegionLatency"]  # region ID (string) -> nanoseconds, as Go's netcheck.Report JSON

:func:`find_peer` looks in ``tests/support/go/bin`` (where ``.ci/build-go-peers`` puts it), then on PATH.
"""

from __future__ import annotations

import json
import queue
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import Any

ROOT = Path(__file__).resolve().parent.parent.parent

BIN = Path(__file__).resolve().parent / "go" / "bin"


def find_peer() -> str | None:
    """The ``netcheckpeer`` binary, or None when it was not built."""
    local = BIN / "netcheckpeer"
    if local.is_file():
        return str(local)
    return shutil.which("netcheckpeer")


class GoNetcheck:
    """A running ``netcheckpeer``: :meth:`report` runs one ``GetReport``."""

    def __init__(self, binary: str | None = None, *, bind: str = ":0") -> None:
        exe = binary or find_peer()
        if exe is None:
            raise FileNotFoundError("netcheckpeer is not built (run .ci/build-go-peers)")
        self.proc = subprocess.Popen([exe, "-bind", bind], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def report(self, map_path: str | Path, *, full: bool = False, enough: int = 0) -> tuple[dict[str, Any], float]:
        """Go's netcheck report for the map file, and GetReport's wall time in ms."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps({"map": str(map_path), "full": full, "enough": enough}) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"netcheckpeer ended (exit {self.proc.wait(5)})")
        answer = json.loads(line)
        if "error" in answer:
            raise RuntimeError(f"netcheckpeer: {answer['error']}")
        return answer["report"], answer["wall_ns"] / 1e6

    def close(self) -> None:
        """End the process (end of input), killing it if it does not stop."""
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        if self.proc.stdout is not None:
            self.proc.stdout.close()

    def __enter__(self) -> GoNetcheck:
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        self.close()


def go_latencies_ms(report: dict[str, Any], key: str = "RegionLatency") -> dict[int, float]:
    """A Go report's per-region latencies (nanoseconds in JSON) in milliseconds."""
    return {int(k): v / 1e6 for k, v in (report.get(key) or {}).items()}


class LoopbackRegions:
    """*n* regions of 3 STUN-only nodes, region *i* answering after ``delays[i]`` ms, as a tailcfg JSON map.

    Node *j* of region number *i* is ``127.{first_octet + i // 200}.{i % 200}.{j + 1}``; region IDs start at
    900. :meth:`applied` returns the delays the responder really applied since the last call.
    """

    def __init__(self, delays_ms: list[float], *, first_octet: int = 1) -> None:
        self.delays = {900 + i: ms for i, ms in enumerate(delays_ms)}
        binds: list[str] = []
        per_bind: list[str] = []
        for i, ms in enumerate(delays_ms):
            for j in range(3):
                binds += ["--bind", f"127.{first_octet + i // 200}.{i % 200}.{j + 1}:0"]
                per_bind.append(str(ms))
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.support.stun_responder", *binds, "--delays-ms", ",".join(per_bind), "--log"],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        listening = iter(json.loads(self.proc.stdout.readline())["listening"])
        self.lines: queue.Queue[dict[str, Any]] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        regions: dict[str, Any] = {}
        self.node_addr: dict[str, str] = {}
        for rid, ms in self.delays.items():
            nodes = []
            for j in range(3):
                bound = next(listening)
                ip, port = bound.rsplit(":", 1)
                name = f"{rid}{'abc'[j]}"
                self.node_addr[name] = bound
                # STUNTestIP makes Go probe the node even where netmon finds no non-loopback IPv4
                nodes.append(
                    {
                        "Name": name,
                        "RegionID": rid,
                        "HostName": ip,
                        "IPv4": ip,
                        "IPv6": "none",
                        "STUNTestIP": ip,
                        "STUNPort": int(port),
                        "STUNOnly": True,
                    }
                )
            regions[str(rid)] = {
                "RegionID": rid,
                "RegionCode": f"b{rid}",
                "RegionName": f"Bench {ms} ms",
                "Nodes": nodes,
            }
        self.data = {"Regions": regions}

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(json.loads(line))

    def applied(self, settle: float = 0.3) -> dict[tuple[str, str], float]:
        """(node address, client address) -> delay applied to the last answer, for the answers so far."""
        time.sleep(settle)
        out = {}
        while not self.lines.empty():
            e = self.lines.get()
            out[(e["bind"], e["peer"])] = e["delay_ms"]
        return out

    def first_node(self, region_id: int) -> str:
        """The address of a region's first node (the one its first probe goes to)."""
        return self.node_addr[f"{region_id}a"]

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)
        if self.proc.stdout is not None:
            self.proc.stdout.close()

    def __enter__(self) -> LoopbackRegions:
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        self.close()
