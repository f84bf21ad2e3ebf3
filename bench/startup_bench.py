"""Start-up cost of the CLI, as ratios to ``python -c "import typer"`` (the floor of any typer CLI).

Every command runs in a fresh interpreter, interleaved round by round so machine load hits all alike; the
figure is the median CPU time (user + system, from ``wait4``) of each, divided by the floor's median. CPU time
rather than wall time, so that other work on the machine does not blur the ratios. Goals: every ``--help``
<= 1.5x, ``omit --region us --map snapshot`` <= 2.5x.

    python bench/startup_bench.py [--rounds 15]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys


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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    cases = _cases()
    times: dict[str, list[float]] = {name: [] for name in cases}
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
    for argv, _ in cases.values():  # warm the file cache and the bytecode
        _cpu_seconds(argv, env)
    for _ in range(args.rounds):
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
    print(f"{len(cases) - 1 - failed} of {len(cases) - 1} goals met ({args.rounds} rounds, interleaved)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
