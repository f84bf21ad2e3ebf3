"""Benchmark: ``derptool policy diff`` against ``derptool policy compile`` on the same generated tailnet.

Run: python bench/policy_diff_bench.py [--sizes 300,1000,3000] [--repeat 3]

For each size, a tailnet and policy come from bench/policy_bench.py's generator (users in groups, tagged
servers, subnet routers, an exit node, grants, ACLs, SSH rules); the NEW policy changes a few rules (one
grant widened to a port range, one ACL removed, one SSH rule turned into check, one group gains a member).
Both commands run as new processes with JSON output, interleaved, best of --repeat:

    derptool policy compile NEW --tailnet T --format json
    derptool policy diff OLD NEW --tailnet T --format json

and the same work in this process (no start-up): compile = read the tailnet, compile NEW, every node's JSON
document; diff = read the tailnet, validate and compile both, compare, the JSON document.

Goal: diff / compile <= 2.0 at every size, both ratios. On a loaded machine the process times drift; the
in-process ratio is the steadier figure (CPU time of this process; start-up and imports cost the same few
hundred ms at every size).
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

from derptool.policy import validate_bytes
from derptool.policy.engine import compile_policy, parse_tailnet
from derptool.policy.engine.diff import diff_policies
from derptool.policy.engine.source import parse_policy


def generate(nodes: int, groups: int, rules: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """A tailnet of *nodes* nodes and a policy with *groups* groups and *rules* rules."""
    users = max(1, nodes * 7 // 10 // 2)  # ~70 % user devices, two per user
    tags = max(1, groups // 2)
    topo_users = [{"id": i + 1, "name": f"u{i}", "email": f"u{i}@example.com"} for i in range(users)]
    topo_nodes: dict[str, Any] = {}
    for i in range(nodes):
        v4 = f"100.{64 + (i >> 16) % 64}.{(i >> 8) & 255}.{i & 255}"
        entry: dict[str, Any] = {
            "hostname": f"n{i}",
            "ipv4": v4,
            "ipv6": f"fd7a:115c:a1e0::{i + 1:x}",
            "routable_ips": [],
            "approved_routes": [],
        }
        if i < users * 2:
            entry["tags"] = []
            entry["user"] = f"u{i // 2}"
        else:
            entry["tags"] = [f"tag:svc{i % tags}"]
            if i % 97 == 0:
                route = f"10.{(i >> 8) & 255}.{i & 255}.0/24"
                entry["routable_ips"] = entry["approved_routes"] = [route]
            if i == nodes - 1:
                entry["routable_ips"] = entry["approved_routes"] = ["0.0.0.0/0", "::/0"]
        topo_nodes[f"n{i}"] = entry
    group_size = max(1, users // groups)
    policy: dict[str, Any] = {
        "groups": {
            f"group:g{g}": [f"u{(g * group_size + k) % users}@example.com" for k in range(group_size)]
            for g in range(groups)
        },
        "tagOwners": {f"tag:svc{t}": [] for t in range(tags)},
        "grants": [],
        "acls": [],
        "ssh": [],
    }
    for r in range(rules):
        g, t = r % groups, (r * 7) % tags
        kind = r % 10
        if kind < 5:
            policy["grants"].append({"src": [f"group:g{g}"], "dst": [f"tag:svc{t}"], "ip": ["tcp:443", "tcp:22"]})
        elif kind < 8:
            policy["acls"].append(
                {"action": "accept", "src": [f"group:g{g}"], "dst": [f"tag:svc{t}:80,8080", f"10.{r % 256}.0.0/16:*"]}
            )
        else:
            policy["ssh"].append(
                {
                    "action": "accept",
                    "src": [f"group:g{g}"],
                    "dst": [f"tag:svc{t}"],
                    "users": ["root", "autogroup:nonroot"],
                }
            )
    policy["grants"].append({"src": ["autogroup:member"], "dst": ["autogroup:self"], "ip": ["*"]})
    return {"users": topo_users, "nodes": topo_nodes}, policy


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
    """Wall seconds of one command in a new process."""
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "derptool", *args], stdout=subprocess.DEVNULL, check=False)
    if done.returncode not in (0, 1):
        raise SystemExit(f"derptool {' '.join(args)} failed with exit {done.returncode}")
    return time.perf_counter() - start


def compile_work(tailnet_src: bytes, new_src: bytes) -> float:
    start = time.process_time()
    compiled = compile_policy(parse_policy(new_src).data, parse_tailnet(tailnet_src))
    json.dumps(compiled.to_json())
    return time.process_time() - start


def diff_work(tailnet_src: bytes, old_src: bytes, new_src: bytes) -> tuple[float, float, int]:
    """Seconds for the whole diff, seconds of the comparison alone, rows."""
    start = time.process_time()
    tailnet = parse_tailnet(tailnet_src)
    assert not validate_bytes(old_src) and not validate_bytes(new_src)
    a = compile_policy(parse_policy(old_src).data, tailnet)
    b = compile_policy(parse_policy(new_src).data, tailnet)
    mid = time.process_time()
    d = diff_policies(a, b)
    json.dumps(d.to_json())
    end = time.process_time()
    rows = len(d.access.gained) + len(d.access.lost) + len(d.ssh_gained) + len(d.ssh_lost)
    return end - start, end - mid, rows


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
        t_src, a_src, b_src = json.dumps(topology).encode(), json.dumps(old).encode(), json.dumps(new).encode()
        work_c, work_d, compare = [], [], []
        for _ in range(args.repeat):
            work_c.append(compile_work(t_src, b_src))
            whole, part, rows = diff_work(t_src, a_src, b_src)
            work_d.append(whole)
            compare.append(part)
        ratio = min(diff_s) / min(compile_s)
        inner = min(work_d) / min(work_c)
        print(
            f"{n} nodes ({rows} access and SSH rows): processes: compile {min(compile_s):.2f} s, diff "
            f"{min(diff_s):.2f} s, ratio {ratio:.2f}; in process: compile {min(work_c):.2f} s, diff "
            f"{min(work_d):.2f} s (comparison {min(compare):.2f} s), ratio {inner:.2f} "
            f"[goal <= 2.0: {'ok' if max(ratio, inner) <= 2.0 else 'MISSED'}]"
        )


if __name__ == "__main__":
    main()
