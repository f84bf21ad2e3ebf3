"""Benchmark: ``derptool policy diff`` against ``derptool policy compile`` on the same generated tailnet.

Run: python bench/policy_diff_bench.py [--sizes 300,1000,3000] [--repeat 3]

For each size, a tailnet and policy come from bench/policy_bench.py's generator (users in groups, tagged
servers, subnet routers, an exit node, grants, ACLs, SSH rules); the NEW policy changes a few rules (one
grant widened to a port range, one ACL removed, one SSH rule turned into check, one group gains a member).
Both commands run as new processes with JSON output, interleaved, best of --repeat:

    derptool policy compile NEW --tailnet T --format json
    derptool policy diff OLD NEW --tailnet T --format json

Goal: diff / compile <= 2.0 at every size (the diff compiles both versions, validates both, and compares).
An in-process breakdown of the diff (compile both, compare) is printed beside it.
"""

from __future__ import annotations

import argparse
import copy
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from policy_bench import generate

from derptool.policy.engine import compile_policy
from derptool.policy.engine.diff import diff_policies
from derptool.policy.engine.tailnet import from_topology


def changed(policy: dict[str, Any]) -> dict[str, Any]:
    """A few edits a pull request might make."""
    new = copy.deepcopy(policy)
    new["grants"][0]["ip"] = ["tcp:440-450", "tcp:22"]
    del new["acls"][len(new["acls"]) // 2]
    if new["ssh"]:
        new["ssh"][0]["action"] = "check"
    groups = new["groups"]
    first = next(iter(groups))
    members = list(groups[first])
    last = next(reversed(groups.values()))
    groups[first] = members + [m for m in last if m not in members][:1]
    return new


def run(args: list[str]) -> float:
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "derptool", *args], stdout=subprocess.DEVNULL, check=False)
    if done.returncode not in (0, 1):
        raise SystemExit(f"derptool {' '.join(args)} failed with exit {done.returncode}")
    return time.perf_counter() - start


def in_process(topology: dict[str, Any], old: dict[str, Any], new: dict[str, Any]) -> tuple[float, float, int]:
    start = time.perf_counter()
    tailnet = from_topology(topology)
    a, b = compile_policy(old, tailnet), compile_policy(new, tailnet)
    mid = time.perf_counter()
    d = diff_policies(a, b)
    rows = len(d.access.gained) + len(d.access.lost) + len(d.ssh_gained) + len(d.ssh_lost)
    return mid - start, time.perf_counter() - mid, rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="300,1000,3000")
    parser.add_argument("--groups", type=int, default=100)
    parser.add_argument("--rules", type=int, default=300)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    for n in (int(s) for s in args.sizes.split(",")):
        topology, old = generate(n, args.groups, args.rules)
        new = changed(old)
        with tempfile.TemporaryDirectory() as tmp:
            t, a, b = Path(tmp, "tailnet.json"), Path(tmp, "old.json"), Path(tmp, "new.json")
            t.write_text(json.dumps(topology))
            a.write_text(json.dumps(old, indent=2))
            b.write_text(json.dumps(new, indent=2))
            compile_s, diff_s = [], []
            for _ in range(args.repeat):  # interleaved, so drift hits both alike
                compile_s.append(run(["policy", "compile", str(b), "--tailnet", str(t), "--format", "json"]))
                diff_s.append(run(["policy", "diff", str(a), str(b), "--tailnet", str(t), "--format", "json"]))
        both, compare, rows = in_process(topology, old, new)
        ratio = min(diff_s) / min(compile_s)
        print(
            f"{n} nodes: policy compile {min(compile_s):.2f} s, policy diff {min(diff_s):.2f} s, "
            f"ratio {ratio:.2f} [goal <= 2.0: {'ok' if ratio <= 2.0 else 'MISSED'}]; in process: compile both "
            f"{both:.2f} s, compare {compare:.2f} s ({rows} access and SSH rows)"
        )


if __name__ == "__main__":
    main()
