"""Start-up cost of the CLI, as ratios to ``python -c "import typer"`` (the floor of any typer CLI).

Every command runs in a fresh interpreter, interleaved round by round so machine load hits all alike; the
figure is the median CPU time (user + system, from ``wait4``) of each, divided by the floor's median. CPU time
rather than wall time, so that other work on the machine does not blur the ratios. Goals: every ``--help``
<= 1.5x, ``omit --region us --map snapshot`` <= 2.5x.

``derptool latency`` at 30 regions (3 nodes each, every one answering STUN from the project's loopback
responder, run as its own process as in ``latency_bench.py``) is set against ``derptool --help``: its CPU
beyond that of ``--help`` is what the measurement run adds to start-up (imports, reading the map, probing,
the table). Goal: <= 100 ms. With ``--no-latency`` the responder is not started.

    python bench/startup_bench.py [--rounds 15]
"""

from __future__ import annotations

import argparse
import compileall
import os
import shutil
import statistics
import subprocess
import sys
import tempfile


def _derptool() -> list[str]:
    script = os.path.join(os.path.dirname(sys.executable), "derptool")
    return [script] if os.path.exists(script) else [shutil.which("derptool") or sys.executable, "-m", "derptool"]


def _cpu_seconds(argv: list[str], env: dict[str, str]) -> float:
    """CPU time (user + system) of running *argv* to completion."""
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    _, _, usage = os.wait4(proc.pid, 0)
    proc.returncode = 0
    return usage.ru_utime + usage.ru_stime


def _cases() -> dict[str, tuple[list[str], float | None]]:
    from derptool.cli._app import COMMANDS

    cli = _derptool()
    cases: dict[str, tuple[list[str], float | None]] = {
        "import typer (floor)": ([sys.executable, "-c", "import typer"], None),
        "derptool --help": ([*cli, "--help"], 1.5),
    }
    for name in COMMANDS:
        cases[f"derptool {name} --help"] = ([*cli, name, "--help"], 1.5)
    cases["derptool omit --region us --map snapshot"] = ([*cli, "omit", "--region", "us", "--map", "snapshot"], 2.5)
    return cases


LATENCY_CASE = "derptool latency (30 regions)"
LATENCY_GOAL_MS = 100.0


def _latency_case(cases: dict[str, tuple[list[str], float | None]], tmp: str) -> object:
    """Start the loopback STUN responders of latency_bench.py and add the latency case; returns them."""
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import json

    import latency_bench

    responders = latency_bench.Responders()
    path = os.path.join(tmp, "map30.json")
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(latency_bench.build_map(responders.listening), fh)
    cases[LATENCY_CASE] = ([*_derptool(), "latency", "--map", path, "--timeout", "3s"], None)
    return responders


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--no-latency", action="store_true", help="leave out the latency case")
    args = parser.parse_args()
    cases = _cases()
    # an installed package carries its bytecode (pip compiles it); a checkout under PYTHONDONTWRITEBYTECODE
    # would compile every module from source on every run, which no user pays: compile it once here
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    compileall.compile_dir(os.path.join(root, "derptool"), quiet=1)
    tmp = tempfile.mkdtemp(prefix="startup-bench-")
    responders = None if args.no_latency else _latency_case(cases, tmp)
    try:
        return _run(cases, args.rounds)
    finally:
        if responders is not None:
            responders.close()  # type: ignore[attr-defined]
        shutil.rmtree(tmp, ignore_errors=True)


def _run(cases: dict[str, tuple[list[str], float | None]], rounds: int) -> int:
    times: dict[str, list[float]] = {name: [] for name in cases}
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
    for argv, _ in cases.values():  # warm the file cache and the bytecode
        _cpu_seconds(argv, env)
    for _ in range(rounds):
        for name, (argv, _) in cases.items():
            times[name].append(_cpu_seconds(argv, env))
    floor = statistics.median(times["import typer (floor)"])
    failed = 0
    print(f"{'case':<46} {'median':>9} {'ratio':>6}  goal")
    for name, (_, goal) in cases.items():
        med = statistics.median(times[name])
        ratio = med / floor
        verdict = "" if goal is None else (f"<= {goal}x  " + ("met" if ratio <= goal else "MISSED"))
        failed += goal is not None and ratio > goal
        print(f"{name:<46} {med * 1000:7.1f}ms {ratio:5.2f}x  {verdict}")
    goals = len(cases) - 1
    if LATENCY_CASE in times:
        beyond = (statistics.median(times[LATENCY_CASE]) - statistics.median(times["derptool --help"])) * 1000
        met = beyond <= LATENCY_GOAL_MS
        print(
            f"latency beyond --help: {beyond:.1f} ms  goal <= {LATENCY_GOAL_MS:g} ms  " + ("met" if met else "MISSED")
        )
        failed += not met
    print(f"{goals - failed} of {goals} goals met ({rounds} rounds, interleaved)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
