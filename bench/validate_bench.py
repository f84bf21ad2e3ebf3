"""Benchmark: validate a generated ~10 MB policy file; compare with json.loads of the same bytes.

Run: python bench/validate_bench.py [--size-mb 10] [--repeat 3] [--comments]
Prints the best wall time of validate_bytes and of json.loads, measured interleaved, and their ratio
(goal: validate <= 10x json.loads).
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from derptool.policy import validate_bytes


def generate(target_bytes: int) -> dict[str, Any]:
    """A valid policy of about *target_bytes* of JSON (indented by one space), with every common section."""
    per_team = len(json.dumps(policy_of(100), indent=1)) / 100
    return policy_of(max(1, round(target_bytes / per_team)))


def policy_of(teams: int) -> dict[str, Any]:
    """A valid policy of *teams* teams, each with a group, a tag, a host, routes and one rule per section."""
    policy: dict[str, Any] = {
        "groups": {},
        "tagOwners": {},
        "hosts": {},
        "grants": [],
        "acls": [],
        "ssh": [],
        "tests": [],
        "autoApprovers": {"routes": {}},
        "nodeAttrs": [],
    }
    for i in range(teams):
        team = f"team{i}"
        policy["groups"][f"group:{team}"] = [f"user{i}-{k}@example.com" for k in range(4)]
        policy["tagOwners"][f"tag:{team}-srv"] = [f"group:{team}"]
        policy["hosts"][f"{team}-db"] = f"10.{i // 250 % 250}.{i % 250}.10"
        policy["autoApprovers"]["routes"][f"10.{i // 250 % 250}.{i % 250}.0/24"] = [f"tag:{team}-srv"]
        policy["grants"].append(
            {
                "src": [f"group:{team}"],
                "dst": [f"tag:{team}-srv", f"{team}-db"],
                "ip": ["tcp:22", "tcp:443", "udp:53", "8000-8100"],
            }
        )
        policy["acls"].append(
            {
                "action": "accept",
                "src": [f"group:{team}", f"user{i}-0@example.com"],
                "dst": [f"tag:{team}-srv:22,443", f"{team}-db:5432"],
            }
        )
        policy["ssh"].append(
            {
                "action": "check",
                "src": [f"group:{team}"],
                "dst": [f"tag:{team}-srv"],
                "users": ["root", "autogroup:nonroot"],
                "checkPeriod": "12h",
            }
        )
        policy["tests"].append({"src": f"user{i}-1@example.com", "accept": [f"tag:{team}-srv:22"]})
        policy["nodeAttrs"].append({"target": [f"tag:{team}-srv"], "attr": ["randomize-client-port"]})
    return policy


def interleaved(fn: Any, anchor: Any, repeat: int) -> tuple[float, float]:
    """Best wall times of *fn* and *anchor*, run alternately so that machine load hits both alike."""
    times: tuple[list[float], list[float]] = ([], [])
    for _ in range(repeat):
        for i, f in enumerate((fn, anchor)):
            start = time.perf_counter()
            f()
            times[i].append(time.perf_counter() - start)
    return min(times[0]), min(times[1])


def best(fn: Any, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size-mb", type=float, default=10.0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--comments", action="store_true", help="add a comment per rule (HuJSON, not JSON)")
    args = parser.parse_args()
    policy = generate(int(args.size_mb * 1_000_000))
    src = json.dumps(policy, indent=1).encode()
    if args.comments:
        src = src.replace(b'\n  {\n   "src"', b'\n  // a rule\n  {\n   "src"')
        assert b"// a rule" in src
    problems = validate_bytes(src, "bench.hujson")
    assert not [p for p in problems if p.severity == "error"], problems[:3]
    plain = json.dumps(policy, indent=1).encode()
    t_validate, t_json = interleaved(
        lambda: validate_bytes(src, "bench.hujson"), lambda: json.loads(plain), args.repeat
    )
    rules = len(policy["grants"]) + len(policy["acls"]) + len(policy["ssh"])
    print(
        f"policy: {len(src) / 1e6:.2f} MB, {rules} rules, {len(policy['groups'])} groups"
        f"{', with comments' if args.comments else ''}"
    )
    print(f"validate_bytes: {t_validate * 1000:.0f} ms (best of {args.repeat})")
    print(f"json.loads:     {t_json * 1000:.1f} ms")
    print(f"ratio:          {t_validate / t_json:.1f}x json.loads")
    print(f"goal <= 10x:    {'met' if t_validate <= 10 * t_json else 'MISSED'}")


if __name__ == "__main__":
    main()
